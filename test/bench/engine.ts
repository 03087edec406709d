// Element engine benchmark (issue 4), one run on one PostgreSQL:
//   GET /{table}/{id} (random id) and a 50-row list (GET /{table}?pageSize=50), with autocannon
//   at 50 connections, against
//     (a) the real g2c-relay binary, direct instance,
//     (b) the same relay, ground2cloud instance (real g2c-agent on loopback),
//     (c) a hand-written fastify route in its own process running the same SQL through pg
//         (the stack's ceiling: no auth, no schema cache, no planning).
// Prints req/s, p50/p99 latency and the ratios engine/hand-written and ground2cloud/direct.
// The relay runs with --log-level warn (no per-request log line), like the hand-written route.
//
// G2C_BENCH_SECONDS (default 8) sets each autocannon run (after a 2 s warm-up);
// G2C_BENCH_PROFILE=DIR writes CPU profiles of the relay and the hand-written route there;
// G2C_BENCH_ONLY=get|list runs one call; G2C_BENCH_TARGETS="hand-written,engine direct" some targets.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@g2c/relay';
import pg from 'pg';
import { startTestPostgres } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';

// autocannon ships no types; the little used here is typed by hand (no @types dependency).
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  headers: Record<string, string>;
  requests: { method: string; setupRequest: (req: Record<string, unknown>) => Record<string, unknown> }[];
}) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const SECONDS = Number(process.env.G2C_BENCH_SECONDS ?? 8);
const CONNECTIONS = 50;
const PROFILE_DIR = process.env.G2C_BENCH_PROFILE;
const ROWS = 10_000;
const POOL_MAX = 10;

const FIXTURE = `
create table items (
  id bigint primary key,
  name text not null,
  price numeric(10, 2) not null,
  created timestamptz not null,
  tags text[] not null
);
insert into items
select g, 'item ' || g, (g % 1000) / 10.0, timestamptz '2024-01-01' + g * interval '1 minute', array['a', 'b' || g % 7]
from generate_series(1, ${ROWS}) g;
analyze items;`;

// The SQL the engine issues for these two calls (engine/sql.ts), written out by hand.
const GET_SQL =
  'SELECT row_to_json(p.*)::text AS "row" FROM "public"."items" AS t CROSS JOIN LATERAL (SELECT t."id" AS "id", t."name" AS "name", t."price" AS "price", t."created" AS "created", t."tags" AS "tags") AS p WHERE t."id" = $1';
const LIST_SQL =
  'SELECT row_to_json(p.*)::text AS "row", ARRAY[t."id"::text] AS "cursor" FROM "public"."items" AS t CROSS JOIN LATERAL (SELECT t."id" AS "id", t."name" AS "name", t."price" AS "price", t."created" AS "created", t."tags" AS "tags") AS p ORDER BY t."id" LIMIT $1';

/** The hand-written route, run as `G2C_ENGINE_BASELINE=<url>,<port> node engine.js`. */
async function baselineServer(url: string, port: number): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const pool = new pg.Pool({ connectionString: url, max: POOL_MAX });
  const app = Fastify();
  app.get<{ Params: { id: string } }>('/items/:id', async (request, reply) => {
    const { rows } = await pool.query(GET_SQL, [request.params.id]);
    if (!rows[0]) return reply.status(404).send({ message: 'not found' });
    reply.type('application/json').send(rows[0].row);
  });
  app.get('/items', async (_request, reply) => {
    const { rows } = await pool.query(LIST_SQL, [51]);
    const page = rows.slice(0, 50);
    reply.header('elements-returned-count', page.length);
    reply.type('application/json').send(`[${page.map((r) => r.row).join(',')}]`);
  });
  await app.listen({ host: '127.0.0.1', port });
  // Exit normally on SIGTERM, so that --cpu-prof writes its profile.
  process.once('SIGTERM', () => process.exit(0));
  console.log(`baseline listening on ${port}`);
}

/** CPU time (user + system) a process has used so far, in ms (Linux /proc; 0 elsewhere). */
async function cpuMs(pid: number): Promise<number> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, 100 ticks/s
  } catch {
    return 0;
  }
}

function profileArgs(name: string): string[] {
  return PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
}

