// Agents coming and going, with the real g2c-agent binary and a real PostgreSQL: two agents
// on one tunnel and one SIGKILLed under load; kill and restart; a frozen agent (SIGSTOP: the
// link says nothing); SIGTERM drain; and 200 reconnects that must leave nothing behind.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import type { RunningProcess } from '../helpers/processes.js';
import { connectMiniAgent, startAgent, startTestRelay, type TestRelay, until } from './tunnel-setup.js';

// Short liveness settings on both ends: a dead peer is detected within 300 ms + 1 s.
const KEEPALIVE_INTERVAL_MS = 300;
const KEEPALIVE_TIMEOUT_MS = 1000;
const AGENT_FLAGS = ['--keepalive-interval', '300ms', '--keepalive-timeout', '1s'];

let dir: string;
let target: TestPostgres;
let relay: TestRelay;
const agents: RunningProcess[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'g2c-tunnel-agents-'));
  target = await startTestPostgres();
  relay = await startTestRelay(target, dir, {
    keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
    keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
  });
}, 60_000);

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.end()));
  await Promise.allSettled(agents.splice(0).map((a) => a.stop()));
});

afterAll(async () => {
  await relay?.close();
  await target?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function agent(name: string, tokenFile: string, extra: string[] = []): Promise<RunningProcess> {
  const p = await startAgent(name, relay.url, tokenFile, {
    allow: [`127.0.0.1:${target.port}`],
    args: [...AGENT_FLAGS, ...extra],
  });
  agents.push(p);
  return p;
}

function client(tunnelId: string): pg.Client {
  const c = new pg.Client(relay.pgConfig(tunnelId));
  c.on('error', () => {}); // failures are asserted on the queries
  clients.push(c);
  return c;
}

const agentCount = (tunnelId: string) => relay.hub.status(tunnelId).agents.length;

describe('several agents on one tunnel', () => {
  it('SIGKILL of one agent under load: its queries fail fast and clearly, new connections use the survivor', async () => {
    const tunnel = await relay.createTunnel('ha');
    const a = await agent('agent-a', tunnel.tokenFile);
    await until('one agent', () => agentCount(tunnel.id) === 1);
    const aSession = relay.hub.status(tunnel.id).agents[0]!.id;
    await agent('agent-b', tunnel.tokenFile);
    await until('two agents', () => agentCount(tunnel.id) === 2);

    const load = Array.from({ length: 20 }, () => client(tunnel.id));
    for (const c of load) await c.connect();
    // Fewest active streams first: the connections are spread evenly.
    const spread = relay.hub.status(tunnel.id).agents.map((x) => x.activeStreams);
    expect(spread).toEqual([10, 10]);
    const onA = relay.hub.status(tunnel.id).agents.find((x) => x.id === aSession)!.activeStreams;

    let killedAt = 0;
    const outcomes = load.map((c) =>
      c.query('select pg_sleep(3), 1 as done').then(
        () => ({ ok: true as const, at: Date.now() }),
        (err: Error & { code?: string }) => ({ ok: false as const, at: Date.now(), err }),
      ),
    );
    await sleep(300);
    killedAt = Date.now();
    a.signal('SIGKILL');
    const results = await Promise.all(outcomes);
    const failed = results.filter((r) => !r.ok);
    expect(failed).toHaveLength(onA);
    for (const f of failed) {
      // Fast: long before the 3 s query would have ended, and well inside the keepalive bound.
      expect(f.at - killedAt).toBeLessThan(1000);
      expect(f.err.code).toBe('tunnel_offline');
      expect(f.err.message).toMatch(/agent connection was lost/);
    }
    expect(results.filter((r) => r.ok)).toHaveLength(20 - onA);
    await until('agent a removed', () => agentCount(tunnel.id) === 1, 3000);

    const fresh = Array.from({ length: 30 }, () => client(tunnel.id));
    const answers = await Promise.all(
      fresh.map(async (c, i) => {
        await c.connect();
        return (await c.query('select $1::int as i', [i])).rows[0].i;
      }),
    );
    expect(answers).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });
});

describe('one agent going away and coming back', () => {
  it('SIGKILL then restart: offline, then online, and queries resume without touching the relay', async () => {
    const tunnel = await relay.createTunnel('restart');
    const first = await agent('agent-1', tunnel.tokenFile);
    const pool = new pg.Pool({ ...relay.pgConfig(tunnel.id), max: 2 });
    pool.on('error', () => {});
    try {
      expect((await pool.query('select 1 as n')).rows[0].n).toBe(1);
      first.signal('SIGKILL');
      await until('offline', () => relay.hub.status(tunnel.id).status === 'offline', 3000);
      await expect(pool.query('select 1')).rejects.toMatchObject({ code: 'tunnel_offline' });
      await agent('agent-2', tunnel.tokenFile);
      await until('online', () => relay.hub.status(tunnel.id).status === 'online');
      expect((await pool.query('select 2 as n')).rows[0].n).toBe(2);
    } finally {
      await pool.end();
    }
  });

  it('a frozen agent (SIGSTOP): its streams fail and the tunnel goes offline within the keepalive bound', async () => {
    const tunnel = await relay.createTunnel('frozen');
    const frozen = await agent('agent-frozen', tunnel.tokenFile, ['--health-listen', '127.0.0.1:0']);
    const c = client(tunnel.id);
    await c.connect();
    const query = c.query('select pg_sleep(20)').then(
      () => undefined,
      (err: Error & { code?: string }) => err,
    );
    await sleep(100);
    frozen.signal('SIGSTOP');
    const stoppedAt = Date.now();
    const err = await query;
    const failedAfter = Date.now() - stoppedAt;
    await until('offline', () => relay.hub.status(tunnel.id).status === 'offline', 5000);
    const offlineAfter = Date.now() - stoppedAt;
    expect(err?.code).toBe('tunnel_offline');
    // Bound: one interval + the timeout (1.3 s), plus scheduling margin on a busy machine.
    expect(failedAfter).toBeLessThan(KEEPALIVE_INTERVAL_MS + KEEPALIVE_TIMEOUT_MS + 1500);
    expect(offlineAfter).toBeLessThan(KEEPALIVE_INTERVAL_MS + KEEPALIVE_TIMEOUT_MS + 1500);
    // Thawed, the agent finds its session dead and reconnects by itself.
    frozen.signal('SIGCONT');
    await until('online again', () => relay.hub.status(tunnel.id).status === 'online', 10_000);
    const again = client(tunnel.id);
    await again.connect();
    expect((await again.query('select 3 as n')).rows[0].n).toBe(3);
  });
});

describe('SIGTERM drain', () => {
  it('a running query completes, then the agent exits 0', async () => {
    const tunnel = await relay.createTunnel('drain');
    const draining = await agent('agent-drain', tunnel.tokenFile, ['--drain-timeout', '20s']);
    const c = client(tunnel.id);
    await c.connect();
    const query = c.query('select pg_sleep(1.5), 42 as answer');
    await sleep(200);
    draining.signal('SIGTERM');
    await draining.waitForLine(/draining/, 3000);
    // No new streams on a draining agent (the relay saw GoAway, or the agent refuses the
    // stream itself): with no other agent the tunnel refuses them.
    const late = client(tunnel.id);
    await expect(late.connect()).rejects.toMatchObject({ code: 'tunnel_offline' });
    expect((await query).rows[0].answer).toBe(42);
    expect(draining.child.exitCode).toBeNull(); // still waiting for the stream to close
    await c.end();
    const code = await Promise.race([draining.exited, sleep(5000).then(() => 'still running')]);
    expect(code).toBe(0);
  });

  it('an idle agent exits 0 right after its drain: no timer keeps the process alive', async () => {
    const tunnel = await relay.createTunnel('drain-idle');
    const idle = await agent('agent-drain-idle', tunnel.tokenFile);
    idle.signal('SIGTERM');
    await idle.waitForLine(/drained; stopping/, 5000);
    // The close of the session used to leave a 2 s timer running after the drain.
    const code = await Promise.race([idle.exited, sleep(1500).then(() => 'still running')]);
    expect(code).toBe(0);
  });

  it('streams still open after --drain-timeout are cut, and the agent exits 0', async () => {
    const tunnel = await relay.createTunnel('drain-timeout');
    const draining = await agent('agent-drain-2', tunnel.tokenFile, ['--drain-timeout', '1s']);
    const c = client(tunnel.id);
    await c.connect();
    const query = c.query('select pg_sleep(10)').then(
      () => undefined,
      (err: Error) => err,
    );
    const termAt = Date.now();
    draining.signal('SIGTERM');
    const code = await Promise.race([draining.exited, sleep(6000).then(() => 'still running')]);
    expect(code).toBe(0);
    expect(Date.now() - termAt).toBeGreaterThanOrEqual(900);
    expect(await query).toBeInstanceOf(Error);
    expect(draining.lines.join('\n')).toMatch(/drain timeout: cutting/);
  });
});

describe('reconnect churn', () => {
  it('200 agent connections in a row leave sessions, presence rows and memory where they were', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const tunnel = await relay.createTunnel('churn');
    const presenceRows = () => relay.store.presence.count();
    const sessions0 = relay.hub.sessionCount;
    const presence0 = await presenceRows();

    const cycle = async (i: number) => {
      const mini = await connectMiniAgent(relay.url, tunnel.token);
      await until('registered', () => relay.hub.status(tunnel.id).status === 'online', 5000);
      if (i % 2 === 0) {
        // Carry one real query through it before it goes.
        const c = new pg.Client(relay.pgConfig(tunnel.id));
        await c.connect();
        await c.query('select 1');
        await c.end();
      }
      // Half leave abruptly (TCP gone), half close properly.
      if (i % 4 < 2) mini.ws.terminate();
      else await mini.session.close();
      mini.ws.terminate();
      await until('removed', () => relay.hub.status(tunnel.id).status === 'offline', 5000);
    };

    for (let i = 0; i < 20; i++) await cycle(i); // warm-up: JIT, pools, caches
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 20; i < 200; i++) await cycle(i);
    await until('presence rows back', async () => (await presenceRows()) === presence0, 5000);
    expect(relay.hub.sessionCount).toBe(sessions0);
    await sleep(200);
    gc();
    const growth = process.memoryUsage().heapUsed - heap0;
    if (process.env.G2C_TEST_VERBOSE) console.log(`heap ${heap0} -> +${growth} bytes over 180 sessions`);
    // 180 sessions that each held a mux session, a WebSocket and buffers: nothing of them may stay.
    expect(growth).toBeLessThan(4 * 1024 * 1024);
  });
});
