// List planning: the parameters of `GET /{name}` (where, fields, orderBy, pageSize, page,
// nextPage) checked against one table of the schema cache and turned into a ListPlan that
// sql.ts renders. Pure: no database, no HTTP. Every name a user writes must resolve to a
// column of the table; anything else is a 400 that names it.
//
// Paging. The order is made unique by appending the primary key columns that the orderBy
// does not already contain; then pages are read by keyset ("rows after the last one seen"),
// which is stable under concurrent inserts and never scans skipped rows. A table without a
// primary key (and every view) has no unique order we can rely on, so its pages fall back to
// LIMIT/OFFSET, ordered by the orderBy and then by every sortable column (deterministic pages,
// at the price of a sort); rows inserted or deleted meanwhile can shift such pages. `page=N` always means
// OFFSET (N-1)*pageSize; the token returned with that page is keyset again when possible.

import { ApiError } from '../errors.js';
import { type CompareOp, type Expr, literalText } from './ceql/ast.js';
import { CeqlError, type Token, tokenize } from './ceql/lexer.js';
import { type CeqlLimits, DEFAULT_CEQL_LIMITS, describe, parseWhere } from './ceql/parser.js';
import { decodePageToken, queryBinding } from './paging.js';
import type { ColumnInfo, TableInfo } from './schema.js';
import { isOrderable } from './values.js';

/** Every limit of the list pipeline, with its default, in one place. */
export interface ListLimits {
  /** Rows per page when pageSize is not given. */
  defaultPageSize: number;
  /** Largest accepted pageSize; beyond it -> 400. */
  maxPageSize: number;
  /** Largest accepted page number (page * pageSize rows are skipped by OFFSET). */
  maxPage: number;
  /** Most columns in orderBy. */
  maxOrderBy: number;
  /** Longest accepted fields / orderBy / nextPage text, in characters. */
  maxParameterLength: number;
  ceql: CeqlLimits;
}

export const DEFAULT_LIST_LIMITS: ListLimits = {
  defaultPageSize: 50,
  maxPageSize: 1000,
  maxPage: 1_000_000,
  maxOrderBy: 16,
  maxParameterLength: 8192,
  ceql: DEFAULT_CEQL_LIMITS,
};

/** The list parameters as they arrive in the query string. */
export interface ListQuery {
  where?: string;
  fields?: string;
  orderBy?: string;
  pageSize?: string | number;
  page?: string | number;
  nextPage?: string;
}

export interface ListOptions {
  /** HMAC key that signs page tokens (derive it from the master key). Without it tokens are bound by a plain hash. */
  pageTokenKey?: string | Uint8Array;
  /** filter.response.nulls: leave fields whose value is null out of every row. */
  stripNulls?: boolean;
  limits?: Partial<ListLimits>;
}

/** A `where` after its names were resolved against the table; values are the literal's text. */
export type Filter =
  | { kind: 'and'; operands: Filter[] }
  | { kind: 'or'; operands: Filter[] }
  | { kind: 'not'; operand: Filter }
  | { kind: 'compare'; column: ColumnInfo; op: CompareOp; value: string }
  | { kind: 'like'; column: ColumnInfo; not: boolean; caseInsensitive: boolean; pattern: string }
  | { kind: 'in'; column: ColumnInfo; not: boolean; values: string[] }
  | { kind: 'isNull'; column: ColumnInfo; not: boolean };

export interface OrderKey {
  column: ColumnInfo;
  descending: boolean;
}

export interface ListPlan {
  table: TableInfo;
  /** The projection, in response order. */
  columns: ColumnInfo[];
  filter?: Filter;
  /** The full order (primary key appended when there is one). */
  order: OrderKey[];
  /** keyset: the order is unique and pages continue after a cursor; offset: LIMIT/OFFSET. */
  paging: 'keyset' | 'offset';
  /** Keyset cursor from nextPage: the order keys' values (PostgreSQL text) of the last row seen. */
  after?: (string | null)[];
  offset: number;
  /** Index (0-based) of this page's first row in the whole list: where the next token continues. */
  position: number;
  pageSize: number;
  stripNulls: boolean;
  /** What page tokens of this query are bound to (derived from the query and the token key). */
  binding: Uint8Array;
}

