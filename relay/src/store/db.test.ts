// Store and migrations against a real PostgreSQL.
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';
import { authenticate } from '../auth/credentials.js';
import { createLogger } from '../logger.js';
import { createStore, openStore, type Store } from './db.js';
import { loadMigrations, migrate } from './migrations.js';

let db: TestPostgres;
const pools: pg.Pool[] = [];
const logger = createLogger('silent');

function pool(database: string): pg.Pool {
  const p = new pg.Pool({ connectionString: db.url(database), max: 4 });
  p.on('connect', (client) => client.on('error', () => {}));
  p.on('error', () => {});
  pools.push(p);
  return p;
}

beforeAll(async () => {
  db = await startTestPostgres();
});
afterAll(async () => {
  await Promise.allSettled(pools.map((p) => p.end()));
  await db?.stop();
});

describe('migrations', () => {
  it('finds the numbered files in order, starting with 001-initial', async () => {
    const migrations = await loadMigrations();
    expect(migrations[0]).toMatchObject({ version: 1, name: 'initial' });
    expect(migrations.map((m) => m.version)).toEqual([...migrations.map((m) => m.version)].sort((a, b) => a - b));
  });

  it('applies every migration once and is idempotent', async () => {
    await db.createDatabase('idem');
    const p = pool('idem');
    const first = await migrate(p, logger);
    expect(first[0]).toBe(1);
    expect(await migrate(p, logger)).toEqual([]);
    const { rows } = await p.query('select version from schema_migrations order by version');
    expect(rows.map((r) => r.version)).toEqual(first);
  });

  it('is safe when several relays start together on an empty store', async () => {
    await db.createDatabase('race');
    const results = await Promise.all(Array.from({ length: 5 }, () => migrate(pool('race'), logger)));
    const applied = results.flat();
    expect(new Set(applied).size).toBe(applied.length);
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
  });

  it('rolls back a failing migration and names it', async () => {
    await db.createDatabase('broken');
    const p = pool('broken');
    await expect(
      migrate(p, logger, [
        { version: 1, name: 'ok', sql: 'create table a (x int)' },
        { version: 2, name: 'bad', sql: 'create table b (x int); select * from nowhere' },
      ]),
    ).rejects.toThrow(/002-bad failed/);
    const { rows } = await p.query(`select to_regclass('b') as b, to_regclass('a') as a`);
    expect(rows[0]).toEqual({ a: 'a', b: null });
  });
});

