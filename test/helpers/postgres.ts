// A private PostgreSQL server for one test file: a temp directory, a free port, fixture SQL,
// and nothing left behind afterwards (process and directory), even when a test fails.
//
//   const db = await startTestPostgres({ fixtures: ['crm.sql'] });
//   afterAll(() => db.stop());
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunningPostgres, startEmbeddedPostgres } from '@g2c/relay';
import pg from 'pg';

export const fixturesDir = fileURLToPath(
  new URL(import.meta.url.includes('/test/dist/') ? '../../fixtures/' : '../fixtures/', import.meta.url),
);

export interface TestPostgres extends RunningPostgres {
  /** The temp directory holding the cluster; removed by stop(). */
  dir: string;
  /** Runs SQL (several statements allowed) in `database` (default `postgres`). */
  query(sql: string, database?: string): Promise<pg.QueryResult>;
  /** Loads `test/fixtures/<name>` into `database`. */
  loadFixture(name: string, database?: string): Promise<void>;
}

const running = new Set<RunningPostgres>();
// A test runner that is interrupted still stops its servers.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([...running].map((p) => p.stop())).then(() => process.exit(130));
  });
}

export async function startTestPostgres(
  options: { fixtures?: string[]; settings?: Record<string, string | number> } = {},
): Promise<TestPostgres> {
  // /tmp, not the checkout: the postgres user must be able to reach it when we are root.
  const root = await mkdtemp(join(tmpdir(), 'g2c-pg-'));
  await chmod(root, 0o711);
  let server: RunningPostgres;
  try {
    server = await startEmbeddedPostgres({
      dataDir: join(root, 'data'),
      passwordFile: join(root, 'password'),
      ephemeral: true,
      settings: {
        fsync: 'off',
        synchronous_commit: 'off',
        full_page_writes: 'off',
        max_connections: 300,
        ...options.settings,
      },
    });
  } catch (err) {
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  running.add(server);
  const query = async (sql: string, database = 'postgres') => {
    const client = new pg.Client({ connectionString: server.url(database) });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const db: TestPostgres = {
    ...server,
    dir: root,
    query,
    loadFixture: async (name, database) => {
      await query(await readFile(join(fixturesDir, name), 'utf8'), database);
    },
    stop: async () => {
      running.delete(server);
      try {
        await server.stop();
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    },
  };
  for (const fixture of options.fixtures ?? []) await db.loadFixture(fixture);
  return db;
}