export function planList(table: TableInfo, query: ListQuery, options: ListOptions = {}): ListPlan {
  const limits: ListLimits = { ...DEFAULT_LIST_LIMITS, ...options.limits };
  for (const name of ['where', 'fields', 'orderBy', 'pageSize', 'page', 'nextPage'] as const) {
    const value: unknown = query[name];
    // A repeated query parameter arrives as an array: say so instead of guessing which one counts.
    const numeric = name === 'pageSize' || name === 'page';
    if (value !== undefined && typeof value !== 'string' && !(numeric && typeof value === 'number')) {
      throw new ApiError('invalid_parameter', `${name} must be given once, as text.`);
    }
  }
  for (const name of ['fields', 'orderBy', 'nextPage'] as const) {
    const value = query[name];
    if (value !== undefined && value.length > limits.maxParameterLength) {
      throw new ApiError('invalid_parameter', `${name} is longer than ${limits.maxParameterLength} characters.`);
    }
  }
  const whereText = query.where?.trim() ? query.where : undefined;
  const expr = whereText === undefined ? undefined : parseWhere(whereText, limits.ceql);
  const filter = expr && resolveFilter(table, expr, whereText as string);
  const fieldsText = query.fields?.trim() ? query.fields : undefined;
  const columns = fieldsText === undefined ? table.columns : parseFields(table, fieldsText);
  const userOrder = query.orderBy?.trim() ? parseOrderBy(table, query.orderBy, limits.maxOrderBy) : [];
  const order = [...userOrder];
  const keyset = table.primaryKey.length > 0;
  // Tie-breakers: the primary key; without one, every sortable column, so that OFFSET pages
  // are deterministic (rows equal in all of them are interchangeable) instead of following
  // whatever order a (parallel or synchronised) scan happens to produce.
  const tieBreakers = keyset
    ? table.primaryKey.map((name) => table.columns.find((c) => c.name === name))
    : table.columns.filter(isOrderable);
  for (const column of tieBreakers) {
    if (column && !order.some((k) => k.column === column)) order.push({ column, descending: false });
  }
  const pageSize = integerParameter('pageSize', query.pageSize, 1, limits.maxPageSize) ?? limits.defaultPageSize;
  const page = integerParameter('page', query.page, 1, limits.maxPage) ?? 1;

  const binding = queryBinding(
    JSON.stringify({
      object: [table.schema, table.name],
      // The resolved filter: spacing, keyword case, redundant parentheses and name case do not matter.
      where: filter ? JSON.stringify(filter, (key, value) => (key === 'column' ? value.name : value)) : null,
      fields: fieldsText === undefined ? null : columns.map((c) => c.name),
      orderBy: order.map((k) => [k.column.name, k.descending ? 'desc' : 'asc']),
      pageSize,
    }),
    options.pageTokenKey,
  );
  const plan: ListPlan = {
    table,
    columns,
    filter,
    order,
    paging: keyset ? 'keyset' : 'offset',
    offset: (page - 1) * pageSize,
    position: (page - 1) * pageSize,
    pageSize,
    stripNulls: options.stripNulls ?? false,
    binding,
  };
  return query.nextPage !== undefined && query.nextPage !== '' ? continuePlan(plan, query.nextPage) : plan;
}

/**
 * The plan of the page that `nextPage` (a token handed out with a page of `plan`'s query)
 * points at; `plan` itself is not changed. nextPage wins over page: a client that keeps
 * sending page=1 with the token still advances.
 */
export function continuePlan(plan: ListPlan, nextPage: string): ListPlan {
  const cursor = decodePageToken(nextPage, plan.binding);
  if (cursor.kind === 'keyset' && plan.paging === 'keyset' && cursor.values.length === plan.order.length) {
    return { ...plan, after: cursor.values, offset: 0, position: cursor.position };
  }
  if (cursor.kind === 'offset') {
    // Also for keyset plans: finishList falls back to an offset token when the sort values
    // are too long to carry in a token.
    return { ...plan, offset: cursor.offset, position: cursor.offset };
  }
  throw new ApiError(
    'invalid_page_token',
    'The nextPage token no longer fits this object (its primary key changed): start again from the first page.',
  );
}

/** The column a user means by `name`: the exact name, else (bare names only) the one name equal ignoring case. */
export function resolveColumn(table: TableInfo, name: string, quoted: boolean): ColumnInfo | undefined {
  const exact = table.columns.find((c) => c.name === name);
  if (exact || quoted) return exact;
  const lower = name.toLowerCase();
  const folded = table.columns.filter((c) => c.name.toLowerCase() === lower);
  return folded.length === 1 ? folded[0] : undefined;
}