interface Result {
  target: string;
  call: string;
  rps: number;
  /** Server-side CPU per request (relay + agent for ground2cloud): robust to the machine's load. */
  cpuUs: number;
  p50: number;
  p99: number;
  errors: number;
}

async function measure(
  target: string,
  call: string,
  url: string,
  path: () => string,
  headers: Record<string, string>,
  pids: number[],
): Promise<Result> {
  const once = (duration: number) =>
    autocannon({
      url,
      connections: CONNECTIONS,
      duration,
      headers,
      requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: path() }) }],
    });
  await once(2);
  const cpuBefore = await Promise.all(pids.map(cpuMs));
  const r = await once(SECONDS);
  const cpuAfter = await Promise.all(pids.map(cpuMs));
  const cpu = cpuAfter.reduce((sum: number, v, i) => sum + v - cpuBefore[i]!, 0);
  return {
    target,
    call,
    rps: r.requests.average,
    cpuUs: (cpu * 1000) / Math.max(1, r.requests.total),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

async function json(
  url: string,
  init: { method?: string; headers: Record<string, string>; body?: unknown },
  // biome-ignore lint/suspicious/noExplicitAny: the bench reads a few known fields of the relay's answers
): Promise<any> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...init.headers, ...(init.body ? { 'content-type': 'application/json' } : {}) },
    body: init.body ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${text}`);
  return JSON.parse(text);
}

export async function run(): Promise<void> {
  const db = await startTestPostgres();
  const processes: RunningProcess[] = [];
  const dataDir = await mkdtemp(join(tmpdir(), 'g2c-bench-engine-'));
  try {
    await db.query('create database relay');
    await db.query('create database shop');
    await db.query(FIXTURE, 'shop');
    const password = decodeURIComponent(new URL(db.url('shop')).password);

    // (c) the hand-written route, in its own process like the relay
    const basePort = await freePort();
    processes.push(
      await startProcess('baseline', process.execPath, [...profileArgs('baseline'), fileURLToPath(import.meta.url)], {
        env: { G2C_ENGINE_BASELINE: `${db.url('shop')},${basePort}` },
        ready: /baseline listening/,
      }),
    );

    // (a)(b) the relay, its tunnel and agent, two instances of the same database
    const relayPort = await freePort();
    const relayUrl = `http://127.0.0.1:${relayPort}`;
    const masterKey = Buffer.alloc(32, 7).toString('base64');
    const relayArgs = [
      'serve',
      '--listen',
      `127.0.0.1:${relayPort}`,
      '--data-dir',
      dataDir,
      '--database-url',
      db.url('relay'),
      '--log-level',
      'warn',
    ];
    processes.push(
      await startProcess('relay', process.execPath, [...profileArgs('relay'), relayBin, ...relayArgs], {
        env: { G2C_MASTER_KEY: masterKey },
      }),
    );
    // It logs at warn only: poll its readiness instead of waiting for a log line.
    for (let i = 0; ; i++) {
      const ready = await fetch(`${relayUrl}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (i === 300) throw new Error('the relay did not become ready in 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The relay logs at warn: wait for credentials.json rather than a log line.
    let secrets: { organizationSecret: string; userSecret: string } | undefined;
    for (let i = 0; i < 100 && !secrets; i++) {
      secrets = await readFile(join(dataDir, 'credentials.json'), 'utf8').then(JSON.parse, () => undefined);
      if (!secrets) await new Promise((r) => setTimeout(r, 100));
    }
    if (!secrets) throw new Error('the relay wrote no credentials.json');
    const platform = { authorization: `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}` };
    const tunnel = await json(`${relayUrl}/elements/api-v2/tunnels`, {
      method: 'POST',
      headers: platform,
      body: { name: 'bench' },
    });
    const tokenFile = join(dataDir, 'agent.token');
    await writeFile(tokenFile, tunnel.token, { mode: 0o600 });
    processes.push(
      await startProcess(
        'agent',
        agentBin,
        ['--relay', relayUrl, '--token-file', tokenFile, '--allow', `127.0.0.1:${db.port}`],
        {
          ready: /connected to the relay/,
        },
      ),
    );
    const configuration = {
      'db.host': `127.0.0.1:${db.port}`,
      'db.name': 'shop',
      username: 'postgres',
      password,
      'pool.max': POOL_MAX,
    };
    const instance = async (name: string, extra: Record<string, unknown>) => {
      for (let i = 0; i < 50; i++) {
        try {
          return await json(`${relayUrl}/elements/api-v2/instances`, {
            method: 'POST',
            headers: platform,
            body: { name, configuration: { ...configuration, ...extra } },
          });
        } catch (err) {
          if (i === 49) throw err; // the tunnel may need a moment to be online
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const direct = await instance('direct', {});
    const g2c = await instance('g2c', { 'connection.type': 'ground2cloud', 'ground2cloud.tunnel': 'bench' });

    const randomId = () => `/items/${1 + Math.floor(Math.random() * ROWS)}`;
    const results: Result[] = [];
    const [baselinePid, relayPid, agentPid] = processes.map((p) => p.pid);
    const targets: [string, string, string, Record<string, string>, number[]][] = [
      ['hand-written', `http://127.0.0.1:${basePort}`, '', {}, [baselinePid!]],
      [
        'engine direct',
        relayUrl,
        '/elements/api-v2',
        { authorization: `${platform.authorization}, Element ${direct.token}` },
        [relayPid!],
      ],
      [
        'engine ground2cloud',
        relayUrl,
        '/elements/api-v2',
        { authorization: `${platform.authorization}, Element ${g2c.token}` },
        [relayPid!, agentPid!],
      ],
    ];
    // Targets side by side per call, in two rounds (the second in reverse order), keeping each
    // target's better round: the machine is shared, and its load of the moment must not decide
    // a ratio.
    const calls: [string, (base: string) => string][] = [
      ['GET /items/{id}', (base) => base + randomId()],
      ['GET /items?pageSize=50', (base) => `${base}/items?pageSize=50`],
    ];
    const only = process.env.G2C_BENCH_ONLY; // "get" or "list": one call only
    for (const [call, path] of calls.filter(([c]) => !only || c.includes(only === 'get' ? '{id}' : 'pageSize'))) {
      const chosen = targets.filter(
        ([name]) => !process.env.G2C_BENCH_TARGETS || process.env.G2C_BENCH_TARGETS.split(',').includes(name),
      );
      for (const round of [chosen, [...chosen].reverse()]) {
        for (const [name, url, base, headers, pids] of round) {
          const r = await measure(name, call, url, () => path(base), headers, pids);
          const previous = results.findIndex((x) => x.call === call && x.target === name);
          if (previous === -1) results.push(r);
          else if (r.rps > results[previous]!.rps) results[previous] = r;
        }
      }
    }

    const pad = (s: string | number, n: number) => String(s).padEnd(n);
    console.log(
      `autocannon, ${CONNECTIONS} connections, best of 2 runs of ${SECONDS} s; pool.max ${POOL_MAX}; ${ROWS} rows; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(
      `${pad('call', 24)}${pad('target', 22)}${pad('req/s', 10)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}${pad('errors', 8)}${pad('cpu us/req', 12)}ratio`,
    );
    for (const r of results) {
      const base = results.find((x) => x.call === r.call && x.target === 'hand-written') ?? r;
      const direct = results.find((x) => x.call === r.call && x.target === 'engine direct') ?? r;
      const cpu = (x: Result) => `cpu ${(x.cpuUs / r.cpuUs).toFixed(2)}x`;
      const ratio =
        r.target === 'engine direct'
          ? `${(r.rps / base.rps).toFixed(2)}x hand-written (goal >= 0.85; ${cpu(base)})`
          : r.target === 'engine ground2cloud'
            ? `${(r.rps / direct.rps).toFixed(2)}x direct (goal >= 0.9; ${cpu(direct)}), ${(r.rps / base.rps).toFixed(2)}x hand-written`
            : '';
      // CPU per request does not depend on what else the machine runs: the fairer ratio here.
      console.log(
        `${pad(r.call, 24)}${pad(r.target, 22)}${pad(Math.round(r.rps), 10)}${pad(r.p50, 8)}${pad(r.p99, 8)}${pad(r.errors, 8)}${pad(Math.round(r.cpuUs), 12)}${ratio}`,
      );
    }
  } finally {
    for (const p of processes.reverse()) await p.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    await db.stop();
  }
}

if (process.env.G2C_ENGINE_BASELINE) {
  const [url, port] = process.env.G2C_ENGINE_BASELINE.split(',');
  void baselineServer(url!, Number(port)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
