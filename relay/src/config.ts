// The relay's configuration: one typed object, read once from the parsed command line and the
// environment, validated at boot, then passed down explicitly. Nothing below main.ts reads
// process.env or the option table.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { OptionError, type OptionValues } from '@g2c/cli';
import { KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS } from '@g2c/tunnel';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ListenAddress {
  host: string;
  port: number;
}

export interface RelayConfig {
  /** Where the HTTP(S) server listens (`--listen`, default 0.0.0.0:8080). */
  listen: ListenAddress;
  /** Holds the embedded store (`pg/`), `master.key` and `credentials.json` (`--data-dir`). */
  dataDir: string;
  /** External PostgreSQL store; absent = embedded store in `<dataDir>/pg`. */
  databaseUrl?: string;
  /** PEM certificate and key (contents, read at boot) for HTTPS/WSS; absent = plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /** The URL agents and clients use; only shown in logs and help texts. */
  publicUrl?: string;
  logLevel: LogLevel;
  /**
   * Identifies this relay process in the presence table. Stable across restarts of the same
   * relay (host name + port by default) so that rows left by a crash are cleared at start.
   */
  nodeId: string;
  /** `G2C_MASTER_KEY` (base64 of 32 bytes); absent = embedded mode generates `<dataDir>/master.key`. */
  masterKey?: string;
  /**
   * Behind a reverse proxy: take client addresses from X-Forwarded-For (logs, agent status and
   * presence, the per-address limit on failed agent upgrades). Off by default, since a client
   * reaching the relay directly could otherwise pick its own address.
   */
  trustProxy: boolean;
  /** How often the hub pings each agent, and how long without an answer makes it dead. */
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  /** Largest request body accepted; beyond it the answer is 413. */
  bodyLimitBytes: number;
  /** How long a graceful shutdown waits for open requests and agent sessions before cutting them. */
  shutdownGraceMs: number;
  /** Tunnels one organization may hold (default DEFAULTS.maxTunnelsPerOrg); creating one more is 409. */
  maxTunnelsPerOrg?: number;
}

/** Default limits, in one place. */
export const DEFAULTS = {
  bodyLimitBytes: 1024 * 1024,
  shutdownGraceMs: 10_000,
  maxTunnelsPerOrg: 1000,
} as const;

/** `host:port`, `:port`, `[v6]:port`; port 0 picks a free one. */
export function parseListen(option: string, text: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) {
    throw new OptionError(option, `expected HOST:PORT (for example 127.0.0.1:8080), got ${JSON.stringify(text)}`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** `secret`: the value may hold a password (a database URL), so the error never repeats it. */
function parseUrl(option: string, text: string, protocols: string[], secret = false): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OptionError(
      option,
      `expected a URL${secret ? ' such as postgres://user@host:5432/db' : `, got ${JSON.stringify(text)}`}`,
    );
  }
  if (!protocols.includes(url.protocol)) {
    throw new OptionError(option, `expected a ${protocols.map((p) => p.slice(0, -1)).join(' or ')} URL`);
  }
  return text;
}

function readPem(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new OptionError(option, `cannot read ${file}: ${(err as Error).message}`);
  }
}

export function parseLogLevel(value: unknown): LogLevel {
  const level = String(value) as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    throw new OptionError('log-level', `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return level;
}

function keepalive(values: OptionValues): { keepaliveIntervalMs: number; keepaliveTimeoutMs: number } {
  const interval = Number(values['keepalive-interval'] ?? KEEPALIVE_INTERVAL_MS);
  const timeout = Number(values['keepalive-timeout'] ?? KEEPALIVE_TIMEOUT_MS);
  if (!(interval > 0)) throw new OptionError('keepalive-interval', 'must be more than 0');
  if (!(timeout > interval)) throw new OptionError('keepalive-timeout', 'must be longer than --keepalive-interval');
  return { keepaliveIntervalMs: interval, keepaliveTimeoutMs: timeout };
}

/** Builds and validates the serve configuration; a bad value throws OptionError (exit 2). */
export function serveConfig(values: OptionValues, env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const listen = parseListen('listen', String(values.listen));
  const logLevel = parseLogLevel(values['log-level']);
  const certFile = values['tls-cert'] as string | undefined;
  const keyFile = values['tls-key'] as string | undefined;
  if (Boolean(certFile) !== Boolean(keyFile)) {
    throw new OptionError(certFile ? 'tls-key' : 'tls-cert', 'required together with --tls-cert and --tls-key');
  }
  const databaseUrl = values['database-url'] as string | undefined;
  const publicUrl = values['public-url'] as string | undefined;
  const masterKey = env.G2C_MASTER_KEY?.trim() || undefined;
  return {
    listen,
    dataDir: resolve(String(values['data-dir'])),
    databaseUrl: databaseUrl && parseUrl('database-url', databaseUrl, ['postgres:', 'postgresql:'], true),
    tls: certFile && keyFile ? { cert: readPem('tls-cert', certFile), key: readPem('tls-key', keyFile) } : undefined,
    publicUrl: publicUrl && parseUrl('public-url', publicUrl, ['http:', 'https:', 'ws:', 'wss:']),
    logLevel,
    nodeId: (values['node-id'] as string | undefined) ?? `${hostname()}:${listen.port}`,
    masterKey,
    trustProxy: values['trust-proxy'] === true,
    ...keepalive(values),
    bodyLimitBytes: DEFAULTS.bodyLimitBytes,
    shutdownGraceMs: DEFAULTS.shutdownGraceMs,
    maxTunnelsPerOrg: DEFAULTS.maxTunnelsPerOrg,
  };
}
