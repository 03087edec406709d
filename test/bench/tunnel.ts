// Tunnel benchmark (issue 3), one run on one PostgreSQL:
//   pgbench select-only (8 clients) and a COPY out of ~200 MB through
//     (a) direct TCP, (b) `g2c-relay forward` -> relay -> agent, (c) an OpenSSH reverse tunnel
//     (sshd on loopback with throwaway keys, `ssh -N -R`);
//   the relay-side path the engine uses (a pg Pool whose sockets are hub.openStream streams,
//   in this process) against a pg Pool direct and through ssh -R.
// Prints TPS, MB/s, p50/p99 latency, relay/agent RSS and ratios.
//
// G2C_BENCH_SECONDS (default 10) sets each pgbench/pool run; G2C_BENCH_PROFILE=DIR writes CPU
// profiles of the relay, agent and forward processes there. For before/after comparisons on a
// noisy machine: G2C_BENCH_BASELINE=DIR (another built checkout) adds row (b0), the forward path
// with that checkout's binaries, and G2C_BENCH_REPEAT=N measures rows b0, b and c N times in
// alternation and prints their medians.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '@g2c/relay';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { agentBin, relayBin, startProcess } from '../helpers/processes.js';
import { selfSignedCertificate } from '../helpers/tls.js';

const exec = promisify(execFile);
const SECONDS = Number(process.env.G2C_BENCH_SECONDS ?? 10);
const CLIENTS = 8;
const COPY_ROWS = 1_000_000; // ~201 bytes per COPY line -> ~200 MB
const PROFILE_DIR = process.env.G2C_BENCH_PROFILE;
/** G2C_BENCH_ROWS=a,b,b2,c,pool runs only those rows (for profiling one path). */
const ROWS = process.env.G2C_BENCH_ROWS?.split(',');
const want = (row: string) => !ROWS || ROWS.includes(row);
/** A built checkout whose binaries make row (b0), measured alternately with row (b). */
const BASELINE = process.env.G2C_BENCH_BASELINE;
const REPEAT = Math.max(1, Number(process.env.G2C_BENCH_REPEAT ?? 1));

interface Row {
  path: string;
  tps?: number;
  p50?: number;
  p99?: number;
  mbps?: number;
  relayRss?: number;
  agentRss?: number;
  /** Per pgbench transaction, by process: CPU µs and read/write syscalls. */
  costs?: { name: string; cpuUs: number; sysUs: number; syscalls: number }[];
  note?: string;
}

const cleanups: (() => Promise<unknown>)[] = [];

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function rssOf(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** CPU time (ms: user, system) and read/write syscalls of a process (or its tree) so far. */
async function usage(
  pid: number | undefined,
  tree = false,
): Promise<{ userMs: number; sysMs: number; syscalls: number } | undefined> {
  if (!pid) return undefined;
  if (tree) {
    const all = await Promise.all((await processTree(pid)).map((p) => usage(p)));
    return all.reduce<{ userMs: number; sysMs: number; syscalls: number }>(
      (sum, u) => ({
        userMs: sum.userMs + (u?.userMs ?? 0),
        sysMs: sum.sysMs + (u?.sysMs ?? 0),
        syscalls: sum.syscalls + (u?.syscalls ?? 0),
      }),
      { userMs: 0, sysMs: 0, syscalls: 0 },
    );
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime (fields 14 and 15), in clock ticks of 10 ms.
    const [userMs, sysMs] = [Number(fields[11]) * 10, Number(fields[12]) * 10];
    const io = await readFile(`/proc/${pid}/io`, 'utf8');
    const syscalls = Number(/syscr: (\d+)/.exec(io)?.[1]) + Number(/syscw: (\d+)/.exec(io)?.[1]);
    return { userMs, sysMs, syscalls };
  } catch {
    return undefined;
  }
}

/** The pid and all its descendants (sshd does its work in per-session children). */
async function processTree(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {}
  }
  const all = [pid];
  for (let i = 0; i < all.length; i++) all.push(...(children.get(all[i]!) ?? []));
  return all;
}

async function treeRss(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  let total = 0;
  for (const p of await processTree(pid)) total += (await rssOf(p)) ?? 0;
  return total || undefined;
}

