// The relay with a real agent and a real private PostgreSQL, all as separate processes on
// loopback: forward (pg, psql, pgbench through it), token rotation, relay restart.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '@g2c/relay';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';

const run = promisify(execFile);
let target: TestPostgres;
let root: string;
let dataDir: string;
let relayPort: number;
let relay: RunningProcess;
let agent: RunningProcess;
let forward: RunningProcess;
let forwardPort: number;
let secrets: { organizationSecret: string; userSecret: string };
let tunnel: { id: string; token: string };
const processes: RunningProcess[] = [];

const relayUrl = () => `http://127.0.0.1:${relayPort}`;
const headers = () => ({ authorization: `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}` });

async function startRelay(): Promise<RunningProcess> {
  const p = await startProcess('relay', relayBin, ['--listen', `127.0.0.1:${relayPort}`, '--data-dir', dataDir], {
    ready: /g2c-relay listening/,
    timeoutMs: 40_000,
  });
  processes.push(p);
  return p;
}

async function startAgent(tokenFile: string): Promise<RunningProcess> {
  const p = await startProcess(
    'agent',
    agentBin,
    [
      '--relay',
      relayUrl(),
      '--token-file',
      tokenFile,
      '--allow',
      `127.0.0.1:${target.port}`,
      '--keepalive-interval',
      '1s',
      '--keepalive-timeout',
      '4s',
    ],
    { ready: /connected to the relay/ },
  );
  processes.push(p);
  return p;
}

async function tunnelStatus(): Promise<{ status: string; agents: Record<string, unknown>[] }> {
  const res = await fetch(`${relayUrl()}/elements/api-v2/tunnels/${tunnel.id}`, { headers: headers() });
  return res.json();
}

async function waitStatus(status: 'online' | 'offline', timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await tunnelStatus().catch(() => undefined))?.status === status) return;
    await sleep(100);
  }
  throw new Error(`tunnel not ${status} after ${timeoutMs} ms`);
}

