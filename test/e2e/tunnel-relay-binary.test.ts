// The tunnel with every part as its own process: g2c-relay serve (store on the test
// PostgreSQL), g2c-agent binaries, g2c-relay forward, pg clients. What a user sees through
// the API and through forward when agents come and go, and what 200 agent connections in a
// row leave behind in the relay: sessions (API), presence rows (store) and memory (RSS).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@g2c/relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';
import { connectMiniAgent, startAgent, until } from './tunnel-setup.js';

let dir: string;
let target: TestPostgres;
let relay: RunningProcess;
let relayUrl: string;
let auth: string;
const storeDb = 'relay_binary_store';

const processes: RunningProcess[] = [];

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${relayUrl}/elements/api-v2${path}`, {
    method,
    headers: { authorization: auth, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function createTunnel(name: string): Promise<{ id: string; token: string; tokenFile: string }> {
  const tunnel = await api<{ id: string; token: string }>('POST', '/tunnels', { name });
  const tokenFile = join(dir, `token-${name}`);
  await writeFile(tokenFile, tunnel.token, { mode: 0o600 });
  return { ...tunnel, tokenFile };
}

const status = (id: string) =>
  api<{ status: string; agents: { id: string; activeStreams: number }[] }>('GET', `/tunnels/${id}`);

async function rss(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(text)?.[1]) * 1024;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'g2c-relay-binary-'));
  target = await startTestPostgres();
  await target.createDatabase(storeDb);
  const port = await freePort();
  relayUrl = `http://127.0.0.1:${port}`;
  relay = await startProcess(
    'relay',
    relayBin,
    [
      'serve',
      '--listen',
      `127.0.0.1:${port}`,
      '--data-dir',
      join(dir, 'data'),
      '--database-url',
      target.url(storeDb),
      // Short liveness on the relay's side too: a frozen agent is dropped within 1.3 s.
      '--keepalive-interval',
      '300ms',
      '--keepalive-timeout',
      '1s',
    ],
    {
      env: { G2C_MASTER_KEY: Buffer.alloc(32, 9).toString('base64') },
      ready: /g2c-relay listening/,
      timeoutMs: 40_000,
    },
  );
  processes.push(relay);
  const secrets = JSON.parse(await readFile(join(dir, 'data', 'credentials.json'), 'utf8'));
  auth = `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}`;
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(processes.reverse().map((p) => p.stop()));
  await target?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('with the relay binary', () => {
  it('two agents, one SIGKILLed under load through forward: its connections fail fast, new ones all succeed', async () => {
    const tunnel = await createTunnel('ha');
    const agentArgs = { allow: [`127.0.0.1:${target.port}`], args: ['--keepalive-interval', '1s'] };
    const a = await startAgent('agent-a', relayUrl, tunnel.tokenFile, agentArgs);
    processes.push(a);
    await until('a online', async () => (await status(tunnel.id)).agents.length === 1);
    const aId = (await status(tunnel.id)).agents[0]!.id;
    processes.push(await startAgent('agent-b', relayUrl, tunnel.tokenFile, agentArgs));
    await until('two agents', async () => (await status(tunnel.id)).agents.length === 2);

    const forwardPort = await freePort();
    const secrets = JSON.parse(await readFile(join(dir, 'data', 'credentials.json'), 'utf8'));
    const forward = await startProcess(
      'forward',
      relayBin,
      [
        'forward',
        '--relay',
        relayUrl,
        '--tunnel',
        'ha',
        '--to',
        `127.0.0.1:${target.port}`,
        '--listen',
        `127.0.0.1:${forwardPort}`,
      ],
      { env: { G2C_USER_SECRET: secrets.userSecret, G2C_ORG_SECRET: secrets.organizationSecret }, ready: /forwarding/ },
    );
    processes.push(forward);
    const config = {
      host: '127.0.0.1',
      port: forwardPort,
      user: target.user,
      password: target.password,
      database: 'postgres',
    };
    const clients = Array.from({ length: 12 }, () => new pg.Client(config));
    for (const c of clients) {
      c.on('error', () => {});
      await c.connect();
    }
    const onA = (await status(tunnel.id)).agents.find((x) => x.id === aId)!.activeStreams;
    expect(onA).toBeGreaterThan(0);
    expect(onA).toBeLessThan(12);
    const outcomes = clients.map((c) =>
      c.query('select pg_sleep(3)').then(
        () => ({ ok: true, at: Date.now() }),
        (err: Error) => ({ ok: false, at: Date.now(), err }),
      ),
    );
    await sleep(300);
    const killedAt = Date.now();
    a.signal('SIGKILL');
    const results = await Promise.all(outcomes);
    const failed = results.filter((r) => !r.ok);
    expect(failed).toHaveLength(onA);
    for (const f of failed) {
      expect(f.at - killedAt).toBeLessThan(1500);
      expect((f as { err: Error }).err.message).toMatch(/terminated|closed|reset/i);
    }
    await Promise.allSettled(clients.map((c) => c.end()));
    await until('a gone', async () => (await status(tunnel.id)).agents.length === 1, 5000);
    const fresh = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const c = new pg.Client(config);
        await c.connect();
        try {
          return (await c.query('select $1::int as i', [i])).rows[0].i;
        } finally {
          await c.end();
        }
      }),
    );
    expect(fresh).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('a frozen agent (SIGSTOP): the relay fails its connections and shows it offline within the keepalive bound', async () => {
    const tunnel = await createTunnel('frozen');
    const frozen = await startAgent('agent-frozen', relayUrl, tunnel.tokenFile, {
      allow: [`127.0.0.1:${target.port}`],
      args: ['--keepalive-interval', '300ms', '--keepalive-timeout', '1s'],
    });
    processes.push(frozen);
    await until('online', async () => (await status(tunnel.id)).status === 'online');
    const forwardPort = await freePort();
    const secrets = JSON.parse(await readFile(join(dir, 'data', 'credentials.json'), 'utf8'));
    const forward = await startProcess(
      'forward-frozen',
      relayBin,
      [
        'forward',
        '--relay',
        relayUrl,
        '--tunnel',
        'frozen',
        '--to',
        `127.0.0.1:${target.port}`,
        '--listen',
        `127.0.0.1:${forwardPort}`,
      ],
      {
        env: { G2C_USER_SECRET: secrets.userSecret, G2C_ORG_SECRET: secrets.organizationSecret },
        ready: /forwarding/,
      },
    );
    processes.push(forward);
    const client = new pg.Client({
      host: '127.0.0.1',
      port: forwardPort,
      user: target.user,
      password: target.password,
      database: 'postgres',
    });
    client.on('error', () => {});
    await client.connect();
    const query = client.query('select pg_sleep(30)').then(
      () => undefined,
      (err: Error) => err,
    );
    await sleep(100);
    frozen.signal('SIGSTOP');
    const stoppedAt = Date.now();
    expect(await query).toBeInstanceOf(Error);
    const failedAfter = Date.now() - stoppedAt;
    await until('offline', async () => (await status(tunnel.id)).status === 'offline', 5000);
    const offlineAfter = Date.now() - stoppedAt;
    // 300 ms + 1 s, plus scheduling margin on a busy machine.
    expect(failedAfter).toBeLessThan(3000);
    expect(offlineAfter).toBeLessThan(3500);
    frozen.signal('SIGCONT');
    await until('online again', async () => (await status(tunnel.id)).status === 'online', 10_000);
  });

  it('200 agent connections in a row: sessions, presence rows and relay memory come back to where they were', async () => {
    const tunnel = await createTunnel('churn');
    const presence = async () =>
      Number(
        (await target.query(`select count(*) as n from agent_presence where tunnel_id = '${tunnel.id}'`, storeDb))
          .rows[0].n,
      );
    const cycle = async (i: number) => {
      const mini = await connectMiniAgent(relayUrl, tunnel.token);
      await until('online', async () => (await status(tunnel.id)).status === 'online', 5000);
      if (i % 4 < 2) mini.ws.terminate();
      else await mini.session.close();
      mini.ws.terminate();
      await until('offline', async () => (await status(tunnel.id)).status === 'offline', 5000);
    };
    for (let i = 0; i < 20; i++) await cycle(i);
    await sleep(500);
    const rss0 = await rss(relay.pid);
    for (let i = 20; i < 200; i++) await cycle(i);
    await until('presence rows gone', async () => (await presence()) === 0, 5000);
    expect((await status(tunnel.id)).agents).toEqual([]);
    await sleep(500);
    const growth = (await rss(relay.pid)) - rss0;
    if (process.env.G2C_TEST_VERBOSE) console.log(`relay RSS ${rss0} -> +${growth} bytes over 180 sessions`);
    // 180 sessions with a mux session, a WebSocket and buffers each: none may stay behind.
    expect(growth).toBeLessThan(32 * 1024 * 1024);
    expect(relay.child.exitCode).toBeNull();
  });
});
