// pg through the tunnel exactly as the engine uses it (pg's `stream` = the hub's pg socket),
// with the real g2c-agent binary and a real PostgreSQL: Client and Pool, transactions,
// COPY of 50 MB each way with checksums, TLS to the database through the tunnel, 200
// concurrent connections over one agent, and the agent's refusals reaching the pg caller.
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import type { RunningProcess } from '../helpers/processes.js';
import { selfSignedCertificate } from '../helpers/tls.js';
import { copyIn, copyOut, copyRows } from './tunnel-copy.js';
import { startAgent, startTestRelay, type TestRelay, until } from './tunnel-setup.js';

const run = promisify(execFile);
let dir: string;
let target: TestPostgres;
let relay: TestRelay;
let agent: RunningProcess;
let tunnelId: string;
let token: string;
let deadPort: number;
let caPem: string;
let blaster: Server;
let blasterPort: number;
/** Bytes the blaster's socket.write accepted so far (the kernel and every buffer after it). */
let blasted = 0;
const BLAST_BYTES = 96 * 1024 * 1024;
const blastChunk = Buffer.alloc(64 * 1024, 7);

/** A self-signed certificate for 127.0.0.1/localhost that PostgreSQL can read. */
async function makeCertificate(where: string): Promise<{ cert: string; key: string }> {
  const cert = join(where, 'server.crt');
  const key = join(where, 'server.key');
  await selfSignedCertificate({ certFile: cert, keyFile: key });
  if (process.getuid?.() === 0) {
    // As root the server runs as `postgres`, which must own its key.
    const { stdout } = await run('id', ['-u', 'postgres']).catch(() => ({ stdout: '' }));
    const { stdout: gid } = await run('id', ['-g', 'postgres']).catch(() => ({ stdout: '' }));
    if (stdout.trim()) await chown(key, Number(stdout), Number(gid));
  }
  return { cert, key };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'g2c-tunnel-pg-'));
  await chmod(dir, 0o711);
  let tls: { cert: string; key: string } | undefined;
  try {
    tls = await makeCertificate(dir);
  } catch {
    // The postgres user may not exist yet on a fresh machine; the TLS test then says so.
  }
  target = await startTestPostgres({
    settings: tls ? { ssl: 'on', ssl_cert_file: tls.cert, ssl_key_file: tls.key } : {},
  });
  if (tls) caPem = await readFile(tls.cert, 'utf8');
  relay = await startTestRelay(target, dir);
  const tunnel = await relay.createTunnel('pg');
  tunnelId = tunnel.id;
  token = tunnel.token;
  const probe = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  deadPort = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  // A target that sends 96 MB as fast as its socket accepts them.
  blaster = createServer((socket) => {
    socket.on('error', () => {});
    const pump = () => {
      while (blasted < BLAST_BYTES) {
        blasted += blastChunk.length;
        if (!socket.write(blastChunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  }).listen(0, '127.0.0.1');
  await new Promise((r) => blaster.once('listening', r));
  blasterPort = (blaster.address() as { port: number }).port;
  agent = await startAgent('agent', relay.url, tunnel.tokenFile, {
    allow: [`127.0.0.1:${target.port}`, `127.0.0.1:${deadPort}`, `127.0.0.1:${blasterPort}`],
  });
  await target.query('create table copy_target (id int8 primary key, payload text not null)');
}, 90_000);

afterAll(async () => {
  await agent?.stop();
  await relay?.close();
  blaster?.close();
  await target?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pg through the tunnel', () => {
  it('Client: queries with parameters and transactions', async () => {
    const client = new pg.Client(relay.pgConfig(tunnelId));
    await client.connect();
    try {
      const { rows } = await client.query('select $1::int + 1 as n, current_database() as db', [41]);
      expect(rows[0]).toEqual({ n: 42, db: 'postgres' });
      await client.query('create temp table t (v text)');
      await client.query('begin');
      await client.query("insert into t values ('kept')");
      await client.query('commit');
      await client.query('begin');
      await client.query("insert into t values ('dropped')");
      await client.query('rollback');
      expect((await client.query('select v from t')).rows).toEqual([{ v: 'kept' }]);
      // A server error is an ordinary pg error and the connection stays usable.
      await expect(client.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
      expect((await client.query('select 1 as one')).rows[0].one).toBe(1);
    } finally {
      await client.end();
    }
    // end() resolved: pg saw the socket close, so the stream was closed both ways.
    await until('stream closed', () => relay.hub.status(tunnelId).agents[0]?.activeStreams === 0, 5000);
  });

  it('Pool: reuses connections (ref/unref) and runs concurrent queries', async () => {
    const pool = new pg.Pool({ ...relay.pgConfig(tunnelId), max: 5 });
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => pool.query('select $1::int * 2 as v', [i])),
      );
      expect(results.map((r) => r.rows[0].v)).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
      expect(pool.totalCount).toBeLessThanOrEqual(5);
      const pids = new Set<number>();
      for (let i = 0; i < 20; i++) pids.add((await pool.query('select pg_backend_pid() as p')).rows[0].p);
      expect(pids.size).toBeLessThanOrEqual(5);
    } finally {
      await pool.end();
    }
  });

  it('COPY FROM STDIN and TO STDOUT of 50 MB keep every byte', async () => {
    const client = new pg.Client(relay.pgConfig(tunnelId));
    await client.connect();
    try {
      const sent = await copyIn(client, 'copy copy_target (id, payload) from stdin', () => copyRows(50 * 1024 * 1024));
      expect(sent.bytes).toBeGreaterThanOrEqual(50 * 1024 * 1024);
      const rows = Number((await client.query('select count(*) as n from copy_target')).rows[0].n);
      expect(rows).toBe(sent.rowCount);
      const received = await copyOut(client, 'copy (select id, payload from copy_target order by id) to stdout');
      expect(received.bytes).toBe(sent.bytes);
      expect(received.sha256).toBe(sent.sha256);
    } finally {
      await client.end();
    }
  });

  it('TLS to the database works through the tunnel (the agent carries ciphertext)', async () => {
    expect(caPem, 'openssl and a postgres user are needed to make the server certificate').toBeTruthy();
    const client = new pg.Client(
      relay.pgConfig(tunnelId, 'postgres', { ssl: { ca: caPem, rejectUnauthorized: true } }),
    );
    await client.connect();
    try {
      const { rows } = await client.query('select ssl, version from pg_stat_ssl where pid = pg_backend_pid()');
      expect(rows[0].ssl).toBe(true);
      expect(rows[0].version).toMatch(/^TLSv1\.[23]$/);
      const big = await client.query("select repeat('x', 1000000) as s");
      expect(big.rows[0].s.length).toBe(1_000_000);
    } finally {
      await client.end();
    }
    // A certificate the client does not trust fails the handshake: verification is real.
    const untrusted = new pg.Client(relay.pgConfig(tunnelId, 'postgres', { ssl: { rejectUnauthorized: true } }));
    untrusted.on('error', () => {});
    await expect(untrusted.connect()).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('200 concurrent connections over one agent', async () => {
    const clients = Array.from({ length: 200 }, () => new pg.Client(relay.pgConfig(tunnelId)));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      expect(relay.hub.status(tunnelId).agents[0]!.activeStreams).toBeGreaterThanOrEqual(200);
      const pids = await Promise.all(
        clients.map(async (c, i) => {
          const { rows } = await c.query('select pg_backend_pid() as pid, $1::int as i, pg_sleep(0.05)', [i]);
          expect(rows[0].i).toBe(i);
          return rows[0].pid as number;
        }),
      );
      expect(new Set(pids).size).toBe(200);
    } finally {
      await Promise.allSettled(clients.map((c) => c.end()));
    }
    await until('streams closed', () => relay.hub.status(tunnelId).agents[0]?.activeStreams === 0, 10_000);
  });
});

describe('back-pressure', () => {
  it('a reader that stops reading holds the target to the window plus socket buffers, then gets every byte', async () => {
    const rss = async () => {
      const status = await readFile(`/proc/${agent.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
    };
    const rssBefore = await rss();
    const stream = await relay.hub.openStream(tunnelId, '127.0.0.1', blasterPort);
    // Nobody reads: let every buffer on the way fill up.
    await new Promise((r) => setTimeout(r, 1500));
    const stalledAt = blasted;
    await new Promise((r) => setTimeout(r, 500));
    expect(blasted).toBe(stalledAt); // the target is blocked, not trickling into memory
    // Mux window (256 KiB, not grown: nothing was consumed) + stream and socket high-water
    // marks + loopback kernel buffers (a few MB): far below what the target wanted to send.
    expect(stalledAt).toBeLessThan(32 * 1024 * 1024);
    if (process.env.G2C_TEST_VERBOSE) console.log(`target blocked after ${stalledAt} bytes`);
    expect((await rss()) - rssBefore).toBeLessThan(32 * 1024 * 1024);
    let received = 0;
    let intact = true;
    const sevens = Buffer.alloc(16 * 1024 * 1024, 7);
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (intact && !chunk.equals(sevens.subarray(0, chunk.length))) intact = false;
      });
      stream.once('end', () => resolve());
      stream.once('error', reject);
    });
    expect(received).toBe(BLAST_BYTES);
    expect(intact).toBe(true);
    stream.destroy();
  });
});

describe("the agent's refusals reach the pg caller", () => {
  it('a target outside the allowlist: not_allowed', async () => {
    const client = new pg.Client(relay.pgConfig(tunnelId, 'postgres', { port: target.port + 1 }));
    client.on('error', () => {});
    const err = (await client.connect().catch((e) => e)) as Error & { code?: string };
    expect(err.code).toBe('not_allowed');
    expect(err.message).toContain(`127.0.0.1:${target.port + 1}`);
    const other = new pg.Client(relay.pgConfig(tunnelId, 'postgres', { host: 'db.elsewhere' }));
    other.on('error', () => {});
    expect(((await other.connect().catch((e) => e)) as { code?: string }).code).toBe('not_allowed');
  });

  it('an allowed port where nothing listens: connect_refused', async () => {
    const client = new pg.Client(relay.pgConfig(tunnelId, 'postgres', { port: deadPort }));
    client.on('error', () => {});
    const err = (await client.connect().catch((e) => e)) as Error & { code?: string };
    expect(err.code).toBe('connect_refused');
  });

  it('the agent stays up and keeps serving', async () => {
    expect(agent.child.exitCode).toBeNull();
    expect(relay.hub.status(tunnelId).agents).toHaveLength(1);
    // Its presence row is in the store, under the session id the API shows.
    const rows = await relay.store.presence.listTunnel(tunnelId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      sessionId: relay.hub.status(tunnelId).agents[0]!.id,
      nodeId: 'e2e',
      version: '0.1.0',
      remoteAddress: '127.0.0.1',
    });
    const client = new pg.Client(relay.pgConfig(tunnelId));
    await client.connect();
    expect((await client.query('select 7 as n')).rows[0].n).toBe(7);
    await client.end();
    // The agent logs what it refused, never its token.
    expect(agent.lines.join('\n')).toContain('not in the allowlist');
    expect(agent.lines.join('\n')).not.toContain(token);
  });

  it('an offline tunnel: tunnel_offline', async () => {
    const other = await relay.createTunnel('nobody-home');
    const client = new pg.Client(relay.pgConfig(other.id));
    client.on('error', () => {});
    expect(((await client.connect().catch((e) => e)) as { code?: string }).code).toBe('tunnel_offline');
  });
});
