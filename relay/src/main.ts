// g2c-relay command line: serve (default), forward, admin create-org.
// Parses options into typed config (config.ts), then wires the parts together; no logic of
// its own beyond the order of start-up and shutdown.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { formatHelp, OptionError, type OptionSpec, parseOptions, runMain } from '@g2c/cli';
import { KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS } from '@g2c/tunnel';
import { loadMasterKey } from './auth/crypto.js';
import { TokenService } from './auth/tokens.js';
import { bootstrap } from './bootstrap.js';
import { parseListen, parseLogLevel, serveConfig } from './config.js';
import { type ForwardSecrets, readSecretsFile, startForward } from './forward.js';
import { Hub } from './hub/hub.js';
import { createLogger, type Logger } from './logger.js';
import { startServer } from './server.js';
import { openStore } from './store/db.js';

/** Presence rows not refreshed for this long belong to relays that are gone (refresh: every 30 s). */
const STALE_PRESENCE_MS = 10 * 60_000;

const USAGE =
  'usage: g2c-relay [serve] [options]\n' +
  '       g2c-relay forward --relay URL --tunnel ID|NAME --to HOST:PORT [--listen 127.0.0.1:6543]\n' +
  '       g2c-relay admin create-org NAME';

export const serveOptions: OptionSpec[] = [
  { name: 'listen', type: 'string', default: '0.0.0.0:8080', value: 'HOST:PORT', description: 'HTTP listen address' },
  {
    name: 'data-dir',
    type: 'string',
    default: './.g2c',
    value: 'DIR',
    description: 'embedded store, master key, credentials',
  },
  { name: 'database-url', type: 'string', value: 'URL', description: 'external PostgreSQL store (production)' },
  { name: 'tls-cert', type: 'string', value: 'FILE', description: 'PEM certificate for HTTPS/WSS' },
  { name: 'tls-key', type: 'string', value: 'FILE', description: 'PEM private key for HTTPS/WSS' },
  { name: 'public-url', type: 'string', value: 'URL', description: 'URL agents and clients use to reach this relay' },
  { name: 'log-level', type: 'string', default: 'info', description: 'trace, debug, info, warn or error' },
  {
    name: 'trust-proxy',
    type: 'bool',
    default: false,
    description: 'behind a reverse proxy: client addresses from X-Forwarded-For',
  },
  {
    name: 'keepalive-interval',
    type: 'duration',
    default: KEEPALIVE_INTERVAL_MS,
    description: 'ping every agent this often',
  },
  {
    name: 'keepalive-timeout',
    type: 'duration',
    default: KEEPALIVE_TIMEOUT_MS,
    description: 'an agent that has not answered for this long is dead: its streams fail, it goes offline',
  },
  {
    name: 'node-id',
    type: 'string',
    value: 'ID',
    description: 'this relay in presence rows (default: hostname:port)',
    hidden: true,
  },
];

export const forwardOptions: OptionSpec[] = [
  { name: 'relay', type: 'string', required: true, value: 'URL', description: 'relay base URL (http, https, ws, wss)' },
  { name: 'tunnel', type: 'string', required: true, value: 'ID|NAME', description: 'the tunnel to go through' },
  { name: 'to', type: 'string', required: true, value: 'HOST:PORT', description: 'target, as the agent dials it' },
  {
    name: 'listen',
    type: 'string',
    default: '127.0.0.1:6543',
    value: 'HOST:PORT',
    description: 'local listen address',
  },
  {
    name: 'credentials',
    type: 'string',
    value: 'FILE',
    description: 'JSON {"organizationSecret","userSecret"} (else G2C_USER_SECRET and G2C_ORG_SECRET)',
  },
  { name: 'ca', type: 'string', value: 'FILE', description: 'PEM CA bundle trusted for an https/wss relay' },
  { name: 'log-level', type: 'string', default: 'info', description: 'trace, debug, info, warn or error' },
];

export const adminOptions: OptionSpec[] = [
  { name: 'data-dir', type: 'string', default: './.g2c', value: 'DIR', description: 'the relay data directory' },
  { name: 'database-url', type: 'string', value: 'URL', description: 'external PostgreSQL store' },
  { name: 'log-level', type: 'string', default: 'warn', description: 'trace, debug, info, warn or error' },
];

/** SIGTERM/SIGINT: graceful close, then exit 0; a second signal exits at once. */
function onShutdownSignal(logger: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => logger.flush(() => process.exit(0)),
      (err: Error) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush(() => process.exit(1));
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  process.on('SIGHUP', handler);
}

