// The relay's store: a pg Pool on --database-url, or on an embedded PostgreSQL kept in
// <data-dir>/pg (started here, stopped by close()). Migrations run before anything else uses it.
//
// Embedded mode guards its data directory: <data-dir>/relay.pid names the relay serving it.
// A second relay on the same directory is refused; a PostgreSQL left running by a relay that
// was killed (SIGKILL leaves its child behind) is stopped and started afresh; `admin`
// commands reuse the server of a running relay instead of fighting over the directory.
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logger.js';
import { startEmbeddedPostgres } from './embedded.js';
import { migrate } from './migrations.js';
import { OrgStore } from './orgs.js';
import { PresenceStore } from './presence.js';
import { SettingsStore } from './settings.js';
import { SigningKeyStore } from './signing-keys.js';
import { TunnelStore } from './tunnels.js';

export interface Store {
  pool: pg.Pool;
  orgs: OrgStore;
  tunnels: TunnelStore;
  presence: PresenceStore;
  signingKeys: SigningKeyStore;
  settings: SettingsStore;
  /** Resolves when the store answers a query (readiness). */
  ping(): Promise<void>;
  /** Ends the pool, then stops the embedded server if this process started it. */
  close(): Promise<void>;
}

export class StoreError extends Error {
  readonly code = 'ERR_STORE';
}

/** Wraps a pool (tests build one on their own PostgreSQL). */
export function createStore(pool: pg.Pool, onClose: () => Promise<void> = async () => {}): Store {
  // pg-pool's end() resolves before its clients' sockets are closed; a server that stops right
  // after would make them emit 'error' with no listener left (an uncaught exception). Query
  // errors reach their callers anyway, so each client keeps a listener of its own.
  pool.on('connect', (client) => client.on('error', () => {}));
  // pg-pool re-emits an idle client's error on the pool, and an 'error' without listener throws;
  // the pool drops that client anyway (openStore adds a listener that logs it).
  pool.on('error', () => {});
  return {
    pool,
    orgs: new OrgStore(pool),
    tunnels: new TunnelStore(pool),
    presence: new PresenceStore(pool),
    signingKeys: new SigningKeyStore(pool),
    settings: new SettingsStore(pool),
    ping: async () => {
      await pool.query('select 1');
    },
    close: async () => {
      await pool.end();
      await onClose();
    },
  };
}

export interface OpenStoreOptions {
  databaseUrl?: string;
  dataDir: string;
  logger: Logger;
  /** `serve` owns the embedded server; `admin` reuses a running relay's server. */
  role: 'serve' | 'admin';
  poolMax?: number;
  /**
   * How long to wait for a store connection (default 10 s). Without a bound, a store that
   * stops answering (a black-holed network) makes every API call and agent upgrade hang.
   */
  connectTimeoutMs?: number;
}

/** Opens the store and applies the migrations. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { logger } = options;
  let url = options.databaseUrl;
  let stopEmbedded = async () => {};
  if (!url) {
    const embedded = await startEmbeddedStore(options.dataDir, logger, options.role);
    url = embedded.url;
    stopEmbedded = embedded.stop;
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolMax ?? 10,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // Dead TCP connections to an external store are found by the kernel, not kept forever.
    keepAlive: true,
  });
  pool.on('error', (err) => logger.warn({ err: err.message }, 'idle store connection failed'));
  const store = createStore(pool, stopEmbedded);
  try {
    await store.ping();
  } catch (err) {
    await store.close().catch(() => {});
    throw new StoreError(
      `cannot reach the store${options.databaseUrl ? ' at --database-url' : ''}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    await migrate(pool, logger);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(file: string): Promise<{ pid: number; lines: string[] } | undefined> {
  try {
    const lines = (await readFile(file, 'utf8')).split('\n');
    const pid = Number(lines[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? { pid, lines } : undefined;
  } catch {
    return undefined;
  }
}

async function startEmbeddedStore(
  dataDir: string,
  logger: Logger,
  role: 'serve' | 'admin',
): Promise<{ url: string; stop: () => Promise<void> }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // As root the server runs as `postgres`, which must be able to enter <data-dir> to reach pg/.
  if (process.getuid?.() === 0) await chmod(dataDir, 0o711);
  const pgDir = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'pg.password');
  const relayPidFile = join(dataDir, 'relay.pid');

  const relay = await readPid(relayPidFile);
  // A pid left by a crash may have been reused by an unrelated process: check it is a relay.
  const relayRunning =
    relay !== undefined &&
    relay.pid !== process.pid &&
    alive(relay.pid) &&
    (await readFile(`/proc/${relay.pid}/cmdline`, 'utf8').then(
      (cmdline) => cmdline.includes('relay'),
      () => true, // no /proc (not Linux): trust the pid
    ));
  const postmaster = await readPid(join(pgDir, 'postmaster.pid'));
  const postmasterRunning = postmaster !== undefined && alive(postmaster.pid);

  if (relayRunning && postmasterRunning && role === 'admin') {
    // postmaster.pid line 4 is the port.
    const port = Number(postmaster.lines[3]);
    const password = (await readFile(passwordFile, 'utf8')).trim();
    return {
      url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
      stop: async () => {},
    };
  }
  if (relayRunning) {
    throw new StoreError(
      `another g2c-relay (pid ${relay.pid}) is serving ${dataDir}: stop it or choose another --data-dir`,
    );
  }
  if (postmasterRunning) {
    logger.warn(
      { pid: postmaster.pid, dir: pgDir },
      'stopping the embedded PostgreSQL left running by a relay that did not shut down',
    );
    process.kill(postmaster.pid, 'SIGINT');
    for (let i = 0; i < 200 && alive(postmaster.pid); i++) await sleep(50);
    if (alive(postmaster.pid)) {
      throw new StoreError(`the PostgreSQL server (pid ${postmaster.pid}) in ${pgDir} does not stop; stop it by hand`);
    }
  }

  if (role === 'serve') await writeFile(relayPidFile, `${process.pid}\n`, { mode: 0o600 });
  const started = Date.now();
  const server = await startEmbeddedPostgres({
    dataDir: pgDir,
    passwordFile,
    onLog: (line) => logger.debug({ postgres: line.trim() }, 'embedded store'),
  }).catch(async (err) => {
    if (role === 'serve') await rm(relayPidFile, { force: true });
    throw err;
  });
  logger.info({ dir: pgDir, port: server.port, ms: Date.now() - started }, 'embedded store started');
  return {
    url: server.url('postgres'),
    stop: async () => {
      await server.stop();
      if (role === 'serve') await rm(relayPidFile, { force: true });
    },
  };
}
