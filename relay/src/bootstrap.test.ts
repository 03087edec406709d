// First-start bootstrap on a real store: one organization, its secrets in a fresh 0600 file.
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../test/helpers/postgres.js';
import { bootstrap } from './bootstrap.js';
import { createStore, type Store } from './store/db.js';
import { migrate } from './store/migrations.js';

let db: TestPostgres;
let store: Store;
let dir: string;

beforeAll(async () => {
  db = await startTestPostgres();
  const pool = new pg.Pool({ connectionString: db.url(), max: 2 });
  store = createStore(pool);
  await migrate(pool);
  dir = await mkdtemp(join(tmpdir(), 'g2c-bootstrap-'));
});
afterAll(async () => {
  await store?.close();
  await db?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('bootstrap', () => {
  it('replaces a leftover credentials.json (here a symlink) instead of writing through it', async () => {
    const elsewhere = join(dir, 'elsewhere.txt');
    await writeFile(elsewhere, 'untouched\n', { mode: 0o644 });
    await symlink(elsewhere, join(dir, 'credentials.json'));
    const file = await bootstrap(store, dir, pino({ level: 'silent' }));
    expect(file).toBe(join(dir, 'credentials.json'));
    expect(await readFile(elsewhere, 'utf8')).toBe('untouched\n');
    const info = await stat(file!);
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    const secrets = JSON.parse(await readFile(file!, 'utf8'));
    expect(await store.orgs.authenticate(secrets.organizationSecret, secrets.userSecret)).toBeTruthy();
    // Second start: the store has an organization, nothing is written.
    expect(await bootstrap(store, dir, pino({ level: 'silent' }))).toBeUndefined();
  });
});
