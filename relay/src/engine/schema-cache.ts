// Introspects one schema of an instance's database into the engine's plain TableInfo data
// (engine/schema.ts) and keeps it per instance: refreshed on a TTL (stale answers are served
// while a refresh runs) and at once when a request names something the cache does not know.
import type { ColumnInfo, TableInfo } from './schema.js';

/** Anything that runs a query the way pg does (a Pool or a Client). */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export const SCHEMA_CACHE_DEFAULTS = {
  /** Age after which the next use triggers a background refresh. */
  ttlMs: 60_000,
  /** Refresh-on-miss happens at most this often (an unknown name must not hammer the catalogue). */
  minMissRefreshIntervalMs: 1_000,
};

// Tables (plain, partitioned, foreign) and views (plain, materialised) of one schema that the
// connected user may read. Partitions are reached through their parent. Domains are reported
// by their base type; enum labels come with enum columns and enum arrays.
const INTROSPECT_SQL = `
SELECT c.relname::text AS name,
       CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END AS kind,
       COALESCE((
         SELECT array_agg(a.attname::text ORDER BY k.ord)
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid AND i.indisprimary
       ), '{}'::text[]) AS primary_key,
       COALESCE((
         SELECT json_agg(json_build_object(
           'name', a.attname,
           'type', bt.typname,
           'nativeType', format_type(a.atttypid, a.atttypmod),
           'notNull', a.attnotnull,
           'hasDefault', a.atthasdef OR a.attidentity <> '',
           'identityAlways', a.attidentity = 'a',
           'generated', a.attgenerated <> '',
           'isArray', bt.typcategory = 'A',
           'enumValues', (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e
                          WHERE e.enumtypid = CASE WHEN bt.typcategory = 'A' THEN bt.typelem ELSE bt.oid END)
         ) ORDER BY a.attnum)
         FROM pg_attribute a
         JOIN pg_type t ON t.oid = a.atttypid
         JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       ), '[]') AS columns
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND NOT c.relispartition
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY c.relname`;

interface RawColumn {
  name: string;
  type: string;
  nativeType: string;
  notNull: boolean;
  hasDefault: boolean;
  identityAlways: boolean;
  generated: boolean;
  isArray: boolean;
  enumValues: string[] | null;
}

/** `db.table.names` as a predicate: exact names, or `prefix*`; undefined lets everything through. */
export function tableNameFilter(patterns: string[] | undefined): (name: string) => boolean {
  if (!patterns || patterns.length === 0) return () => true;
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

/** Reads the tables and views of `schema` that pass `filter`. */
export async function introspect(
  db: Queryable,
  schema: string,
  filter: (name: string) => boolean,
): Promise<TableInfo[]> {
  const { rows } = await db.query(INTROSPECT_SQL, [schema]);
  const tables: TableInfo[] = [];
  for (const row of rows as { name: string; kind: 'table' | 'view'; primary_key: string[]; columns: RawColumn[] }[]) {
    if (!filter(row.name)) continue;
    const isView = row.kind === 'view';
    const columns: ColumnInfo[] = row.columns.map((c) => {
      const column: ColumnInfo = {
        name: c.name,
        type: c.type,
        nativeType: c.nativeType,
        nullable: !c.notNull,
        hasDefault: c.hasDefault,
        readOnly: isView || c.generated || c.identityAlways,
        isArray: c.isArray,
      };
      if (c.enumValues) column.enumValues = c.enumValues;
      return column;
    });
    tables.push({ schema, name: row.name, kind: row.kind, primaryKey: isView ? [] : row.primary_key, columns });
  }
  return tables;
}

/** The schema of one instance, kept fresh. */
export class SchemaCache {
  private tables = new Map<string, TableInfo>();
  private loadedAt: number | undefined;
  private lastMissRefresh = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly load: () => Promise<TableInfo[]>,
    private readonly options: { ttlMs?: number; now?: () => number } = {},
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /** Builds the cache from `tables` without a query (the validation probe already read them). */
  prime(tables: TableInfo[]): void {
    this.tables = new Map(tables.map((t) => [t.name, t]));
    this.loadedAt = this.now();
  }

  /** Loads the schema again; concurrent callers share one query. */
  refresh(): Promise<void> {
    this.refreshing ??= this.load()
      .then((tables) => this.prime(tables))
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /** Every exposed table and view, by name. Loads on first use; refreshes in the background when stale. */
  async all(): Promise<Map<string, TableInfo>> {
    if (this.loadedAt === undefined) await this.refresh();
    else if (this.now() - this.loadedAt > (this.options.ttlMs ?? SCHEMA_CACHE_DEFAULTS.ttlMs)) {
      this.refresh().catch(() => {}); // the stale schema answers meanwhile; the next use retries
    }
    return this.tables;
  }

  /** The table or view `name` when the cache holds it and is fresh; else undefined (then use table()). */
  freshTable(name: string): TableInfo | undefined {
    if (this.loadedAt === undefined) return undefined;
    if (this.now() - this.loadedAt > (this.options.ttlMs ?? SCHEMA_CACHE_DEFAULTS.ttlMs)) return undefined;
    return this.tables.get(name);
  }

  /** The table or view `name`; an unknown name refreshes the cache once before answering undefined. */
  async table(name: string): Promise<TableInfo | undefined> {
    const found = (await this.all()).get(name);
    if (found) return found;
    if (!(await this.refreshOnMiss())) return undefined;
    return this.tables.get(name);
  }

  /**
   * A request named something the cache does not know (a table, or a column in where/fields/
   * orderBy): reload, unless that was done less than minMissRefreshIntervalMs ago. True when
   * it reloaded (the caller then tries once more).
   */
  async refreshOnMiss(): Promise<boolean> {
    if (this.now() - this.lastMissRefresh < SCHEMA_CACHE_DEFAULTS.minMissRefreshIntervalMs) return false;
    this.lastMissRefresh = this.now();
    await this.refresh();
    return true;
  }
}