describe('store', () => {
  let store: Store;
  beforeAll(async () => {
    await db.createDatabase('store');
    const p = new pg.Pool({ connectionString: db.url('store'), max: 4 });
    store = createStore(p);
    await migrate(p, logger);
  });
  afterAll(() => store?.close());

  it('keeps only hashes of org and user secrets, and authenticates the pair', async () => {
    const created = await store.orgs.create('acme');
    const { rows } = await store.pool.query(
      'select secret_hash from organizations union all select secret_hash from users',
    );
    for (const row of rows) {
      expect(row.secret_hash).not.toBe(created.organizationSecret);
      expect(row.secret_hash).not.toBe(created.userSecret);
    }
    expect(await store.orgs.authenticate(created.organizationSecret, created.userSecret)).toEqual({
      orgId: created.organization.id,
      userId: created.userId,
    });
    const other = await store.orgs.create('other');
    expect(await store.orgs.authenticate(created.organizationSecret, other.userSecret)).toBeUndefined();
    expect(await store.orgs.authenticate('x', created.userSecret)).toBeUndefined();

    const header = { authorization: `Organization ${created.organizationSecret}, User ${created.userSecret}` };
    expect(await authenticate({ headers: header }, store)).toMatchObject({ orgId: created.organization.id });
    await expect(
      authenticate(
        { headers: { authorization: `User ${other.userSecret}, Organization ${created.organizationSecret}` } },
        store,
      ),
    ).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    await expect(authenticate({ headers: header }, store, { element: true })).rejects.toMatchObject({ status: 401 });
  });

  it('scopes tunnels to their organization and finds them by id or name', async () => {
    const a = await store.orgs.create('org-a');
    const b = await store.orgs.create('org-b');
    const t = await store.tunnels.create(a.organization.id, 'plant', 'j1');
    expect(await store.tunnels.find(a.organization.id, t.id)).toMatchObject({ id: t.id, name: 'plant' });
    expect(await store.tunnels.find(a.organization.id, 'plant')).toMatchObject({ id: t.id });
    expect(await store.tunnels.find(b.organization.id, t.id)).toBeUndefined();
    expect(await store.tunnels.find(b.organization.id, 'plant')).toBeUndefined();
    expect(await store.tunnels.delete(b.organization.id, t.id)).toBe(false);
    await expect(store.tunnels.create(a.organization.id, 'plant', 'j2')).rejects.toThrow(/already exists/);
    expect(await store.tunnels.create(b.organization.id, 'plant', 'j3')).toMatchObject({ name: 'plant' });
    expect(await store.tunnels.instancesUsing(t.id)).toBe(0);
    expect(await store.tunnels.delete(a.organization.id, t.id)).toBe(true);
  });

  it('records presence and clears a node', async () => {
    const o = await store.orgs.create('presence-org');
    const t = await store.tunnels.create(o.organization.id, 'p', 'j');
    const base = {
      tunnelId: t.id,
      version: '0.1.0',
      hostname: 'h',
      remoteAddress: '127.0.0.1',
      connectedAt: new Date(),
    };
    await store.presence.agentConnected({ ...base, sessionId: 's1', nodeId: 'n1' });
    await store.presence.agentConnected({ ...base, sessionId: 's2', nodeId: 'n1' });
    await store.presence.agentConnected({ ...base, sessionId: 's3', nodeId: 'n2' });
    await store.presence.agentSeen('s1');
    expect((await store.presence.listTunnel(t.id)).map((r) => r.sessionId).sort()).toEqual(['s1', 's2', 's3']);
    await store.presence.agentDisconnected('s2');
    expect(await store.presence.clearNode('n1')).toBe(1);
    expect((await store.presence.listTunnel(t.id)).map((r) => r.sessionId)).toEqual(['s3']);
    await store.pool.query(
      `update agent_presence set last_seen = now() - interval '11 minutes' where session_id = 's3'`,
    );
    await store.presence.agentConnected({ ...base, sessionId: 's4', nodeId: 'n3' });
    expect(await store.presence.clearStale(10 * 60_000)).toBe(1);
    expect((await store.presence.listTunnel(t.id)).map((r) => r.sessionId)).toEqual(['s4']);
    await store.tunnels.delete(o.organization.id, t.id);
    expect(await store.presence.listTunnel(t.id)).toEqual([]);
  });

  it('keeps one installation-wide setting, first writer wins', async () => {
    const a = await store.settings.getOrCreate('k', () => 'first');
    const b = await store.settings.getOrCreate('k', () => 'second');
    expect([a, b]).toEqual(['first', 'first']);
  });
});

describe('openStore', () => {
  it('gives up on a store that accepts TCP and never answers, instead of hanging', async () => {
    const held: Socket[] = [];
    const blackHole = createServer((socket) => held.push(socket));
    blackHole.listen(0, '127.0.0.1');
    await once(blackHole, 'listening');
    const { port } = blackHole.address() as AddressInfo;
    try {
      const outcome = await Promise.race([
        openStore({
          databaseUrl: `postgres://relay:pw@127.0.0.1:${port}/store`,
          dataDir: '/nonexistent',
          logger: createLogger('silent'),
          role: 'serve',
          connectTimeoutMs: 300,
        }).then(
          () => 'opened',
          (err: Error) => err.message,
        ),
        new Promise((r) => setTimeout(() => r('still waiting'), 5000)),
      ]);
      expect(outcome).toMatch(/cannot reach the store at --database-url: .*timeout/i);
    } finally {
      for (const s of held) s.destroy();
      blackHole.close();
    }
  });
});
