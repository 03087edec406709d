// CEQL parser: a `where` text in, an Expr out (pure; the schema is consulted later, in
// plan.ts). Recursive descent over the tokens of lexer.ts:
//
//   expr      := and ( OR and )*
//   and       := unary ( AND unary )*
//   unary     := NOT unary | '(' expr ')' | predicate
//   predicate := column ( op literal
//                       | [NOT] LIKE literal | [NOT] ILIKE literal
//                       | [NOT] IN '(' literal ( ',' literal )* ')'
//                       | IS [NOT] NULL )
//   column    := bare-name | "quoted" | `quoted`
//   literal   := 'text' | number | TRUE | FALSE
//   op        := = | != | <> | < | <= | > | >=
//
// Keywords are case-insensitive. NULL is only meaningful after IS: `x = NULL` is never true
// in SQL, so it is refused with a hint rather than silently matching nothing.
import type { ColumnRef, CompareOp, Expr, Literal } from './ast.js';
import { CeqlError, type Token, tokenize } from './lexer.js';

export interface CeqlLimits {
  /** Longest accepted `where` text, in characters. */
  maxLength: number;
  /** Deepest nesting of parentheses and NOT. */
  maxDepth: number;
  /** Most predicates (comparisons, LIKE, IN, IS NULL) in one expression. */
  maxPredicates: number;
  /** Most values in one IN list. */
  maxInValues: number;
}

export const DEFAULT_CEQL_LIMITS: CeqlLimits = {
  maxLength: 8192,
  maxDepth: 32,
  maxPredicates: 256,
  maxInValues: 1000,
};

/** Words that cannot be bare column names in a `where` (quote the name to use one). */
const RESERVED = new Set(['and', 'or', 'not', 'like', 'ilike', 'in', 'is', 'null', 'true', 'false']);

/** Parses a CEQL `where` text. Throws CeqlError (400 `invalid_where`) pointing at the position. */
export function parseWhere(text: string, limits: Partial<CeqlLimits> = {}): Expr {
  const max = { ...DEFAULT_CEQL_LIMITS, ...limits };
  if (text.length > max.maxLength) {
    throw new CeqlError(
      'invalid_where',
      max.maxLength,
      `the expression is longer than ${max.maxLength} characters`,
      text.slice(0, max.maxLength + 10),
    );
  }
  return new Parser(text, tokenize(text), max).parse();
}

