// The promise across a real network boundary. A network namespace stands for the customer's
// network: it holds the private PostgreSQL and the agent, behind a firewall that drops every
// inbound connection, joined to the root namespace (the "cloud") by a veth pair. The relay runs
// in the root namespace. We assert that:
//   - the relay's side cannot open a connection to the database (dropped, like a firewall does);
//   - a ground2cloud instance serves the database's tables through the agent's outbound tunnel;
//   - a silent link (veth down: no FIN, no RST) turns calls into 503 tunnel_offline within the
//     keepalive bound;
//   - bringing the link back restores service by itself, with nothing restarted.
// Needs root and iproute2 (CI has both); elsewhere it skips, saying why.
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedPostgresBinaries, startEmbeddedPostgres } from '@g2c/relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, type Netns, netnsSkipReason } from '../helpers/netns.js';
import { fixturesDir } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';

const skip = netnsSkipReason();
if (skip) console.warn(`firewall end-to-end test skipped: ${skip}`);

// Short keepalive on both ends so that a dead link is noticed in seconds (defaults: 10 s / 25 s).
// (A relay without the keepalive flags keeps its defaults, and the bound follows.)
const relayHasKeepaliveFlags = execFileSync(process.execPath, [relayBin, '--help'], { encoding: 'utf8' }).includes(
  '--keepalive-timeout',
);
const KEEPALIVE_INTERVAL_MS = relayHasKeepaliveFlags ? 1000 : 10_000;
const KEEPALIVE_TIMEOUT_MS = relayHasKeepaliveFlags ? 3000 : 25_000;
const relayKeepaliveFlags = relayHasKeepaliveFlags
  ? ['--keepalive-interval', `${KEEPALIVE_INTERVAL_MS}ms`, '--keepalive-timeout', `${KEEPALIVE_TIMEOUT_MS}ms`]
  : [];
/** Detection bound: one interval until the next ping, then the timeout; plus a margin for a busy CI. */
const OFFLINE_BOUND_MS =
  KEEPALIVE_INTERVAL_MS + KEEPALIVE_TIMEOUT_MS + Math.max(4000, (KEEPALIVE_INTERVAL_MS + KEEPALIVE_TIMEOUT_MS) / 5);
const DB_PORT = 5432; // the namespace has its own ports

interface Secrets {
  organizationSecret: string;
  userSecret: string;
}