async function serve(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseOptions(serveOptions, argv);
  if (help) {
    process.stdout.write(formatHelp(USAGE, serveOptions));
    return 0;
  }
  if (positionals.length) throw new OptionError('command', `unexpected argument ${JSON.stringify(positionals[0])}`);
  const config = serveConfig(values);
  const logger = createLogger(config.logLevel);
  // Holds master.key, credentials.json and (embedded mode) the store.
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const { key: masterKey, source } = await loadMasterKey({
    env: config.masterKey,
    dataDir: config.dataDir,
    externalStore: Boolean(config.databaseUrl),
  });
  logger.info({ source }, 'master key loaded');
  const store = await openStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    logger,
    role: 'serve',
  });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    const tokens = await TokenService.create(store, masterKey);
    await bootstrap(store, config.dataDir, logger);
    const stale =
      (await store.presence.clearNode(config.nodeId)) + (await store.presence.clearStale(STALE_PRESENCE_MS));
    if (stale) logger.info({ rows: stale, nodeId: config.nodeId }, 'cleared presence rows left by a previous run');
    const hub = new Hub({
      tokens,
      presence: store.presence,
      logger,
      nodeId: config.nodeId,
      trustProxy: config.trustProxy,
      keepaliveIntervalMs: config.keepaliveIntervalMs,
      keepaliveTimeoutMs: config.keepaliveTimeoutMs,
    });
    server = await startServer({ config, logger, store, tokens, hub, masterKey });
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  const running = server;
  logger.info(
    {
      url: running.url,
      publicUrl: config.publicUrl,
      nodeId: config.nodeId,
      store: config.databaseUrl ? 'external' : 'embedded',
    },
    `g2c-relay listening on ${running.url}`,
  );
  onShutdownSignal(logger, () => running.close());
  return new Promise<number>(() => {}); // runs until a signal
}

function forwardSecrets(file: string | undefined): Promise<ForwardSecrets> | ForwardSecrets {
  if (file) return readSecretsFile(file);
  const userSecret = process.env.G2C_USER_SECRET;
  const organizationSecret = process.env.G2C_ORG_SECRET;
  if (!userSecret || !organizationSecret) {
    throw new OptionError('credentials', 'required (or set both G2C_USER_SECRET and G2C_ORG_SECRET)');
  }
  return { userSecret, organizationSecret };
}

function parseTarget(text: string): { host: string; port: number } {
  const { host, port } = parseListen('to', text);
  if (!text.includes(':') || port === 0 || !host) {
    throw new OptionError('to', `expected HOST:PORT of the target, got ${JSON.stringify(text)}`);
  }
  return { host, port };
}

async function forward(argv: string[]): Promise<number> {
  const { values, help } = parseOptions(forwardOptions, argv);
  if (help) {
    process.stdout.write(formatHelp(USAGE, forwardOptions));
    return 0;
  }
  const relay = String(values.relay);
  try {
    if (!/^(https?|wss?):$/.test(new URL(relay).protocol)) throw new Error();
  } catch {
    throw new OptionError('relay', `expected an http, https, ws or wss URL, got ${JSON.stringify(relay)}`);
  }
  const to = parseTarget(String(values.to));
  const listen = parseListen('listen', String(values.listen));
  const logger = createLogger(parseLogLevel(values['log-level']));
  let ca: Buffer | undefined;
  if (values.ca) {
    try {
      ca = readFileSync(String(values.ca));
    } catch (err) {
      throw new OptionError('ca', `cannot read ${values.ca}: ${(err as Error).message}`);
    }
  }
  const secrets = await forwardSecrets(values.credentials as string | undefined);
  const running = await startForward({ relay, tunnel: String(values.tunnel), to, listen, secrets, ca, logger });
  onShutdownSignal(logger, () => running.close());
  return new Promise<number>(() => {});
}

async function admin(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseOptions(adminOptions, argv);
  if (help) {
    process.stdout.write(formatHelp('usage: g2c-relay admin create-org NAME [options]', adminOptions));
    return 0;
  }
  if (positionals[0] !== 'create-org') {
    throw new OptionError('command', 'expected: g2c-relay admin create-org NAME (see g2c-relay admin --help)');
  }
  const name = positionals[1];
  if (!name || positionals.length > 2) throw new OptionError('create-org', 'expected exactly one organization NAME');
  // The name ends up in logs and answers: printable and short.
  if (!/^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$/u.test(name)) {
    throw new OptionError(
      'create-org',
      'NAME: 1 to 64 letters, digits, spaces, ".", "_" or "-", starting with a letter or digit',
    );
  }
  const config = serveConfig({ ...values, listen: '127.0.0.1:0' });
  const logger = createLogger(config.logLevel, process.stderr);
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger, role: 'admin' });
  try {
    const created = await store.orgs.create(name).catch((err) => {
      if ((err as { code?: string }).code === '23505') {
        throw new Error(`an organization named "${name}" already exists: choose another name`);
      }
      throw err;
    });
    process.stdout.write(
      `${JSON.stringify({ organization: name, id: created.organization.id, organizationSecret: created.organizationSecret, userSecret: created.userSecret }, null, 2)}\n`,
    );
  } finally {
    await store.close();
  }
  return 0;
}

runMain(async (argv) => {
  const [first, ...rest] = argv;
  switch (first) {
    case 'serve':
      return serve(rest);
    case 'forward':
      return forward(rest);
    case 'admin':
      return admin(rest);
    default:
      if (first !== undefined && !first.startsWith('-')) {
        throw new OptionError('command', `unknown command ${JSON.stringify(first)} (expected serve, forward or admin)`);
      }
      return serve(argv);
  }
});