class Parser {
  private i = 0;
  private depth = 0;
  private predicates = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly max: CeqlLimits,
  ) {}

  parse(): Expr {
    if (this.peek().kind === 'end') this.fail(this.peek(), 'the expression is empty');
    const expr = this.or();
    const next = this.peek();
    if (next.kind !== 'end') {
      this.fail(next, `expected AND, OR or the end of the expression, found ${describe(next)}`);
    }
    return expr;
  }

  private or(): Expr {
    const operands = [this.and()];
    while (this.keyword('or')) operands.push(this.and());
    return operands.length === 1 ? (operands[0] as Expr) : { kind: 'or', operands };
  }

  private and(): Expr {
    const operands = [this.unary()];
    while (this.keyword('and')) operands.push(this.unary());
    return operands.length === 1 ? (operands[0] as Expr) : { kind: 'and', operands };
  }

  private unary(): Expr {
    const token = this.peek();
    if (this.isKeyword(token, 'not')) {
      this.i++;
      return this.nested(token, () => ({ kind: 'not', operand: this.unary() }));
    }
    if (token.kind === '(') {
      this.i++;
      const expr = this.nested(token, () => this.or());
      this.expect(')', 'a closing parenthesis');
      return expr;
    }
    return this.predicate();
  }

  private nested(token: Token, parse: () => Expr): Expr {
    if (++this.depth > this.max.maxDepth) {
      this.fail(token, `nesting deeper than ${this.max.maxDepth} levels of parentheses and NOT`);
    }
    const expr = parse();
    this.depth--;
    return expr;
  }

  private predicate(): Expr {
    const column = this.column();
    if (++this.predicates > this.max.maxPredicates) {
      this.fail(this.tokens[this.i - 1] as Token, `more than ${this.max.maxPredicates} conditions`);
    }
    const token = this.peek();
    if (token.kind === 'operator') {
      this.i++;
      const op = (token.value === '!=' ? '<>' : token.value) as CompareOp;
      return { kind: 'compare', column, op, value: this.literal(`after ${token.value}`) };
    }
    if (this.keyword('is')) {
      const not = this.keyword('not');
      if (!this.keyword('null'))
        this.fail(this.peek(), `expected NULL after IS${not ? ' NOT' : ''}, found ${describe(this.peek())}`);
      return { kind: 'isNull', column, not };
    }
    const not = this.keyword('not');
    const word = this.peek();
    if (this.keyword('like') || this.keyword('ilike')) {
      const caseInsensitive = word.value.toLowerCase() === 'ilike';
      return { kind: 'like', column, not, caseInsensitive, pattern: this.literal(`after ${word.value.toUpperCase()}`) };
    }
    if (this.keyword('in')) {
      this.expect('(', 'an opening parenthesis after IN');
      const values = [this.literal('in the IN list')];
      while (this.peek().kind === ',') {
        this.i++;
        if (values.length >= this.max.maxInValues) {
          this.fail(this.peek(), `more than ${this.max.maxInValues} values in one IN list`);
        }
        values.push(this.literal('in the IN list'));
      }
      this.expect(')', 'a comma or a closing parenthesis in the IN list');
      return { kind: 'in', column, not, values };
    }
    return this.fail(
      word,
      not
        ? `expected LIKE, ILIKE or IN after NOT, found ${describe(word)}`
        : `expected an operator (= != <> < <= > >= LIKE ILIKE IN IS) after the column name, found ${describe(word)}`,
    );
  }

  private column(): ColumnRef {
    const token = this.peek();
    if (token.kind === 'quoted') {
      this.i++;
      return { name: token.value, quoted: true, pos: token.pos };
    }
    if (token.kind === 'identifier' && !RESERVED.has(token.value.toLowerCase())) {
      this.i++;
      return { name: token.value, quoted: false, pos: token.pos };
    }
    if (token.kind === 'identifier') {
      return this.fail(
        token,
        `expected a column name, found the keyword ${token.value.toUpperCase()} (quote a column with that name: "${token.value}")`,
      );
    }
    return this.fail(token, `expected a column name, found ${describe(token)}`);
  }

  private literal(where: string): Literal {
    const token = this.peek();
    this.i++;
    if (token.kind === 'string') return { kind: 'string', value: token.value, pos: token.pos };
    if (token.kind === 'number') return { kind: 'number', text: token.value, pos: token.pos };
    if (token.kind === 'identifier') {
      const word = token.value.toLowerCase();
      if (word === 'true' || word === 'false') return { kind: 'boolean', value: word === 'true', pos: token.pos };
      if (word === 'null') this.fail(token, 'NULL cannot be compared with an operator: use IS NULL or IS NOT NULL');
    }
    return this.fail(token, `expected a value ('text', a number, TRUE or FALSE) ${where}, found ${describe(token)}`);
  }

  private peek(): Token {
    return this.tokens[this.i] as Token;
  }

  private isKeyword(token: Token, word: string): boolean {
    return token.kind === 'identifier' && token.value.toLowerCase() === word;
  }

  private keyword(word: string): boolean {
    if (!this.isKeyword(this.peek(), word)) return false;
    this.i++;
    return true;
  }

  private expect(kind: Token['kind'], what: string): void {
    const token = this.peek();
    if (token.kind !== kind) this.fail(token, `expected ${what}, found ${describe(token)}`);
    this.i++;
  }

  private fail(token: Token, reason: string): never {
    throw new CeqlError('invalid_where', token.pos, reason, this.text);
  }
}

/** How a token is named in an error message (values are shown cut short). */
export function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'the end of the expression';
    case 'string':
      return `the string '${cut(token.value)}'`;
    case 'quoted':
      return `the name "${cut(token.value)}"`;
    case 'number':
      return `the number ${cut(token.value)}`;
    case 'identifier':
      return `'${cut(token.value)}'`;
    default:
      return `'${token.value}'`;
  }
}

function cut(text: string): string {
  return text.length > 30 ? `${text.slice(0, 30)}...` : text;
}
