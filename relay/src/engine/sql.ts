// SQL text and parameters for every engine request. Identifiers come only from the schema
// (TableInfo) and are always quoted; every user value is a `$n` text parameter whose type
// PostgreSQL infers from the column; operators come from the closed sets of ceql/ast.ts.
// PostgreSQL writes each row's JSON (row_to_json) and reads bodies (json_to_record, typed
// with the given columns only), so values stay exact: each query returns rows of `row` (the JSON object as text, which the
// relay splices into the response unparsed) and, for keyset lists, `cursor` (text[] of the
// row's order keys, for the next page token).
import { ApiError } from '../errors.js';
import type { Filter, ListPlan } from './plan.js';
import type { ColumnInfo, TableInfo } from './schema.js';
import {
  comparedColumnExpr,
  comparedValueExpr,
  inputExpr,
  likeColumnExpr,
  outputExpr,
  qualifiedName,
  quoteIdent,
  type RowInput,
  recordColumnDef,
} from './values.js';

export interface SqlQuery {
  text: string;
  values: unknown[];
}

/**
 * pg's `types` for the engine's queries: every column stays the text PostgreSQL sent. `row` is
 * text already; a list's `cursor` (text[]) is parsed by finishList for the one row a next-page
 * token continues after, instead of by pg for every row.
 */
export const TEXT_RESULTS = { getTypeParser: () => (text: string) => text };

// pg copies every own property of a query config, descriptor by descriptor, on each query
// (~2 us for four): the two constant ones are inherited instead.
const TEXT_QUERY = Object.freeze({ rowMode: 'array' as const, types: TEXT_RESULTS });

/**
 * `sql` as a pg query config whose rows are arrays of PostgreSQL's text, nothing parsed:
 * `[row]`, or `[row, cursor]` for a keyset list.
 */
export function textQuery(sql: SqlQuery): SqlQuery & { rowMode: 'array'; types: typeof TEXT_RESULTS } {
  const config = Object.create(TEXT_QUERY);
  config.text = sql.text;
  config.values = sql.values;
  return config;
}

export interface RowOptions {
  /** filter.response.nulls: leave fields whose value is null out of the row. */
  stripNulls?: boolean;
}

/** Collects parameters and hands out their `$n` placeholders. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const T = 't'; // alias of the table (or of the CTE holding the written row)
const P = 'p'; // alias of the projection

/** `SELECT <row json> AS "row" FROM <source> AS t CROSS JOIN LATERAL (<projection>) AS p` */
function selectRows(columns: ColumnInfo[], source: string, stripNulls: boolean, extra = ''): string {
  const projection = columns.map((c) => `${outputExpr(c, T)} AS ${quoteIdent(c.name)}`).join(', ');
  // `p.*`, not `p`: a bare `p` would mean a column of the table named p, if there is one.
  const json = stripNulls
    ? // Top level only: a json/jsonb value keeps the nulls inside it.
      `coalesce((SELECT json_object_agg(e.key, e.value) FROM json_each(row_to_json(${P}.*)) AS e WHERE json_typeof(e.value) <> 'null'), '{}')`
    : `row_to_json(${P}.*)`;
  return `SELECT ${json}::text AS "row"${extra} FROM ${source} AS ${T} CROSS JOIN LATERAL (SELECT ${projection}) AS ${P}`;
}

export function buildListSql(plan: ListPlan): SqlQuery {
  const params = new Params();
  const conditions: string[] = [];
  if (plan.filter) conditions.push(filterSql(plan.filter, params));
  if (plan.after) conditions.push(keysetSql(plan, plan.after, params));
  const cursor =
    plan.paging === 'keyset'
      ? `, ARRAY[${plan.order.map((k) => `${T}.${quoteIdent(k.column.name)}::text`).join(', ')}] AS "cursor"`
      : '';
  let text = selectRows(plan.columns, qualifiedName(plan.table), plan.stripNulls, cursor);
  if (conditions.length > 0) text += ` WHERE ${conditions.join(' AND ')}`;
  if (plan.order.length > 0) {
    text += ` ORDER BY ${plan.order.map((k) => `${T}.${quoteIdent(k.column.name)}${k.descending ? ' DESC' : ''}`).join(', ')}`;
  }
  // One row more than the page: its presence is what says that a next page exists.
  text += ` LIMIT ${params.add(plan.pageSize + 1)}`;
  if (plan.offset > 0) text += ` OFFSET ${params.add(plan.offset)}`;
  return { text, values: params.values };
}