/** Runs SQL on the relay's embedded store (port from postmaster.pid, password from pg.password). */
async function storeQuery(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const pid = (await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n');
  const password = (await readFile(join(dataDir, 'pg.password'), 'utf8')).trim();
  const client = new pg.Client({
    host: '127.0.0.1',
    port: Number(pid[3]),
    user: 'postgres',
    password,
    database: 'postgres',
  });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

const presenceCount = async () =>
  (await storeQuery('select count(*)::int as n from agent_presence where tunnel_id = $1', [tunnel.id])).rows[0].n;

function forwardedUrl(database = 'postgres'): string {
  return `postgres://${target.user}:${encodeURIComponent(target.password)}@127.0.0.1:${forwardPort}/${database}`;
}

beforeAll(async () => {
  target = await startTestPostgres();
  await target.query(
    'create table items (id int primary key, label text); insert into items select g, md5(g::text) from generate_series(1, 1000) g',
  );
  root = await mkdtemp(join(tmpdir(), 'g2c-tunnel-e2e-'));
  await chmod(root, 0o711);
  dataDir = join(root, 'data');
  relayPort = await freePort();
  relay = await startRelay();
  secrets = JSON.parse(await readFile(join(dataDir, 'credentials.json'), 'utf8'));
  const res = await fetch(`${relayUrl()}/elements/api-v2/tunnels`, {
    method: 'POST',
    headers: { ...headers(), 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'plant' }),
  });
  tunnel = await res.json();
  await writeFile(join(root, 'token'), tunnel.token, { mode: 0o600 });
  agent = await startAgent(join(root, 'token'));
  await waitStatus('online');
  forwardPort = await freePort();
  forward = await startProcess(
    'forward',
    relayBin,
    [
      'forward',
      '--relay',
      relayUrl(),
      '--tunnel',
      'plant',
      '--to',
      `127.0.0.1:${target.port}`,
      '--listen',
      `127.0.0.1:${forwardPort}`,
    ],
    { env: { G2C_USER_SECRET: secrets.userSecret, G2C_ORG_SECRET: secrets.organizationSecret }, ready: /forwarding/ },
  );
  processes.push(forward);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(processes.map((p) => p.stop()));
  await target?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('relay with an agent', () => {
  it('shows the agent in the tunnel status', async () => {
    const status = await tunnelStatus();
    expect(status.status).toBe('online');
    expect(status.agents).toHaveLength(1);
    expect(status.agents[0]).toMatchObject({ remoteAddress: expect.stringContaining('127.0.0.1'), activeStreams: 0 });
    const { rows } = await storeQuery('select node_id, hostname from agent_presence where tunnel_id = $1', [tunnel.id]);
    expect(rows).toHaveLength(1);
    expect(rows[0].node_id).toMatch(new RegExp(`:${relayPort}$`));
  });

  it('forwards pg, psql and pgbench to the private database', async () => {
    const client = new pg.Client({ connectionString: forwardedUrl() });
    await client.connect();
    try {
      const { rows } = await client.query('select count(*)::int as n, sum(id)::int as s from items');
      expect(rows[0]).toEqual({ n: 1000, s: 500500 });
      await client.query('begin');
      await client.query(`insert into items values (5000, 'tx')`);
      await client.query('rollback');
      expect((await client.query('select count(*)::int as n from items')).rows[0].n).toBe(1000);
    } finally {
      await client.end();
    }

    const psql = await run('psql', [forwardedUrl(), '-Atc', 'select label from items where id = 7']);
    expect(psql.stdout.trim()).toBe((await target.query('select md5(7::text) as m')).rows[0].m);

    await target.createDatabase('bench');
    await run('pgbench', ['-i', '-q', '-s', '1', target.url('bench')]);
    const bench = await run('pgbench', ['-n', '-S', '-c', '4', '-j', '2', '-t', '200', forwardedUrl('bench')]);
    expect(bench.stdout).toMatch(/number of transactions actually processed: 800\/800/);
    expect(bench.stdout).toMatch(/number of failed transactions: 0/);
  });

  it('200 short connections through forward leave no stream open behind them', async () => {
    const bench = await run('pgbench', ['-n', '-S', '-C', '-c', '4', '-j', '2', '-t', '50', forwardedUrl('bench')]);
    expect(bench.stdout).toMatch(/number of transactions actually processed: 200\/200/);
    const deadline = Date.now() + 10_000;
    let active = -1;
    while (Date.now() < deadline) {
      active = Number((await tunnelStatus()).agents[0]?.activeStreams);
      if (active === 0) break;
      await sleep(100);
    }
    expect(active).toBe(0);
  });

  it('a target outside the allowlist fails that connection only, with the agent code in the log', async () => {
    const port = await freePort();
    const refused = await startProcess(
      'forward-refused',
      relayBin,
      ['forward', '--relay', relayUrl(), '--tunnel', tunnel.id, '--to', '127.0.0.1:1', '--listen', `127.0.0.1:${port}`],
      { env: { G2C_USER_SECRET: secrets.userSecret, G2C_ORG_SECRET: secrets.organizationSecret }, ready: /forwarding/ },
    );
    processes.push(refused);
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'x',
      database: 'x',
      connectionTimeoutMillis: 10_000,
    });
    await expect(client.connect()).rejects.toThrow();
    await refused.waitForLine(/not_allowed/);
    await refused.stop();
    expect((await tunnelStatus()).status).toBe('online');
  });

  it('after a relay restart on the same data dir the agent reconnects by itself and the token still works', async () => {
    // A session open through the tunnel while the relay shuts down is cut, not left hanging,
    // and the relay still exits 0 well within its grace period.
    const open = new pg.Client({ connectionString: forwardedUrl() });
    await open.connect();
    const cut = new Promise<Error>((resolve) => open.once('error', resolve));
    const stopping = Date.now();
    expect(await relay.stop()).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(8000);
    expect((await cut).message).toMatch(/terminated|ECONNRESET|closed/i);
    await open.end().catch(() => {});
    await agent.waitForLine(/lost the relay session|cannot connect/);
    relay = await startRelay();
    await waitStatus('online', 30_000);
    const { stdout } = await run('psql', [forwardedUrl(), '-Atc', 'select count(*) from items']);
    expect(stdout.trim()).toBe('1000');
  });

  it('rotation closes the old session, the old token gets 401 token_revoked, the new one connects', async () => {
    const res = await fetch(`${relayUrl()}/elements/api-v2/tunnels/${tunnel.id}/token`, {
      method: 'POST',
      headers: headers(),
    });
    const { token } = await res.json();
    // The agent with the old token is disconnected, told its token is revoked, and stops.
    expect(await agent.exited).not.toBe('unknown');
    expect(agent.lines.join('\n')).toMatch(/revoked/);
    await waitStatus('offline');

    const refusal = await new Promise<{ status: number; body: { code: string } }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${relayPort}/agent/v1/connect`, 'g2c.v1', {
        headers: { authorization: `Bearer ${tunnel.token}` },
      });
      ws.on('open', () => reject(new Error('old token accepted')));
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, r) => {
        let text = '';
        r.on('data', (c) => {
          text += c;
        });
        r.on('end', () => resolve({ status: r.statusCode!, body: JSON.parse(text) }));
      });
    });
    expect(refusal).toMatchObject({ status: 401, body: { code: 'token_revoked' } });

    await writeFile(join(root, 'token2'), token, { mode: 0o600 });
    agent = await startAgent(join(root, 'token2'));
    await waitStatus('online');
    expect(await presenceCount()).toBe(1);
  });

  it('a relay killed with SIGKILL leaves presence rows that the next start clears', async () => {
    relay.signal('SIGKILL');
    await relay.exited;
    relay = await startRelay();
    await waitStatus('online', 30_000);
    // The dead session's row is gone; only the reconnected agent's row remains.
    expect(await presenceCount()).toBe(1);
    expect(relay.lines.join('\n')).toMatch(/cleared presence rows left by a previous run/);
  });
});
