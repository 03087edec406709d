// Shared by the engine-sql tests: a real PostgreSQL loaded with fixture.sql, a client that
// runs the engine's generated SQL, and the tables as the relay's schema cache sees them.
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import type { ListRow } from '../../relay/src/engine/paging.js';
import type { TableInfo } from '../../relay/src/engine/schema.js';
import { introspect } from '../../relay/src/engine/schema-cache.js';
import { type SqlQuery, textQuery } from '../../relay/src/engine/sql.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

export const SCHEMA = 'Engine Sql';

export interface EngineDatabase {
  server: TestPostgres;
  client: pg.Client;
  tables: Map<string, TableInfo>;
  run<R = { row: string; cursor?: (string | null)[] }>(query: SqlQuery): Promise<R[]>;
  /** Runs a list query as the relay does (rows as arrays of text), for finishList. */
  listRows(query: SqlQuery): Promise<ListRow[]>;
  table(name: string): TableInfo;
  stop(): Promise<void>;
}

export async function startEngineDatabase(): Promise<EngineDatabase> {
  const server = await startTestPostgres();
  let client: pg.Client | undefined;
  try {
    await server.query(await readFile(new URL('./fixture.sql', import.meta.url), 'utf8'));
    client = new pg.Client({ connectionString: server.url('postgres') });
    await client.connect();
    // A fixed zone so that timestamptz texts are predictable in assertions.
    await client.query("SET TimeZone = 'UTC'");
    const tables = new Map((await introspect(client, SCHEMA, () => true)).map((t) => [t.name, t]));
    const c = client;
    return {
      server,
      client: c,
      tables,
      run: async (query) => (await c.query(query.text, query.values)).rows,
      listRows: async (query) => (await c.query<string[]>(textQuery(query))).rows as unknown as ListRow[],
      table: (name) => {
        const table = tables.get(name);
        if (!table) throw new Error(`no table ${name}`);
        return table;
      },
      stop: async () => {
        await c.end().catch(() => {});
        await server.stop();
      },
    };
  } catch (err) {
    await client?.end().catch(() => {});
    await server.stop();
    throw err;
  }
}

/** The fields of a JSON object text with each value's exact text, split by PostgreSQL (json keeps text). */
export async function jsonFields(db: EngineDatabase, text: string): Promise<Record<string, string>> {
  const { rows } = await db.client.query('SELECT key, value::text AS value FROM json_each($1::json)', [text]);
  return Object.fromEntries(rows.map((r: { key: string; value: string }) => [r.key, r.value]));
}