/** Samples the peak RSS of some processes (with their children) while `work` runs. */
async function withPeakRss<T>(
  pids: (number | undefined)[],
  work: () => Promise<T>,
  tree = false,
): Promise<[T, (number | undefined)[]]> {
  const peaks: (number | undefined)[] = pids.map(() => undefined);
  let running = true;
  const sampler = (async () => {
    while (running) {
      for (const [i, pid] of pids.entries()) {
        const rss = tree ? await treeRss(pid) : await rssOf(pid);
        if (rss !== undefined) peaks[i] = Math.max(peaks[i] ?? 0, rss);
      }
      await sleep(200);
    }
  })();
  try {
    return [await work(), peaks];
  } finally {
    running = false;
    await sampler;
  }
}

async function waitPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

// --- client workloads -------------------------------------------------------------------------

async function pgbench(url: string, logDir: string): Promise<{ tps: number; p50: number; p99: number }> {
  await rm(logDir, { recursive: true, force: true });
  await mkdir(logDir, { recursive: true });
  const { stdout } = await exec(
    'pgbench',
    ['-n', '-S', '-c', String(CLIENTS), '-j', '2', '-T', String(SECONDS), '-l', `--log-prefix=${logDir}/tx`, url],
    { maxBuffer: 1 << 20 },
  );
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latencies: number[] = [];
  for (const file of await readdir(logDir)) {
    for (const line of (await readFile(join(logDir, file), 'utf8')).split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line) latencies.push(us / 1000);
    }
  }
  latencies.sort((a, b) => a - b);
  return { tps, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** `psql -c "copy ... to stdout"` into /dev/null; returns MB/s (10^6 bytes). */
async function copyOut(url: string, bytes: number): Promise<number> {
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('psql', [url, '-qc', 'copy bench_copy to stdout'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql copy exited ${code}: ${err}`))));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return bytes / 1e6 / seconds;
}

/** pg Pool, CLIENTS loops of a select-only query for SECONDS; then a 200 MiB read in 1 MiB rows. */
async function poolWorkload(config: pg.PoolConfig): Promise<{ tps: number; p50: number; p99: number; mbps: number }> {
  const pool = new pg.Pool({ ...config, max: CLIENTS });
  pool.on('error', () => {});
  try {
    const { rows } = await pool.query('select count(*)::int as n from pgbench_accounts');
    const accounts = rows[0].n as number;
    const latencies: number[] = [];
    const deadline = Date.now() + SECONDS * 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (Date.now() < deadline) {
          const started = process.hrtime.bigint();
          await pool.query('select abalance from pgbench_accounts where aid = $1', [
            1 + Math.floor(Math.random() * accounts),
          ]);
          latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
          done++;
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    const started = process.hrtime.bigint();
    const big = await pool.query(`select repeat('x', 1048576) as b from generate_series(1, 200)`);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const bytes = big.rows.reduce((n: number, r: { b: string }) => n + r.b.length, 0);
    return {
      tps: done / SECONDS,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      mbps: bytes / 1e6 / seconds,
    };
  } finally {
    await pool.end();
  }
}

// --- the paths --------------------------------------------------------------------------------

/** The command and leading arguments that start a bin, with a CPU profile when G2C_BENCH_PROFILE is set. */
function nodeBin(bin: string, name: string): [string, string[]] {
  // --cpu-prof is not accepted in NODE_OPTIONS on Node 20: pass it on the command line.
  // G2C_BENCH_NODE_FLAGS adds other flags (e.g. --perf-basic-prof for `perf record`).
  const flags = process.env.G2C_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  if (PROFILE_DIR) {
    flags.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}.cpuprofile`);
  }
  return flags.length ? [process.execPath, [...flags, bin]] : [bin, []];
}

/** JSON over http or https (the TLS row trusts its own throwaway CA). */
function requestJson(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer },
): Promise<Record<string, unknown>> {
  const send = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, { method: init.method ?? 'GET', headers: init.headers, ca: init.ca }, (res) => {
      let text = '';
      res.on('data', (c) => {
        text += c;
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** g2c-relay serve + g2c-agent + g2c-relay forward; with `tls`, HTTPS/WSS with a throwaway certificate. */
async function startRelayAndAgent(
  root: string,
  db: TestPostgres,
  tls = false,
  bins: { relay: string; agent: string; name?: string } = { relay: relayBin, agent: agentBin },
) {
  const name = bins.name ?? (tls ? 'tls' : 'plain');
  const dir = join(root, `relay-${name}`);
  const dataDir = join(dir, 'data');
  await mkdir(dir, { recursive: true });
  const tlsArgs: string[] = [];
  const caArgs: string[] = [];
  let ca: Buffer | undefined;
  if (tls) {
    await selfSignedCertificate({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
    ca = await readFile(join(dir, 'cert.pem'));
    tlsArgs.push('--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem'));
    caArgs.push('--ca', join(dir, 'cert.pem'));
  }
  const port = await freePort();
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const [relayCmd, relayArgs] = nodeBin(bins.relay, `relay-${name}`);
  const relay = await startProcess(
    'relay',
    relayCmd,
    [...relayArgs, '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...tlsArgs],
    { ready: /g2c-relay listening/, timeoutMs: 60_000 },
  );
  cleanups.push(() => relay.stop());
  const secrets = JSON.parse(await readFile(join(dataDir, 'credentials.json'), 'utf8'));
  const authorization = `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}`;
  const tunnel = (await requestJson(`${base}/elements/api-v2/tunnels`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench' }),
    ca,
  })) as { id: string; token: string };
  await writeFile(join(dir, 'token'), tunnel.token, { mode: 0o600 });
  const [agentCmd, agentArgs] = nodeBin(bins.agent, `agent-${name}`);
  const agent = await startProcess('agent', agentCmd, [
    ...agentArgs,
    '--relay',
    base,
    '--token-file',
    join(dir, 'token'),
    '--allow',
    `127.0.0.1:${db.port}`,
    '--log-level',
    'warn',
    ...caArgs,
  ]);
  cleanups.push(() => agent.stop());
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const status = await requestJson(`${base}/elements/api-v2/tunnels/${tunnel.id}`, {
      headers: { authorization },
      ca,
    });
    if (status.status === 'online') break;
    await sleep(100);
  }
  const forwardPort = await freePort();
  const [forwardCmd, forwardArgs] = nodeBin(bins.relay, `forward-${name}`);
  const forward = await startProcess(
    'forward',
    forwardCmd,
    [
      ...forwardArgs,
      'forward',
      '--relay',
      base,
      '--tunnel',
      tunnel.id,
      '--to',
      `127.0.0.1:${db.port}`,
      '--listen',
      `127.0.0.1:${forwardPort}`,
      '--log-level',
      'warn',
      ...caArgs,
    ],
    { env: { G2C_USER_SECRET: secrets.userSecret, G2C_ORG_SECRET: secrets.organizationSecret } },
  );
  cleanups.push(() => forward.stop());
  await waitPort(forwardPort);
  return { relay, agent, forward, forwardPort };
}

/** sshd on loopback with throwaway keys and `ssh -N -R rport:127.0.0.1:dbport`; undefined + why when impossible. */
async function startSshTunnel(
  root: string,
  dbPort: number,
): Promise<{ port: number; sshd: ChildProcess; ssh: ChildProcess } | string> {
  const sshd = '/usr/sbin/sshd';
  if (!existsSync(sshd)) {
    try {
      await exec('apt-get', ['install', '-y', '-q', 'openssh-server'], { timeout: 300_000 });
    } catch (err) {
      return `skipped: openssh-server is not installed and apt-get failed (${(err as Error).message.split('\n')[0]})`;
    }
    if (!existsSync(sshd)) return 'skipped: openssh-server could not be installed';
  }
  const dir = join(root, 'ssh');
  await mkdir(dir, { recursive: true });
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'client_key.pub')));
  await chmod(join(dir, 'authorized_keys'), 0o600);
  await mkdir('/run/sshd', { recursive: true }).catch(() => {});
  const sshPort = await freePort();
  await writeFile(
    join(dir, 'sshd_config'),
    [
      `Port ${sshPort}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      '',
    ].join('\n'),
  );
  const daemon = spawn(sshd, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let daemonLog = '';
  daemon.stderr!.on('data', (c) => {
    daemonLog += c;
  });
  cleanups.push(async () => {
    daemon.kill('SIGTERM');
  });
  try {
    await waitPort(sshPort, 10_000);
  } catch {
    return `skipped: sshd did not start: ${daemonLog.trim().split('\n').slice(-2).join(' ')}`;
  }
  const port = await freePort();
  const client = spawn(
    'ssh',
    [
      '-N',
      '-o',
      'StrictHostKeyChecking=no',
      '-o',
      'UserKnownHostsFile=/dev/null',
      '-o',
      'ExitOnForwardFailure=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      '-i',
      join(dir, 'client_key'),
      '-p',
      String(sshPort),
      '-R',
      `127.0.0.1:${port}:127.0.0.1:${dbPort}`,
      `${userInfo().username}@127.0.0.1`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let clientLog = '';
  client.stderr!.on('data', (c) => {
    clientLog += c;
  });
  cleanups.push(async () => {
    client.kill('SIGTERM');
  });
  try {
    await waitPort(port, 15_000);
  } catch {
    return `skipped: ssh -R did not come up: ${clientLog.trim()} ${daemonLog.trim().split('\n').slice(-2).join(' ')}`;
  }
  return { port, sshd: daemon, ssh: client };
}

/** The relay in this process (store on the bench database server), with one agent process. */
async function startInProcessRelay(root: string, db: TestPostgres) {
  // Imported from the built relay (this file runs from test/dist/bench/).
  const mod = (path: string) => import(new URL(`../../../relay/dist/${path}`, import.meta.url).href);
  const [
    { createStore },
    { migrate },
    { MasterKey },
    { TokenService },
    { Hub },
    { tunnelSocketFactory },
    { createLogger },
  ] = await Promise.all([
    mod('store/db.js'),
    mod('store/migrations.js'),
    mod('auth/crypto.js'),
    mod('auth/tokens.js'),
    mod('hub/hub.js'),
    mod('hub/pg-socket.js'),
    mod('logger.js'),
  ]);
  const { startServer } = await mod('server.js');
  const { serveConfig } = await mod('config.js');
  await db.createDatabase('relay_store');
  const store = createStore(new pg.Pool({ connectionString: db.url('relay_store'), max: 4 }));
  await migrate(store.pool);
  const masterKey = MasterKey.generate();
  const tokens = await TokenService.create(store, masterKey);
  const logger = createLogger('warn');
  const hub = new Hub({ tokens, presence: store.presence, logger, nodeId: 'bench' });
  const config = serveConfig({ listen: '127.0.0.1:0', 'data-dir': root, 'log-level': 'warn' }, {});
  const server = await startServer({ config, logger, store, tokens, hub, masterKey });
  cleanups.push(() => server.close());
  const org = await store.orgs.create('bench');
  const tunnel = await store.tunnels.create(org.organization.id, 'inproc', 'x');
  await writeFile(join(root, 'token-inproc'), await tokens.issue(tunnel), { mode: 0o600 });
  const agent = await startProcess('agent-inproc', agentBin, [
    '--relay',
    server.url,
    '--token-file',
    join(root, 'token-inproc'),
    '--allow',
    `127.0.0.1:${db.port}`,
    '--log-level',
    'warn',
  ]);
  cleanups.push(() => agent.stop());
  const deadline = Date.now() + 20_000;
  while (hub.status(tunnel.id).status !== 'online' && Date.now() < deadline) await sleep(50);
  return { stream: tunnelSocketFactory(hub, tunnel.id) as () => import('node:stream').Duplex, agent };
}

function median(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined && !Number.isNaN(v)).sort((a, b) => a - b);
  return known.length ? known[Math.floor((known.length - 1) / 2)] : undefined;
}

/** Per-column medians of several rounds of one path (the RSS columns keep their maximum). */
function medianRow(path: string, rows: Row[]): Row {
  const max = (values: (number | undefined)[]) => Math.max(...values.map((v) => v ?? 0)) || undefined;
  return {
    path: `${path} (median)`,
    tps: median(rows.map((r) => r.tps)),
    p50: median(rows.map((r) => r.p50)),
    p99: median(rows.map((r) => r.p99)),
    mbps: median(rows.map((r) => r.mbps)),
    relayRss: max(rows.map((r) => r.relayRss)),
    agentRss: max(rows.map((r) => r.agentRss)),
    costs: (rows[0]?.costs ?? []).map(({ name }) => {
      const of = (r: Row) => r.costs?.find((c) => c.name === name);
      return {
        name,
        cpuUs: median(rows.map((r) => of(r)?.cpuUs)) ?? Number.NaN,
        sysUs: median(rows.map((r) => of(r)?.sysUs)) ?? Number.NaN,
        syscalls: median(rows.map((r) => of(r)?.syscalls)) ?? Number.NaN,
      };
    }),
    note: rows[0]?.note?.startsWith('relay = sshd')
      ? 'relay = sshd with its per-session children, agent = the ssh -R client'
      : undefined,
  };
}

// --- report -----------------------------------------------------------------------------------

const fmt = (n: number | undefined, digits = 0) => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const mb = (n: number | undefined) => (n === undefined ? '-' : `${(n / 1048576).toFixed(0)} MiB`);
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}x` : '-');

function printTable(title: string, rows: Row[], baseline: Row, ssh: Row | undefined, throughputLabel: string): void {
  console.log(`\n${title}`);
  const header = [
    'path',
    'TPS',
    'p50 ms',
    'p99 ms',
    throughputLabel,
    'relay RSS',
    'agent RSS',
    'TPS/direct',
    'TPS/ssh',
    'MB/s/direct',
    'MB/s/ssh',
  ];
  const lines = rows.map((r) => [
    r.path,
    fmt(r.tps),
    fmt(r.p50, 3),
    fmt(r.p99, 3),
    fmt(r.mbps),
    mb(r.relayRss),
    mb(r.agentRss),
    ratio(r.tps, baseline.tps),
    ratio(r.tps, ssh?.tps),
    ratio(r.mbps, baseline.mbps),
    ratio(r.mbps, ssh?.mbps),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const show = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(show(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(show(l));
  for (const r of rows) {
    const costs = (r.costs ?? []).map(
      (c) =>
        `${c.name} ${c.cpuUs.toFixed(1)} µs CPU (${c.sysUs.toFixed(1)} in the kernel) and ${c.syscalls.toFixed(1)} read/write syscalls per transaction`,
    );
    const notes = [...(r.note ? [r.note] : []), ...costs];
    if (notes.length) console.log(`note: ${r.path}: ${notes.join('; ')}`);
  }
}

export async function run(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'g2c-bench-tunnel-'));
  await chmod(root, 0o711);
  if (PROFILE_DIR) await mkdir(PROFILE_DIR, { recursive: true });
  const db = await startTestPostgres({ settings: { shared_buffers: '256MB' } });
  cleanups.push(() => db.stop());
  try {
    await db.createDatabase('bench');
    await exec('pgbench', ['-i', '-q', '-s', '10', db.url('bench')]);
    await db.query(
      `create table bench_copy as select g as id, repeat(md5(g::text), 6) as payload from generate_series(1, ${COPY_ROWS}) g`,
      'bench',
    );
    await db.query('vacuum analyze bench_copy', 'bench');
    const { rows } = await db.query(
      `select sum(length(id::text) + length(payload) + 2)::bigint as bytes from bench_copy`,
      'bench',
    );
    const copyBytes = Number(rows[0].bytes);
    const url = (port: number) => `postgres://${db.user}:${encodeURIComponent(db.password)}@127.0.0.1:${port}/bench`;
    const logDir = join(root, 'pgbench-log');

    const measure = async (
      path: string,
      port: number,
      pids: { relay?: number; agent?: number; forward?: number } = {},
      tree = false,
    ): Promise<Row> => {
      const watched = { relay: pids.relay, agent: pids.agent, forward: pids.forward };
      const costs: NonNullable<Row['costs']> = [];
      const [result, peaks] = await withPeakRss(
        [pids.relay, pids.agent, pids.forward],
        async () => {
          const before = await Promise.all(Object.values(watched).map((p) => usage(p, tree)));
          const bench = await pgbench(url(port), logDir);
          const after = await Promise.all(Object.values(watched).map((p) => usage(p, tree)));
          const transactions = bench.tps * SECONDS;
          Object.keys(watched).forEach((name, i) => {
            const [b, a] = [before[i], after[i]];
            if (!a || !b) return;
            costs.push({
              name,
              cpuUs: ((a.userMs + a.sysMs - b.userMs - b.sysMs) * 1000) / transactions,
              sysUs: ((a.sysMs - b.sysMs) * 1000) / transactions,
              syscalls: (a.syscalls - b.syscalls) / transactions,
            });
          });
          const mbps = await copyOut(url(port), copyBytes);
          return { ...bench, mbps };
        },
        tree,
      );
      const note = peaks[2] ? `g2c-relay forward process peak RSS ${mb(peaks[2])}` : undefined;
      return { path, ...result, relayRss: peaks[0], agentRss: peaks[1], costs, note };
    };

    // Warm the cache once so that the first row is not penalised.
    await copyOut(url(db.port), copyBytes);

    const rowsOut: Row[] = [];
    const direct = want('a') ? await measure('(a) direct', db.port) : { path: '(a) direct' };
    rowsOut.push(direct);

    const ssh = want('c') || want('pool') ? await startSshTunnel(root, db.port) : 'not run';
    if (typeof ssh === 'string' && want('c')) rowsOut.push({ path: '(c) ssh -R', note: ssh });

    // The tunnel paths are measured in alternation, REPEAT rounds, so that load from elsewhere
    // on the machine hits them alike; with REPEAT > 1 their medians are printed too.
    const firstForwardCleanup = cleanups.length;
    const paths: { path: string; port: number; pids: Parameters<typeof measure>[2]; tree?: boolean }[] = [];
    const forwardPath = async (path: string, tls: boolean, bins?: Parameters<typeof startRelayAndAgent>[3]) => {
      const g2c = await startRelayAndAgent(root, db, tls, bins);
      const pids = { relay: g2c.relay.pid, agent: g2c.agent.pid, forward: g2c.forward.pid };
      paths.push({ path, port: g2c.forwardPort, pids });
    };
    if (BASELINE && want('b0')) {
      await forwardPath(`(b0) forward, baseline ${BASELINE}`, false, {
        relay: join(BASELINE, 'relay/bin/g2c-relay.js'),
        agent: join(BASELINE, 'agent/bin/g2c-agent.js'),
        name: 'baseline',
      });
    }
    if (want('b')) await forwardPath('(b) g2c-relay forward', false);
    if (want('b2')) await forwardPath('(b2) forward, TLS (https + wss)', true);
    if (typeof ssh !== 'string' && want('c')) {
      paths.push({ path: '(c) ssh -R', port: ssh.port, pids: { relay: ssh.sshd.pid, agent: ssh.ssh.pid }, tree: true });
    }
    const measured = new Map<string, Row[]>(paths.map((p) => [p.path, []]));
    for (let round = 0; round < REPEAT; round++) {
      for (let i = 0; i < paths.length; i++) {
        const p = paths[(i + round) % paths.length]!;
        const row = await measure(REPEAT > 1 ? `${p.path} #${round + 1}` : p.path, p.port, p.pids, p.tree);
        if (p.tree) row.note = 'relay = sshd with its per-session children, agent = the ssh -R client';
        measured.get(p.path)!.push(row);
      }
    }
    // The relays of the forward rows stop here, so that they do not load the machine during the next rows.
    for (const cleanup of cleanups.splice(firstForwardCleanup).reverse()) await cleanup().catch(() => {});
    const summary = [...measured.entries()].map(([path, rows]) => (REPEAT > 1 ? medianRow(path, rows) : rows[0]!));
    const sshRow = summary.find((r) => r.path.startsWith('(c)'));
    if (REPEAT > 1) {
      printTable(
        '### every round',
        [...measured.values()].flat().sort((x, y) => x.path.localeCompare(y.path)),
        direct,
        sshRow,
        'COPY MB/s',
      );
    }
    rowsOut.push(...summary);
    console.log(
      `pgbench -S: ${CLIENTS} clients, 2 threads, ${SECONDS} s; COPY out: ${(copyBytes / 1e6).toFixed(0)} MB via psql`,
    );
    printTable(
      `### pgbench select-only + COPY out${REPEAT > 1 ? ` (medians of ${REPEAT} rounds)` : ''}`,
      rowsOut,
      direct,
      sshRow,
      'COPY MB/s',
    );

    // Relay-side path: pg Pool in this process.
    if (!want('pool')) return;
    const inproc = await startInProcessRelay(root, db);
    const poolConfig = { host: '127.0.0.1', user: db.user, password: db.password, database: 'bench' };
    const poolRows: Row[] = [];
    const poolDirect = { path: 'pg Pool direct', ...(await poolWorkload({ ...poolConfig, port: db.port })) };
    poolRows.push(poolDirect);
    const [hubResult, hubPeaks] = await withPeakRss([process.pid, inproc.agent.pid], () =>
      poolWorkload({ ...poolConfig, port: db.port, stream: inproc.stream } as pg.PoolConfig),
    );
    poolRows.push({ path: 'pg Pool on hub.openStream', ...hubResult, relayRss: hubPeaks[0], agentRss: hubPeaks[1] });
    let poolSsh: Row | undefined;
    if (typeof ssh !== 'string') {
      poolSsh = { path: 'pg Pool via ssh -R', ...(await poolWorkload({ ...poolConfig, port: ssh.port })) };
      poolRows.push(poolSsh);
    }
    printTable(
      `### relay-side path (pg Pool, ${CLIENTS} connections, 'select ... where aid = $1' for ${SECONDS} s; then 200 rows x 1 MiB)`,
      poolRows,
      poolDirect,
      poolSsh,
      'read MB/s',
    );
    console.log(
      'relay RSS of the hub row = this benchmark process (relay in-process), including the 200 MiB read it holds',
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    cleanups.length = 0;
    await rm(root, { recursive: true, force: true });
  }
}
