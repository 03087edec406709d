// The CEQL syntax tree: what a `where` parameter means, before any schema is consulted.
// Produced by parser.ts, resolved against a table by plan.ts, turned into SQL by sql.ts.
// Positions are 0-based offsets (UTF-16 code units) into the original text, for errors.

/** A column as written by the user: the name after unquoting, and whether it was quoted. */
export interface ColumnRef {
  name: string;
  quoted: boolean;
  pos: number;
}

/**
 * A literal value. Numbers keep their exact source text (never converted to a double);
 * every literal reaches PostgreSQL as a text parameter that the column's type parses.
 */
export type Literal =
  | { kind: 'string'; value: string; pos: number }
  | { kind: 'number'; text: string; pos: number }
  | { kind: 'boolean'; value: boolean; pos: number };

/** The closed set of comparison operators (`!=` is normalised to `<>`). */
export const COMPARE_OPS = ['=', '<>', '<', '<=', '>', '>='] as const;
export type CompareOp = (typeof COMPARE_OPS)[number];

export type Expr =
  | { kind: 'and'; operands: Expr[] }
  | { kind: 'or'; operands: Expr[] }
  | { kind: 'not'; operand: Expr }
  | { kind: 'compare'; column: ColumnRef; op: CompareOp; value: Literal }
  | { kind: 'like'; column: ColumnRef; not: boolean; caseInsensitive: boolean; pattern: Literal }
  | { kind: 'in'; column: ColumnRef; not: boolean; values: Literal[] }
  | { kind: 'isNull'; column: ColumnRef; not: boolean };

/** The text a literal is sent to PostgreSQL as. */
export function literalText(literal: Literal): string {
  switch (literal.kind) {
    case 'string':
      return literal.value;
    case 'number':
      return literal.text;
    case 'boolean':
      return literal.value ? 'true' : 'false';
  }
}

/** Quotes a column name for CEQL output: bare when it is a plain identifier, else "double-quoted". */
export function formatColumn(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !KEYWORDS.has(name.toLowerCase())
    ? name
    : `"${name.replaceAll('"', '""')}"`;
}

export function formatLiteral(literal: Literal): string {
  if (literal.kind === 'string') return `'${literal.value.replaceAll("'", "''")}'`;
  return literalText(literal);
}

/**
 * Canonical CEQL for an expression: fully parenthesised, keywords upper case. Two `where`
 * texts that differ only in spacing, case of keywords or redundant parentheses format alike
 * (used to bind page tokens to their query).
 */
export function formatExpr(expr: Expr): string {
  switch (expr.kind) {
    case 'and':
    case 'or':
      return `(${expr.operands.map(formatExpr).join(expr.kind === 'and' ? ' AND ' : ' OR ')})`;
    case 'not':
      return `(NOT ${formatExpr(expr.operand)})`;
    case 'compare':
      return `${formatColumn(expr.column.name)} ${expr.op} ${formatLiteral(expr.value)}`;
    case 'like':
      return `${formatColumn(expr.column.name)} ${expr.not ? 'NOT ' : ''}${expr.caseInsensitive ? 'ILIKE' : 'LIKE'} ${formatLiteral(expr.pattern)}`;
    case 'in':
      return `${formatColumn(expr.column.name)} ${expr.not ? 'NOT ' : ''}IN (${expr.values.map(formatLiteral).join(', ')})`;
    case 'isNull':
      return `${formatColumn(expr.column.name)} IS ${expr.not ? 'NOT ' : ''}NULL`;
  }
}

/** Words with a meaning in CEQL (case-insensitive); a column with such a name must be quoted. */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'and',
  'or',
  'not',
  'like',
  'ilike',
  'in',
  'is',
  'null',
  'true',
  'false',
  'asc',
  'desc',
]);
