import { describe, expect, it } from 'vitest';
import { type Expr, formatExpr } from './ast.js';
import { CeqlError, tokenize } from './lexer.js';
import { DEFAULT_CEQL_LIMITS, parseWhere } from './parser.js';

const col = (name: string, pos: number, quoted = false) => ({ name, quoted, pos });

/** The error parseWhere throws for `text` (fails the test when it parses). */
function errorOf(text: string, limits = {}): CeqlError {
  try {
    parseWhere(text, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(CeqlError);
    return err as CeqlError;
  }
  throw new Error(`parsed: ${text}`);
}

describe('parseWhere: valid CEQL -> AST', () => {
  it('parses the example of the design', () => {
    const expr = parseWhere("name = 'Jon Doe' AND (age >= 30 OR status IN ('a','b')) AND email IS NOT NULL");
    expect(expr).toEqual<Expr>({
      kind: 'and',
      operands: [
        { kind: 'compare', column: col('name', 0), op: '=', value: { kind: 'string', value: 'Jon Doe', pos: 7 } },
        {
          kind: 'or',
          operands: [
            { kind: 'compare', column: col('age', 22), op: '>=', value: { kind: 'number', text: '30', pos: 29 } },
            {
              kind: 'in',
              column: col('status', 35),
              not: false,
              values: [
                { kind: 'string', value: 'a', pos: 46 },
                { kind: 'string', value: 'b', pos: 50 },
              ],
            },
          ],
        },
        { kind: 'isNull', column: col('email', 60), not: true },
      ],
    });
  });

  // text -> canonical form (formatExpr), which shows the tree's shape and every field.
  const table: Array<[string, string]> = [
    ['a = 1', 'a = 1'],
    ['a != 1', 'a <> 1'],
    ['a <> 1', 'a <> 1'],
    ['a < 1', 'a < 1'],
    ['a <= 1', 'a <= 1'],
    ['a > 1', 'a > 1'],
    ['a >= 1', 'a >= 1'],
    ['a=1', 'a = 1'],
    ['a>=-1.5e10', 'a >= -1.5e10'],
    ['a = 9007199254740993', 'a = 9007199254740993'],
    ['a = 0.10000000000000000000000001', 'a = 0.10000000000000000000000001'],
    ['a = .5', 'a = .5'],
    ["a LIKE 'x%'", "a LIKE 'x%'"],
    ["a not like 'x%'", "a NOT LIKE 'x%'"],
    ["a ILIKE '%X'", "a ILIKE '%X'"],
    ["a NOT ILIKE '_'", "a NOT ILIKE '_'"],
    ["a IN ('x')", "a IN ('x')"],
    ['a in (1, 2 ,3)', 'a IN (1, 2, 3)'],
    ["a NOT IN ('x', 'y')", "a NOT IN ('x', 'y')"],
    ['a IS NULL', 'a IS NULL'],
    ['a is not null', 'a IS NOT NULL'],
    ['a = true', 'a = true'],
    ['a = FALSE', 'a = false'],
    ["a = 'it''s'", "a = 'it''s'"],
    ["a = ''", "a = ''"],
    ["a = 'back\\slash'", "a = 'back\\slash'"],
    ["a = 'ünï ☃ 😀'", "a = 'ünï ☃ 😀'"],
    ["a = '\ud83d\ude00'", "a = '😀'"],
    ['"First Name" = 1', '"First Name" = 1'],
    ['`First Name` = 1', '"First Name" = 1'],
    ['"say ""hi""" = 1', '"say ""hi""" = 1'],
    ['`a``b` = 1', '"a`b" = 1'],
    ['"and" = 1', '"and" = 1'],
    ['desc = 1', '"desc" = 1'],
    ['Größe = 1', '"Größe" = 1'],
    ['a = 1 AND b = 2 OR c = 3', '((a = 1 AND b = 2) OR c = 3)'],
    ['a = 1 OR b = 2 AND c = 3', '(a = 1 OR (b = 2 AND c = 3))'],
    ['a = 1 and b = 2 and c = 3', '(a = 1 AND b = 2 AND c = 3)'],
    ['NOT a = 1 AND b = 2', '((NOT a = 1) AND b = 2)'],
    ['NOT (a = 1 AND b = 2)', '(NOT (a = 1 AND b = 2))'],
    ['not not a = 1', '(NOT (NOT a = 1))'],
    ['((a = 1))', 'a = 1'],
    ['(a = 1 OR b = 2) AND c = 3', '((a = 1 OR b = 2) AND c = 3)'],
    ['\n\ta\r\n=\t1 ', 'a = 1'],
  ];
  it.each(table)('%s', (text, canonical) => {
    expect(formatExpr(parseWhere(text))).toBe(canonical);
  });

  it('keeps the exact text of numbers', () => {
    expect(parseWhere('a = 123456789012345678901234567890.000000000001')).toMatchObject({
      value: { kind: 'number', text: '123456789012345678901234567890.000000000001' },
    });
  });

  it('marks quoted names', () => {
    expect(parseWhere('"a" = 1')).toMatchObject({ column: { name: 'a', quoted: true } });
    expect(parseWhere('a = 1')).toMatchObject({ column: { name: 'a', quoted: false } });
  });

  it('formats back to text that parses to the same tree', () => {
    for (const [text] of table) {
      const once = formatExpr(parseWhere(text));
      expect(formatExpr(parseWhere(once))).toBe(once);
    }
  });
});

describe('parseWhere: invalid CEQL -> 400 invalid_where at a position', () => {
  const table: Array<[string, number, RegExp]> = [
    ['', 0, /empty/],
    ['   ', 3, /empty/],
    ['a', 1, /expected an operator/],
    ['a =', 3, /expected a value/],
    ['a = = 1', 4, /expected a value/],
    ['= 1', 0, /expected a column name/],
    ['1 = a', 0, /expected a column name/],
    ["'a' = 1", 0, /expected a column name/],
    ['a = b', 4, /expected a value/],
    ['a = 1 b = 2', 6, /expected AND, OR/],
    ['a = 1 AND', 9, /expected a column name/],
    ['a = 1 OR OR b = 1', 9, /keyword OR/],
    ['(a = 1', 6, /closing parenthesis/],
    ['a = 1)', 5, /expected AND, OR/],
    ['()', 1, /expected a column name/],
    ["a = 'abc", 4, /unterminated string/],
    ['"abc = 1', 0, /unterminated quoted name/],
    ['`abc = 1', 0, /unterminated quoted name/],
    ['"" = 1', 0, /empty quoted name/],
    ['a = NULL', 4, /IS NULL/],
    ['a != null', 5, /IS NULL/],
    ['a IN (NULL)', 6, /IS NULL/],
    ['a IS 1', 5, /expected NULL after IS/],
    ['a IS NOT', 8, /expected NULL after IS NOT/],
    ['a NOT = 1', 6, /expected LIKE, ILIKE or IN after NOT/],
    ['a IN ()', 6, /expected a value/],
    ['a IN (1,)', 8, /expected a value/],
    ['a IN (1 2)', 8, /comma or a closing parenthesis/],
    ['a IN 1', 5, /opening parenthesis/],
    ['a LIKE', 6, /expected a value/],
    ['and = 1', 0, /keyword AND/],
    ['null IS NULL', 0, /keyword NULL/],
    ['a == 1', 3, /expected a value/],
    ['a = 1e', 4, /malformed number/],
    ['a = 12abc', 4, /malformed number/],
    ['a = 1.2.3', 4, /malformed number/],
    ['a = 1 && b = 2', 6, /unexpected character "&"/],
    ['a = 1 || b = 2', 6, /unexpected character "\|"/],
    ['a = 1; DROP TABLE t', 5, /unexpected character ";"/],
    ['a = 1 -- comment', 6, /unexpected character "-"/],
    ['a = 1 /* c */', 6, /unexpected character "\/"/],
    ['a = $$x$$', 4, /unexpected character "\$"/],
    ['a = $1', 4, /unexpected character "\$"/],
    ['a = :x', 4, /unexpected character ":"/],
    ['a = 1 # x', 6, /unexpected character "#"/],
    ['a = @x', 4, /unexpected character "@"/],
    ["a = E'\\x27'", 4, /expected a value/],
    ['a = 1 AND b = ?', 14, /unexpected character "\?"/],
    ["a = 'x\0y'", 4, /NUL/],
    ['"a\0" = 1', 0, /NUL/],
    ["a = 'x\ud800'", 4, /lone surrogate/],
    ["a = '\udc00x'", 4, /lone surrogate/],
    ['a = 1 😀', 6, /unexpected character "😀"/],
    ['a::text = 1', 1, /unexpected character ":"/],
    ['a.b = 1', 1, /unexpected character "\."/],
    ['a[1] = 1', 1, /unexpected character "\["/],
    ['lower(a) = 1', 5, /expected an operator/],
  ];
  it.each(table)('%j -> position %i', (text, position, reason) => {
    const err = errorOf(text);
    expect(err.status).toBe(400);
    expect(err.code).toBe('invalid_where');
    expect(err.position).toBe(position);
    expect(err.message).toMatch(reason);
    expect(err.message).toContain(`position ${position}`);
  });

  it('shows the text with a caret under the offending character', () => {
    const err = errorOf("name = 'x' AND age >== 3");
    expect(err.message).toBe(
      "Invalid where at position 21: expected a value ('text', a number, TRUE or FALSE) after >=, found '='.\n" +
        "name = 'x' AND age >== 3\n" +
        '                     ^',
    );
  });

  it('shows only the neighbourhood of the error in a long text', () => {
    const text = `${'a = 1 AND '.repeat(20)}b = ;`;
    const err = errorOf(text);
    const [, line, caret] = err.message.split('\n');
    expect(line?.length).toBeLessThan(90);
    expect(line?.startsWith('...')).toBe(true);
    expect(line?.[caret?.indexOf('^') ?? -1]).toBe(';');
  });
});

describe('parseWhere: limits', () => {
  it('has its defaults in one place', () => {
    expect(DEFAULT_CEQL_LIMITS).toEqual({ maxLength: 8192, maxDepth: 32, maxPredicates: 256, maxInValues: 1000 });
  });

  it('refuses a text longer than maxLength', () => {
    const err = errorOf(`a = '${'x'.repeat(100)}'`, { maxLength: 50 });
    expect(err.message).toMatch(/longer than 50 characters/);
    expect(err.position).toBe(50);
  });

  it('refuses nesting deeper than maxDepth, parentheses or NOT', () => {
    expect(() => parseWhere(`${'('.repeat(32)}a = 1${')'.repeat(32)}`)).not.toThrow();
    expect(errorOf(`${'('.repeat(33)}a = 1${')'.repeat(33)}`).message).toMatch(/nesting deeper than 32/);
    expect(errorOf(`${'NOT '.repeat(33)}a = 1`).position).toBe(128);
    // Deep input is refused before the stack is at risk, whatever maxLength allows.
    expect(errorOf(`${'('.repeat(100000)}a = 1`, { maxLength: 1e6 }).code).toBe('invalid_where');
  });

  it('refuses more than maxPredicates conditions', () => {
    expect(() => parseWhere(Array(256).fill('a = 1').join(' OR '))).not.toThrow();
    expect(errorOf(Array(257).fill('a = 1').join(' OR ')).message).toMatch(/more than 256 conditions/);
  });

  it('refuses more than maxInValues values in one IN list', () => {
    expect(() => parseWhere(`a IN (${Array(1000).fill(1).join(',')})`)).not.toThrow();
    expect(errorOf(`a IN (${Array(1001).fill(1).join(',')})`).message).toMatch(/more than 1000 values/);
  });
});

describe('tokenize', () => {
  it('splits names, strings, numbers, operators and punctuation', () => {
    expect(tokenize(`x<>'a''b' , "q""q"(-1)`).map((t) => [t.kind, t.value, t.pos])).toEqual([
      ['identifier', 'x', 0],
      ['operator', '<>', 1],
      ['string', "a'b", 3],
      [',', ',', 10],
      ['quoted', 'q"q', 12],
      ['(', '(', 18],
      ['number', '-1', 19],
      [')', ')', 21],
      ['end', '', 22],
    ]);
  });
});

describe('parseWhere: random input', () => {
  // A fixed-seed generator (mulberry32): the same 20,000 inputs on every run.
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const FRAGMENTS = [
    'a',
    'b',
    '"q ""x"""',
    '`b`',
    'AND',
    'or',
    'NOT',
    '(',
    ')',
    '=',
    '!=',
    '<>',
    '<',
    '<=',
    '>',
    '>=',
    'LIKE',
    'ilike',
    'IN',
    'IS',
    'NULL',
    'true',
    'FALSE',
    "'s'",
    "'it''s'",
    '1',
    '-2.5e3',
    ',',
    ';',
    '--',
    "'",
    '"',
    '$$',
    '\\',
    '😀',
    ' ',
    '  ',
    '\n',
  ];

  it('never crashes: an Expr that formats back to itself, or a CeqlError inside the text', () => {
    const next = random(42);
    let parsed = 0;
    for (let n = 0; n < 20_000; n++) {
      const length = 1 + Math.floor(next() * 12);
      let text = '';
      for (let i = 0; i < length; i++) {
        text += FRAGMENTS[Math.floor(next() * FRAGMENTS.length)];
        if (next() < 0.7) text += ' ';
      }
      try {
        const canonical = formatExpr(parseWhere(text));
        expect(formatExpr(parseWhere(canonical))).toBe(canonical);
        parsed++;
      } catch (err) {
        if (!(err instanceof CeqlError)) throw new Error(`${JSON.stringify(text)}: ${err}`);
        expect(err.position).toBeGreaterThanOrEqual(0);
        expect(err.position).toBeLessThanOrEqual(text.length);
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });

  it('random valid expressions, spaced and cased at random, parse to their canonical form', () => {
    const next = random(7);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)] as T;
    const word = (w: string) => (next() < 0.5 ? w.toLowerCase() : w);
    const gap = () => pick([' ', '  ', '\n', '\t ']);
    const value = () => pick(["'x'", "'it''s'", "''", '42', '-0.5', '9007199254740993', 'true', 'FALSE']);
    const canonicalValue = (v: string) => (v === 'FALSE' ? 'false' : v);
    const column = () =>
      pick([
        ['a', 'a'],
        ['"b c"', '"b c"'],
        ['`d`', 'd'],
        ['"and"', '"and"'],
      ]);
    // Returns [text as a user might write it, the canonical form of the tree built].
    const expr = (depth: number): [string, string] => {
      const choice = depth > 3 ? 0 : Math.floor(next() * 5);
      if (choice <= 1) {
        const [c, cc] = column();
        const kind = Math.floor(next() * 4);
        if (kind === 0) {
          const op = pick(['=', '!=', '<>', '<', '<=', '>', '>=']);
          const v = value();
          return [`${c}${gap()}${op}${gap()}${v}`, `${cc} ${op === '!=' ? '<>' : op} ${canonicalValue(v)}`];
        }
        if (kind === 1) {
          const not = next() < 0.5;
          const like = pick(['LIKE', 'ILIKE']);
          return [`${c} ${not ? `${word('NOT')} ` : ''}${word(like)} 'p%'`, `${cc} ${not ? 'NOT ' : ''}${like} 'p%'`];
        }
        if (kind === 2) {
          const not = next() < 0.5;
          const vs = [value(), value()];
          return [
            `${c} ${not ? `${word('NOT')} ` : ''}${word('IN')}${gap()}(${vs.join(`,${gap()}`)})`,
            `${cc} ${not ? 'NOT ' : ''}IN (${vs.map(canonicalValue).join(', ')})`,
          ];
        }
        const not = next() < 0.5;
        return [
          `${c} ${word('IS')} ${not ? `${word('NOT')} ` : ''}${word('NULL')}`,
          `${cc} IS ${not ? 'NOT ' : ''}NULL`,
        ];
      }
      if (choice === 2) {
        const [t, c] = expr(depth + 1);
        return [`${word('NOT')} (${t})`, `(NOT ${c})`];
      }
      const op = choice === 3 ? 'AND' : 'OR';
      const [lt, lc] = expr(depth + 1);
      const [rt, rc] = expr(depth + 1);
      // Parenthesise the operands so that the tree is the one built here.
      return [`(${lt})${gap()}${word(op)}${gap()}(${rt})`, `(${lc} ${op} ${rc})`];
    };
    for (let n = 0; n < 3000; n++) {
      const [text, canonical] = expr(0);
      const got = formatExpr(parseWhere(text));
      // Nested AND/OR of the same kind flatten: compare with the canonical text re-parsed.
      expect(got, text).toBe(formatExpr(parseWhere(canonical)));
    }
  });
});
