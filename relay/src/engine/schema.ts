// The engine's view of a database schema: plain data, filled by engine/schema-cache.ts
// (introspection) and read by the pure pipeline (engine/plan.ts, engine/sql.ts). Nothing
// here touches a database, so a schema can be written by hand in unit tests.

/** One column of a table or view, as introspected from pg_catalog. */
export interface ColumnInfo {
  /** The column name exactly as in the catalogue (case and spaces kept). */
  name: string;
  /** pg_type.typname of the column's type, e.g. `int8`, `numeric`, `_text` (arrays start with `_`). */
  type: string;
  /** format_type() of the column, e.g. `numeric(40,10)`, `character varying(20)`, `text[]`. */
  nativeType: string;
  nullable: boolean;
  hasDefault: boolean;
  /** Generated column, identity ALWAYS, or a column of a view: never written by the engine. */
  readOnly: boolean;
  isArray: boolean;
  /** Labels in sort order, when the column's type (or element type) is an enum. */
  enumValues?: string[];
}

/** One table or view that an instance exposes. */
export interface TableInfo {
  schema: string;
  name: string;
  kind: 'table' | 'view';
  /** Primary key columns in key order; empty when the table has none (always for views). */
  primaryKey: string[];
  columns: ColumnInfo[];
}

/** The column named `name` (exact, case-sensitive match), or undefined. */
export function findColumn(table: TableInfo, name: string): ColumnInfo | undefined {
  return table.columns.find((c) => c.name === name);
}
