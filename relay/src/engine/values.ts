// How column values cross the API: which SQL expression turns a column into its JSON value
// (output), which turns a JSON body field into a column value (input), and how a filter value
// or an id from the URL is handed to PostgreSQL. PostgreSQL builds and parses all JSON, so no
// value ever goes through a JavaScript number.
//
// Value encoding (what POST stores, GET returns):
//   int2 int4 int8 numeric float4 float8   JSON numbers written with PostgreSQL's own text, so
//                                          every digit is kept (9007199254740993 stays exact as
//                                          long as the JSON text is not re-parsed by a double);
//                                          NaN and ±Infinity are the strings "NaN", "Infinity"
//   bool                                   true / false
//   date / time / timestamp / timestamptz  ISO 8601 strings ("2024-01-31", "13:45:00.5",
//                                          "2024-01-31T13:45:00.123456", "...+00:00")
//   bytea                                  base64 string (standard alphabet, no line breaks)
//   json / jsonb                           the JSON value itself (json keeps its exact text)
//   arrays                                 JSON arrays (bytea[] elements in PostgreSQL's hex text)
//   everything else (uuid, inet, interval, enums, money, ...)   PostgreSQL's text form
// Input accepts the same shapes; any field may also be given as a string in PostgreSQL's text
// form (e.g. "9007199254740993" for an int8).
import { ApiError } from '../errors.js';
import type { ColumnInfo, TableInfo } from './schema.js';

/** A quoted SQL identifier: `"` + name with `"` doubled + `"`. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new ApiError('invalid_parameter', 'A name cannot contain the NUL character.');
  return `"${name.replaceAll('"', '""')}"`;
}

/** `"schema"."table"` */
export function qualifiedName(table: TableInfo): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
}

/** SQL for the JSON-facing value of `column` read from the row alias `alias`. */
export function outputExpr(column: ColumnInfo, alias: string): string {
  const ref = `${alias}.${quoteIdent(column.name)}`;
  // encode(..., 'base64') breaks lines every 76 characters; JSON clients expect one string.
  if (column.type === 'bytea') return `translate(encode(${ref}, 'base64'), E'\\n', '')`;
  return ref;
}

/**
 * The column definition of `column` in the json_to_record() that reads a body: its own type
 * (format_type text from the catalogue), except bytea, which arrives as base64 text.
 */
export function recordColumnDef(column: ColumnInfo): string {
  return `${quoteIdent(column.name)} ${column.type === 'bytea' ? 'text' : column.nativeType}`;
}

/** SQL for the value of `column` taken from the body record `recordAlias` (bytea decoded from base64). */
export function inputExpr(column: ColumnInfo, recordAlias: string): string {
  const ref = `${recordAlias}.${quoteIdent(column.name)}`;
  return column.type === 'bytea' ? `decode(${ref}, 'base64')` : ref;
}

/**
 * SQL for a value compared with `column` (a filter literal or an id from the URL), given as
 * the text parameter `param`: PostgreSQL infers the parameter's type from the column. bytea
 * values are written in base64, as in JSON.
 */
export function comparedValueExpr(column: ColumnInfo, param: string): string {
  if (column.type === 'bytea') return `decode(${param}, 'base64')`;
  return param;
}

/**
 * SQL for `column` on the left of a comparison, and the cast for the values compared with it.
 * json has no equality operator: it is compared as jsonb. The other types without a btree
 * ordering (xml, geometric types, json arrays) are compared by their text form.
 */
export function comparedColumnExpr(column: ColumnInfo, alias: string): { column: string; cast: string } {
  const ref = `${alias}.${quoteIdent(column.name)}`;
  if (column.type === 'json') return { column: `${ref}::jsonb`, cast: '::jsonb' };
  if (!isOrderable(column)) return { column: `${ref}::text`, cast: '' };
  return { column: ref, cast: '' };
}

const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'name', 'citext']);

/** SQL for `column` as the text LIKE/ILIKE matches: itself for text types, else its JSON-facing text. */
export function likeColumnExpr(column: ColumnInfo, alias: string): string {
  if (TEXT_TYPES.has(column.type)) return `${alias}.${quoteIdent(column.name)}`;
  if (column.type === 'bytea') return outputExpr(column, alias);
  return `${alias}.${quoteIdent(column.name)}::text`;
}

/** Types without a btree ordering: they cannot be used in orderBy (nor as page keys). */
const UNORDERABLE = new Set(['json', 'xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle']);
export function isOrderable(column: ColumnInfo): boolean {
  return !UNORDERABLE.has(column.type) && !(column.isArray && UNORDERABLE.has(column.type.slice(1)));
}

/** A POST or PATCH body: the fields it names, and its exact JSON text for PostgreSQL. */
export interface RowInput {
  keys: string[];
  json: string;
}

/**
 * Checks that `body` is one JSON object and returns its keys with the text unchanged. Give
 * the raw request text: an object that went through JSON.parse has already rounded
 * integers beyond 2^53 (accepted, then re-serialised, for callers that only have that).
 */
export function parseRowBody(body: string | Record<string, unknown>): RowInput {
  if (typeof body !== 'string') {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw notAnObject();
    return { keys: Object.keys(body), json: JSON.stringify(body) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new ApiError('invalid_json', `The body is not valid JSON: ${(err as Error).message}.`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw notAnObject();
  return { keys: Object.keys(parsed), json: body };
}

function notAnObject(): ApiError {
  return new ApiError('invalid_json', 'The body must be one JSON object whose keys are field names.');
}

/** The JSON Schema of a column's non-null values as this API reads and writes them (docs, metadata). */
export function valueSchema(column: ColumnInfo): Record<string, unknown> {
  const base = column.isArray ? column.type.slice(1) : column.type;
  const one = scalarSchema(base, column.enumValues);
  return column.isArray ? { type: 'array', items: one } : one;
}

function scalarSchema(type: string, enumValues?: string[]): Record<string, unknown> {
  if (enumValues) return { type: 'string', enum: enumValues };
  switch (type) {
    case 'int2':
    case 'int4':
      return { type: 'integer', format: type === 'int2' ? 'int16' : 'int32' };
    case 'int8':
      return { type: 'integer', format: 'int64' };
    case 'numeric':
      return { type: 'number', format: 'decimal' };
    case 'float4':
    case 'float8':
      return { type: 'number', format: type === 'float4' ? 'float' : 'double' };
    case 'bool':
      return { type: 'boolean' };
    case 'date':
      return { type: 'string', format: 'date' };
    case 'timestamp':
    case 'timestamptz':
      return { type: 'string', format: 'date-time' };
    case 'time':
    case 'timetz':
      return { type: 'string', format: 'time' };
    case 'uuid':
      return { type: 'string', format: 'uuid' };
    case 'bytea':
      return { type: 'string', format: 'byte' };
    case 'json':
    case 'jsonb':
      return {};
    default:
      return { type: 'string' };
  }
}