describe.skipIf(skip)('through a firewall that allows no inbound connection', () => {
  let root: string;
  let ns: Netns;
  let database: RunningProcess;
  let relay: RunningProcess;
  let agent: RunningProcess;
  let base: string;
  let platform: string;
  let element: string;
  const appPassword = 'app-password-firewall-test';

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'g2c-firewall-'));
    await chmod(root, 0o711);
    // A set-up that hangs says where, before the hook timeout cuts it.
    let stage = 'creating the namespace';
    const watchdog = setTimeout(() => console.error(`firewall e2e: set-up still ${stage} after 50 s`), 50_000);
    ns = await createNetns({ firewall: true });
    stage = 'seeding the private database';

    // The private database: made and seeded in the root namespace on loopback, then stopped
    // and started again inside the namespace, listening on every address there.
    const dataDir = join(root, 'private-db');
    const seedServer = await startEmbeddedPostgres({ dataDir, passwordFile: join(root, 'superuser.password') });
    try {
      await seedServer.createDatabase('crm');
      const client = new pg.Client({ connectionString: seedServer.url('crm') });
      await client.connect();
      try {
        await client.query(await readFile(join(fixturesDir, 'crm.sql'), 'utf8'));
        await client.query(`create role app login password '${appPassword}';
          grant select, insert, update, delete on all tables in schema public to app;
          grant usage, select on all sequences in schema public to app;`);
      } finally {
        await client.end();
      }
    } finally {
      await seedServer.stop();
    }
    // The agent connects from the namespace's own address.
    const hba = join(dataDir, 'pg_hba.conf');
    await writeFile(hba, `${await readFile(hba, 'utf8')}\nhost all all ${ns.nsAddress}/32 scram-sha-256\n`);
    // The same PostgreSQL binary, run by hand: inside the namespace, as `postgres` (from a copy
    // that user can reach when the checkout itself is not reachable).
    stage = 'starting the private database in the namespace';
    const { postgres } = await embeddedPostgresBinaries();
    database = await startProcess(
      'private-db',
      ...ns.wrap('setpriv', [
        '--reuid=postgres',
        '--regid=postgres',
        '--init-groups',
        postgres,
        '-D',
        dataDir,
        '-p',
        String(DB_PORT),
        '-c',
        'listen_addresses=*',
        '-c',
        'unix_socket_directories=',
      ]),
      { ready: /ready to accept connections/ },
    );

    // The relay, in the root namespace, on the pair's root-side address.
    stage = 'starting the relay';
    const relayPort = 18080;
    base = `http://${ns.hostAddress}:${relayPort}`;
    relay = await startProcess(
      'relay',
      relayBin,
      [
        'serve',
        '--listen',
        `${ns.hostAddress}:${relayPort}`,
        '--data-dir',
        join(root, 'relay'),
        ...relayKeepaliveFlags,
      ],
      { ready: /g2c-relay listening/, timeoutMs: 40_000 },
    );
    const secrets: Secrets = JSON.parse(await readFile(join(root, 'relay', 'credentials.json'), 'utf8'));
    platform = `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}`;
    clearTimeout(watchdog);
  });

  afterAll(async () => {
    await agent?.stop(3000);
    await relay?.stop();
    await database?.stop();
    await ns?.destroy();
    await rm(root, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, auth: string, body?: unknown, timeoutMs = 15_000) => {
    const response = await fetch(`${base}/elements/api-v2${path}`, {
      method,
      headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };

  it('the database cannot be reached from the relay side', async () => {
    const client = new pg.Client({
      host: ns.nsAddress,
      port: DB_PORT,
      user: 'app',
      password: appPassword,
      database: 'crm',
      connectionTimeoutMillis: 1500,
    });
    await expect(client.connect()).rejects.toThrow(/timeout|ETIMEDOUT|EHOSTUNREACH|ECONNREFUSED/i);
    await client.end().catch(() => {});
  });

  it('a ground2cloud instance serves its tables through the agent that dialled out', async () => {
    const tunnel = await call('POST', '/tunnels', platform, { name: 'customer-site' });
    expect(tunnel.status).toBe(200);
    agent = await startProcess(
      'agent',
      ...ns.wrap(process.execPath, [
        agentBin,
        '--relay',
        `ws://${ns.hostAddress}:${new URL(base).port}`,
        '--token',
        tunnel.body.token,
        '--allow',
        `${ns.nsAddress}:${DB_PORT}`,
        '--keepalive-interval',
        `${KEEPALIVE_INTERVAL_MS}ms`,
        '--keepalive-timeout',
        `${KEEPALIVE_TIMEOUT_MS}ms`,
      ]),
    );
    await waitFor('the tunnel online', 20_000, async () => {
      const { body } = await call('GET', `/tunnels/${tunnel.body.id}`, platform);
      return body.status === 'online';
    });

    const instance = await call('POST', '/instances', platform, {
      element: { key: 'postgresql' },
      name: 'crm-behind-firewall',
      configuration: {
        'db.host': `${ns.nsAddress}:${DB_PORT}`,
        'db.name': 'crm',
        username: 'app',
        password: appPassword,
        'connection.type': 'ground2cloud',
        'ground2cloud.tunnel': 'customer-site',
      },
    });
    expect(instance.status, JSON.stringify(instance.body)).toBe(200);
    element = `${platform}, Element ${instance.body.token}`;

    const ping = await call('GET', '/ping', element);
    expect(ping.body).toMatchObject({ status: 'ok', connection: 'ground2cloud' });
    const list = await call('GET', `/contacts?where=${encodeURIComponent('account_id = 8')}&orderBy=id`, element);
    expect(list.status).toBe(200);
    expect(list.body.length).toBeGreaterThan(0);
    expect(list.body.every((c: { account_id: unknown }) => Number(c.account_id) === 8)).toBe(true);
    const created = await call('POST', '/contacts', element, {
      account_id: 2,
      first_name: 'Across',
      last_name: 'Firewall',
      email: 'across.firewall@example.com',
    });
    expect(created.status).toBe(200);
    const read = await call('GET', `/contacts/${created.body.id}`, element);
    expect(read.body).toMatchObject({ email: 'across.firewall@example.com', status: 'lead' });
  });

  it(
    'a silent link turns calls into 503 tunnel_offline within the keepalive bound, and service returns by itself',
    {
      timeout: OFFLINE_BOUND_MS + 60_000,
    },
    async () => {
      expect(element, 'needs the instance of the previous test').toBeDefined();
      expect((await call('GET', '/ping', element)).status).toBe(200);

      await ns.setLink(false);
      const down = Date.now();
      // Calls made right after the cut may wait on the dead link; every answer must come by the bound.
      const answer = await waitFor('503 tunnel_offline', OFFLINE_BOUND_MS + 5000, async () => {
        const r = await call('GET', '/contacts?pageSize=1', element, undefined, OFFLINE_BOUND_MS).catch(
          () => undefined,
        );
        return r?.status === 503 ? r : undefined;
      });
      const detectedMs = Date.now() - down;
      expect(answer.body.code).toBe('tunnel_offline');
      expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(detectedMs).toBeLessThanOrEqual(OFFLINE_BOUND_MS);
      // The operator's view agrees.
      const status = await call('GET', '/tunnels/customer-site', platform);
      expect(status.body).toMatchObject({ status: 'offline', agents: [] });
      // While the link is down, calls keep failing fast (no hang).
      const started = Date.now();
      const again = await call('GET', '/accounts?pageSize=1', element);
      expect(again.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(2000);

      await ns.setLink(true);
      const up = Date.now();
      const back = await waitFor('service back', 45_000, async () => {
        const r = await call('GET', '/contacts?pageSize=2&orderBy=id', element).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      });
      const backMs = Date.now() - up;
      expect(back.body.map((c: { id: number }) => c.id)).toEqual([1, 2]);
      const online = await call('GET', '/tunnels/customer-site', platform);
      expect(online.body.status).toBe('online');
      expect(online.body.agents).toHaveLength(1);
      console.log(`firewall e2e: offline detected in ${detectedMs} ms, service back ${backMs} ms after link up`);
      // Nothing was restarted.
      for (const p of [relay, agent, database]) {
        expect(p.child.exitCode, `${p.name} exited`).toBeNull();
        expect(p.child.signalCode, `${p.name} was killed`).toBeNull();
      }
    },
  );
});

async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}
