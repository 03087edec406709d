// The configuration keys of an instance (DESIGN 5.4): parsed and checked here, before anything
// connects. A missing or malformed key is a 400 that names the key. The password is never
// part of a message.
import { ApiError } from '../errors.js';

export type ConnectionType = 'direct' | 'ground2cloud';
export type SslMode = 'disable' | 'require' | 'verify-full';

/** An instance's configuration, typed, with every default applied. */
export interface InstanceConfig {
  /** Host name or IP literal (without brackets) of the database, as given in `db.host`. */
  host: string;
  /** Port from `db.host`; 5432 when absent. */
  port: number;
  /** `db.name` */
  database: string;
  username: string;
  password: string;
  /** `connection.type`: direct (the relay dials db.host) or ground2cloud (the agent does). */
  connectionType: ConnectionType;
  /** `ground2cloud.tunnel`: tunnel id or name, as given (resolved to an id by the routes). */
  tunnel?: string;
  /** `db.schema` (default `public`). */
  schema: string;
  /** `db.table.names`: exact names or `prefix*`; undefined exposes every table and view. */
  tableNames?: string[];
  /** `db.ssl` (default `disable`); `db.ssl.ca` is the PEM for verify-full. */
  ssl: SslMode;
  sslCa?: string;
  /** `pool.max`: connections per relay to this database (default 10). */
  poolMax: number;
  /** `statement.timeout.ms`: PostgreSQL statement_timeout of every connection (default 30000). */
  statementTimeoutMs: number;
  /** `pool.timeout.ms`: how long a request waits for a connection before a 504 (default 10000). */
  poolTimeoutMs: number;
  /** `filter.response.nulls`: drop null attributes from responses (default false). */
  filterResponseNulls: boolean;
}

export const CONFIG_DEFAULTS = {
  schema: 'public',
  ssl: 'disable' as SslMode,
  poolMax: 10,
  statementTimeoutMs: 30_000,
  poolTimeoutMs: 10_000,
  filterResponseNulls: false,
};

/** Every key an instance's configuration may hold. */
export const CONFIG_KEYS = [
  'db.host',
  'db.name',
  'username',
  'password',
  'connection.type',
  'ground2cloud.tunnel',
  'db.schema',
  'db.table.names',
  'db.ssl',
  'db.ssl.ca',
  'pool.max',
  'statement.timeout.ms',
  'pool.timeout.ms',
  'filter.response.nulls',
] as const;

function bad(key: string, what: string): ApiError {
  return new ApiError('invalid_configuration', `configuration."${key}" ${what}`);
}

function str(raw: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw bad(key, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw bad(key, 'must be a string');
  return v;
}

function int(raw: Record<string, unknown>, key: string, min: number, max: number, fallback: number): number {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return fallback;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw bad(key, `must be an integer from ${min} to ${max}`);
  return n;
}

function bool(raw: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return fallback;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw bad(key, 'must be true or false');
}

/** Splits `db.host` (`host`, `host:port`, `[v6]:port`, bare v6) into host and port. */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const s = text.trim();
  let host: string;
  let port = 5432;
  const v6 = /^\[([0-9a-fA-F:.%a-zA-Z]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = v6[1];
    if (v6[2] !== undefined) port = Number(v6[2]);
  } else if ((s.match(/:/g) ?? []).length > 1) {
    if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
    host = s; // a bare IPv6 literal: no port possible
  } else {
    const m = /^([A-Za-z0-9._-]+)(?::(\d+))?$/.exec(s);
    if (!m) return undefined;
    host = m[1];
    if (m[2] !== undefined) port = Number(m[2]);
  }
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/**
 * Parses a configuration object as sent by users. `previous` (on PATCH) supplies the keys that
 * are absent, so a PATCH may leave out the password.
 */
export function parseConfiguration(input: unknown, previous?: Record<string, unknown>): InstanceConfig {
  if (input !== undefined && (typeof input !== 'object' || input === null || Array.isArray(input))) {
    throw new ApiError('invalid_configuration', '"configuration" must be an object of configuration keys');
  }
  const raw: Record<string, unknown> = { ...previous, ...(input as Record<string, unknown> | undefined) };
  for (const key of Object.keys(raw)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      throw bad(key, `is not a known key; known keys: ${CONFIG_KEYS.join(', ')}`);
    }
  }
  const hostText = str(raw, 'db.host', true) as string;
  const hostPort = parseHostPort(hostText);
  if (!hostPort) throw bad('db.host', 'must be host, host:port or [ipv6]:port');
  const connectionType = (str(raw, 'connection.type', false) ?? 'direct') as ConnectionType;
  if (connectionType !== 'direct' && connectionType !== 'ground2cloud') {
    throw bad('connection.type', 'must be direct or ground2cloud');
  }
  const tunnel = str(raw, 'ground2cloud.tunnel', connectionType === 'ground2cloud');
  const ssl = (str(raw, 'db.ssl', false) ?? CONFIG_DEFAULTS.ssl) as SslMode;
  if (!['disable', 'require', 'verify-full'].includes(ssl))
    throw bad('db.ssl', 'must be disable, require or verify-full');
  const sslCa = str(raw, 'db.ssl.ca', false);
  const tableNamesText = str(raw, 'db.table.names', false);
  let tableNames: string[] | undefined;
  if (tableNamesText !== undefined) {
    tableNames = tableNamesText
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (tableNames.length === 0) throw bad('db.table.names', 'must list at least one name or prefix*');
    for (const name of tableNames) {
      if (name.indexOf('*') !== -1 && name.indexOf('*') !== name.length - 1) {
        throw bad('db.table.names', `"${name}": * is only allowed at the end (prefix*)`);
      }
    }
  }
  const schema = str(raw, 'db.schema', false) ?? CONFIG_DEFAULTS.schema;
  return {
    host: hostPort.host,
    port: hostPort.port,
    database: str(raw, 'db.name', true) as string,
    username: str(raw, 'username', true) as string,
    password: str(raw, 'password', true) as string,
    connectionType,
    tunnel: connectionType === 'ground2cloud' ? tunnel : undefined,
    schema,
    tableNames,
    ssl,
    sslCa,
    poolMax: int(raw, 'pool.max', 1, 1000, CONFIG_DEFAULTS.poolMax),
    statementTimeoutMs: int(raw, 'statement.timeout.ms', 0, 86_400_000, CONFIG_DEFAULTS.statementTimeoutMs),
    poolTimeoutMs: int(raw, 'pool.timeout.ms', 100, 600_000, CONFIG_DEFAULTS.poolTimeoutMs),
    filterResponseNulls: bool(raw, 'filter.response.nulls', CONFIG_DEFAULTS.filterResponseNulls),
  };
}

/** The configuration as shown to users and stored in clear: every key except the password. */
export function publicConfiguration(input: Record<string, unknown>): Record<string, unknown> {
  const { password: _password, ...rest } = input;
  return rest;
}