function filterSql(filter: Filter, params: Params): string {
  switch (filter.kind) {
    case 'and':
    case 'or':
      return `(${filter.operands.map((f) => filterSql(f, params)).join(filter.kind === 'and' ? ' AND ' : ' OR ')})`;
    case 'not':
      return `NOT ${filterSql(filter.operand, params)}`;
    case 'compare': {
      const { column, cast } = comparedColumnExpr(filter.column, T);
      return `${column} ${filter.op} ${comparedValueExpr(filter.column, params.add(filter.value))}${cast}`;
    }
    case 'like':
      return `${likeColumnExpr(filter.column, T)} ${filter.not ? 'NOT ' : ''}${filter.caseInsensitive ? 'ILIKE' : 'LIKE'} ${params.add(filter.pattern)}`;
    case 'in': {
      const { column, cast } = comparedColumnExpr(filter.column, T);
      const list = filter.values.map((v) => `${comparedValueExpr(filter.column, params.add(v))}${cast}`);
      return `${column} ${filter.not ? 'NOT IN' : 'IN'} (${list.join(', ')})`;
    }
    case 'isNull':
      return `${T}.${quoteIdent(filter.column.name)} IS ${filter.not ? 'NOT ' : ''}NULL`;
  }
}

/**
 * Rows strictly after the cursor in the plan's order. PostgreSQL sorts NULLs last in ASC and
 * first in DESC. When no key can be null and all go one way, a row comparison says it (and
 * an index on the keys serves it); otherwise the OR-chain spells out each key's tie.
 */
function keysetSql(plan: ListPlan, after: (string | null)[], params: Params): string {
  const keys = plan.order.map((k, i) => ({
    ...k,
    ref: `${T}.${quoteIdent(k.column.name)}`,
    value: after[i] ?? null,
    nullable: k.column.nullable && !plan.table.primaryKey.includes(k.column.name),
  }));
  const placeholders = keys.map((k) => (k.value === null ? null : params.add(k.value)));
  const descending = keys[0]?.descending ?? false;
  if (keys.every((k, i) => !k.nullable && placeholders[i] !== null && k.descending === descending)) {
    const op = descending ? '<' : '>';
    if (keys.length === 1) return `${keys[0]?.ref} ${op} ${placeholders[0]}`;
    return `(${keys.map((k) => k.ref).join(', ')}) ${op} (${placeholders.join(', ')})`;
  }
  const terms: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as (typeof keys)[number];
    const p = placeholders[i];
    let past: string | undefined;
    if (!k.descending)
      past = p === null ? undefined : k.nullable ? `(${k.ref} > ${p} OR ${k.ref} IS NULL)` : `${k.ref} > ${p}`;
    else past = p === null ? `${k.ref} IS NOT NULL` : `${k.ref} < ${p}`;
    if (past === undefined) continue;
    const ties = keys
      .slice(0, i)
      .map((e, j) => (placeholders[j] === null ? `${e.ref} IS NULL` : `${e.ref} = ${placeholders[j]}`));
    terms.push(ties.length === 0 ? past : `(${[...ties, past].join(' AND ')})`);
  }
  return terms.length === 0 ? 'false' : `(${terms.join(' OR ')})`;
}

/** The single primary key column of a table, or 405 (views have none). */
function keyColumn(table: TableInfo): ColumnInfo {
  writable(table);
  const column = table.primaryKey.length === 1 ? table.columns.find((c) => c.name === table.primaryKey[0]) : undefined;
  if (!column) {
    throw new ApiError(
      'method_not_allowed',
      `${JSON.stringify(table.name)} has no single-column primary key: it has no by-id routes (list and insert work).`,
    );
  }
  return column;
}