function resolveFilter(table: TableInfo, expr: Expr, text: string): Filter {
  const column = (ref: { name: string; quoted: boolean; pos: number }): ColumnInfo => {
    const found = resolveColumn(table, ref.name, ref.quoted);
    if (!found) {
      throw new CeqlError(
        'invalid_where',
        ref.pos,
        `unknown field ${JSON.stringify(ref.name)} (GET /objects/{name}/metadata lists the fields)`,
        text,
      );
    }
    return found;
  };
  switch (expr.kind) {
    case 'and':
    case 'or':
      return { kind: expr.kind, operands: expr.operands.map((e) => resolveFilter(table, e, text)) };
    case 'not':
      return { kind: 'not', operand: resolveFilter(table, expr.operand, text) };
    case 'compare':
      return { kind: 'compare', column: column(expr.column), op: expr.op, value: literalText(expr.value) };
    case 'like':
      return {
        kind: 'like',
        column: column(expr.column),
        not: expr.not,
        caseInsensitive: expr.caseInsensitive,
        pattern: literalText(expr.pattern),
      };
    case 'in':
      return { kind: 'in', column: column(expr.column), not: expr.not, values: expr.values.map(literalText) };
    case 'isNull':
      return { kind: 'isNull', column: column(expr.column), not: expr.not };
  }
}

/** Reads `name`, `"quoted"` or `` `quoted` `` column names from a comma list (fields, orderBy). */
function columnList(
  table: TableInfo,
  text: string,
  what: 'fields' | 'orderBy',
  each: (column: ColumnInfo, tokens: Token[], at: number) => number,
): void {
  const tokens = tokenize(text, 'invalid_parameter', what);
  const fail = (token: Token, reason: string): never => {
    throw new CeqlError('invalid_parameter', token.pos, reason, text, what);
  };
  let i = 0;
  for (;;) {
    const token = tokens[i] as Token;
    if (token.kind !== 'identifier' && token.kind !== 'quoted')
      fail(token, `expected a field name, found ${describe(token)}`);
    const column = resolveColumn(table, token.value, token.kind === 'quoted');
    if (!column)
      fail(token, `unknown field ${JSON.stringify(token.value)} (GET /objects/{name}/metadata lists the fields)`);
    i = each(column as ColumnInfo, tokens, i + 1);
    const next = tokens[i] as Token;
    if (next.kind === 'end') return;
    if (next.kind !== ',') fail(next, `expected a comma or the end, found ${describe(next)}`);
    i++;
  }
}

function parseFields(table: TableInfo, text: string): ColumnInfo[] {
  const columns: ColumnInfo[] = [];
  columnList(table, text, 'fields', (column, _tokens, i) => {
    if (!columns.includes(column)) columns.push(column);
    return i;
  });
  return columns;
}

function parseOrderBy(table: TableInfo, text: string, maxKeys: number): OrderKey[] {
  const keys: OrderKey[] = [];
  columnList(table, text, 'orderBy', (column, tokens, i) => {
    const at = tokens[i - 1] as Token;
    if (!isOrderable(column)) {
      throw new CeqlError(
        'invalid_parameter',
        at.pos,
        `field ${JSON.stringify(column.name)} (${column.nativeType}) cannot be sorted`,
        text,
        'orderBy',
      );
    }
    let descending = false;
    const next = tokens[i] as Token;
    if (next.kind === 'identifier' && /^(asc|desc)$/i.test(next.value)) {
      descending = next.value.toLowerCase() === 'desc';
      i++;
    }
    if (keys.some((k) => k.column === column)) {
      throw new CeqlError(
        'invalid_parameter',
        at.pos,
        `field ${JSON.stringify(column.name)} appears twice`,
        text,
        'orderBy',
      );
    }
    if (keys.length >= maxKeys) {
      throw new CeqlError('invalid_parameter', at.pos, `more than ${maxKeys} sort fields`, text, 'orderBy');
    }
    keys.push({ column, descending });
    return i;
  });
  return keys;
}

function integerParameter(
  name: string,
  value: string | number | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined || value === '') return undefined;
  const text = String(value).trim();
  const n = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max)) {
    throw new ApiError(
      'invalid_parameter',
      `${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(String(value).slice(0, 40))}.`,
    );
  }
  return n;
}
