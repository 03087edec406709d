// How a table looks from the API: the JSON type of each column (shared by
// /objects/{name}/metadata and the OpenAPI document) and the routes a table really has.
import type { ColumnInfo, TableInfo } from './schema.js';
import { isOrderable, valueSchema } from './values.js';

/** A JSON Schema (OpenAPI 3.1 dialect) fragment. */
export type JsonSchema = Record<string, unknown>;

const INTEGER = new Set(['int2', 'int4', 'int8', 'oid']);
const NUMBER = new Set(['numeric', 'float4', 'float8']);

/** The JSON Schema of a column's values (values.ts's encoding; null allowed when nullable). */
export function columnSchema(column: ColumnInfo): JsonSchema {
  let schema: JsonSchema = { ...valueSchema(column) };
  if (column.nullable && typeof schema.type === 'string') schema = { ...schema, type: [schema.type, 'null'] };
  schema.description = `PostgreSQL ${column.nativeType}${column.readOnly ? ' (read-only)' : ''}`;
  if (column.readOnly) schema.readOnly = true;
  return schema;
}

/** The metadata's "type": the JSON type a client sees. */
export function fieldType(column: ColumnInfo): string {
  if (column.isArray) return 'array';
  const element = column.type;
  if (column.enumValues) return 'string';
  if (INTEGER.has(element)) return 'integer';
  if (NUMBER.has(element)) return 'number';
  if (element === 'bool') return 'boolean';
  if (element === 'json' || element === 'jsonb') return 'object';
  if (element === 'date' || element === 'timestamp' || element === 'timestamptz') return 'date';
  return 'string';
}

/** The single-column primary key of a table, or undefined (none, composite, or a view). */
export function singleKey(table: TableInfo): string | undefined {
  return table.kind === 'table' && table.primaryKey.length === 1 ? table.primaryKey[0] : undefined;
}

/** A column the client must send on insert: not null, no default, writable. */
export function isRequired(column: ColumnInfo): boolean {
  return !column.nullable && !column.hasDefault && !column.readOnly;
}

/** GET /objects/{name}/metadata */
export function tableMetadata(table: TableInfo): Record<string, unknown> {
  const writable = table.kind === 'table';
  return {
    name: table.name,
    kind: table.kind,
    primaryKey: singleKey(table) ?? null,
    primaryKeyColumns: table.primaryKey,
    fields: table.columns.map((c) => ({
      vendorPath: c.name,
      type: fieldType(c),
      vendorNativeType: c.nativeType,
      vendorRequired: isRequired(c),
      vendorReadOnly: c.readOnly,
      createable: writable && !c.readOnly,
      updateable: writable && !c.readOnly,
      filterable: true,
      sortable: isOrderable(c),
      nullable: c.nullable,
      ...(c.enumValues ? { enumValues: c.enumValues } : {}),
    })),
  };
}