function writable(table: TableInfo): void {
  if (table.kind === 'view') {
    throw new ApiError('method_not_allowed', `${JSON.stringify(table.name)} is a view: it can only be listed.`);
  }
}

/** The table columns named by a body's keys; unknown or read-only fields -> 400. */
function inputColumns(table: TableInfo, input: RowInput): ColumnInfo[] {
  return input.keys.map((key) => {
    const column = table.columns.find((c) => c.name === key);
    if (!column) {
      throw new ApiError(
        'bad_request',
        `${JSON.stringify(key)} is not a field of ${JSON.stringify(table.name)} (GET /objects/{name}/metadata lists them).`,
      );
    }
    if (column.readOnly) {
      throw new ApiError(
        'bad_request',
        `Field ${JSON.stringify(key)} is read-only (generated, identity or view column): leave it out of the body.`,
      );
    }
    return column;
  });
}

/**
 * The body as a one-row record of the given columns only. (json_populate_record over the
 * table's row type would also run the input of every absent column with NULL, which fails for
 * a NOT NULL domain whose column has a default.)
 */
function bodyRecord(columns: ColumnInfo[], param: string): string {
  return `json_to_record(${param}::json) AS r(${columns.map(recordColumnDef).join(', ')})`;
}

export function buildGetSql(table: TableInfo, id: string, options: RowOptions = {}): SqlQuery {
  const key = keyColumn(table);
  const params = new Params();
  const where = `${T}.${quoteIdent(key.name)} = ${comparedValueExpr(key, params.add(id))}`;
  return {
    text: `${selectRows(table.columns, qualifiedName(table), options.stripNulls ?? false)} WHERE ${where}`,
    values: params.values,
  };
}

export function buildInsertSql(table: TableInfo, input: RowInput, options: RowOptions = {}): SqlQuery {
  writable(table);
  const columns = inputColumns(table, input);
  const params = new Params();
  let insert: string;
  if (columns.length === 0) {
    insert = `INSERT INTO ${qualifiedName(table)} DEFAULT VALUES RETURNING *`;
  } else {
    insert =
      `INSERT INTO ${qualifiedName(table)} (${columns.map((c) => quoteIdent(c.name)).join(', ')}) ` +
      `SELECT ${columns.map((c) => inputExpr(c, 'r')).join(', ')} FROM ${bodyRecord(columns, params.add(input.json))} ` +
      'RETURNING *';
  }
  return {
    text: `WITH w AS (${insert}) ${selectRows(table.columns, 'w', options.stripNulls ?? false)}`,
    values: params.values,
  };
}

export function buildUpdateSql(table: TableInfo, id: string, input: RowInput, options: RowOptions = {}): SqlQuery {
  const key = keyColumn(table); // 405 for views and tables without a single-column key
  const columns = inputColumns(table, input);
  if (columns.length === 0) throw new ApiError('bad_request', 'The body names no field to change.');
  const params = new Params();
  const record = bodyRecord(columns, params.add(input.json));
  const set = columns.map((c) => `${quoteIdent(c.name)} = ${inputExpr(c, 'r')}`).join(', ');
  const where = `${T}.${quoteIdent(key.name)} = ${comparedValueExpr(key, params.add(id))}`;
  const update =
    `UPDATE ${qualifiedName(table)} AS ${T} SET ${set} ` + `FROM ${record} WHERE ${where} RETURNING ${T}.*`;
  return {
    text: `WITH w AS (${update}) ${selectRows(table.columns, 'w', options.stripNulls ?? false)}`,
    values: params.values,
  };
}

export function buildDeleteSql(table: TableInfo, id: string, options: RowOptions = {}): SqlQuery {
  const key = keyColumn(table); // 405 for views and tables without a single-column key
  const params = new Params();
  const where = `${T}.${quoteIdent(key.name)} = ${comparedValueExpr(key, params.add(id))}`;
  const del = `DELETE FROM ${qualifiedName(table)} AS ${T} WHERE ${where} RETURNING ${T}.*`;
  return {
    text: `WITH w AS (${del}) ${selectRows(table.columns, 'w', options.stripNulls ?? false)}`,
    values: params.values,
  };
}
