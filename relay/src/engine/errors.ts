// Maps what can go wrong below the engine (PostgreSQL errors, pool and socket failures, tunnel
// refusals) to the relay's error catalogue (DESIGN 6). Callers get an ApiError with a stable
// code; anything not recognised is a bug and becomes a 500 (logged by the app with the
// request id).
import { ApiError, type ErrorCode } from '../errors.js';

/** Seconds a client should wait before retrying a call on an offline tunnel. */
export const TUNNEL_OFFLINE_RETRY_AFTER_S = 5;

/** Error codes the agent (or the hub) use when a stream cannot be opened (DESIGN 4.2). */
const TUNNEL_CODES = new Set<ErrorCode>([
  'not_allowed',
  'connect_refused',
  'connect_timeout',
  'dns_failed',
  'unreachable',
]);

/** Node socket error codes, as seen on a direct connection, mapped to the agent's codes. */
const SOCKET_CODES: Record<string, ErrorCode> = {
  ECONNREFUSED: 'connect_refused',
  ENOTFOUND: 'dns_failed',
  EAI_AGAIN: 'dns_failed',
  EAI_NONAME: 'dns_failed',
  ETIMEDOUT: 'connect_timeout',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ECONNRESET: 'database_unavailable',
  EPIPE: 'database_unavailable',
};

interface PgLikeError {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  column?: unknown;
  constraint?: unknown;
  severity?: unknown;
  routine?: unknown;
}

/** True for a PostgreSQL server error (it has a 5-character SQLSTATE and a severity). */
export function isDatabaseError(err: unknown): err is PgLikeError & { code: string; message: string } {
  const e = err as PgLikeError | null;
  return !!e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/** SQLSTATEs that mean the schema cache is stale: refresh it and retry the request once. */
export function isSchemaMiss(err: unknown): boolean {
  return isDatabaseError(err) && (err.code === '42P01' || err.code === '42703' || err.code === '42704');
}

function providerText(err: PgLikeError): string {
  const parts = [String(err.message ?? '')];
  if (typeof err.detail === 'string' && err.detail) parts.push(err.detail);
  return parts.join(' ');
}

/**
 * The ApiError for a failure while talking to an instance's database. `what` names the
 * instance for messages ("instance 12 (crm)").
 */
export function toApiError(err: unknown, what = 'the database'): ApiError {
  if (err instanceof ApiError) return err;
  if (isDatabaseError(err)) return fromDatabaseError(err, what);
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (code === 'tunnel_offline') {
    return new ApiError(
      'tunnel_offline',
      `The tunnel of ${what} has no agent connected; start the agent (g2c-agent) or retry later.`,
      message,
      { headers: { 'retry-after': String(TUNNEL_OFFLINE_RETRY_AFTER_S) }, cause: err },
    );
  }
  if (TUNNEL_CODES.has(code as ErrorCode)) {
    const hint =
      code === 'not_allowed'
        ? `the agent's allowlist does not contain the target of ${what}; add it with --allow HOST:PORT`
        : `the agent could not reach ${what} (${code.replace('_', ' ')})`;
    return new ApiError(code as ErrorCode, `Cannot reach the database: ${hint}.`, message, { cause: err });
  }
  if (SOCKET_CODES[code]) {
    return new ApiError(
      SOCKET_CODES[code],
      `Cannot reach ${what} (${code}); check db.host and that the database is up.`,
      message,
      { cause: err },
    );
  }
  // pg-pool: every client busy for connectionTimeoutMillis.
  if (message === 'timeout exceeded when trying to connect') {
    return new ApiError('timeout', `No free connection to ${what} in time; raise pool.max or retry.`, message, {
      cause: err,
    });
  }
  // pg / pg-pool: a connection that did not complete its start-up in time.
  if (/connection timeout|timeout expired/i.test(message)) {
    return new ApiError('connect_timeout', `Connecting to ${what} timed out; check db.host and the network.`, message, {
      cause: err,
    });
  }
  if (
    /Connection terminated|Client has encountered a connection error|ended unexpectedly|socket hang up/i.test(message)
  ) {
    return new ApiError('database_unavailable', `The connection to ${what} was lost; retry the call.`, message, {
      cause: err,
    });
  }
  return new ApiError('internal_error', 'Internal error; the relay logged it with this request id.', undefined, {
    cause: err,
  });
}

function fromDatabaseError(err: PgLikeError & { code: string; message: string }, what: string): ApiError {
  const provider = providerText(err);
  const sqlstate = err.code;
  const opts = { cause: err };
  if (sqlstate === '23502') {
    const column = typeof err.column === 'string' ? ` "${err.column}"` : '';
    return new ApiError('not_null_violation', `A value is required for column${column}.`, provider, opts);
  }
  if (sqlstate === '23514') {
    return new ApiError(
      'check_violation',
      `The row fails the check constraint "${String(err.constraint ?? '')}".`,
      provider,
      opts,
    );
  }
  if (sqlstate === '23505') {
    return new ApiError(
      'unique_violation',
      `A row with the same unique value already exists (${String(err.constraint ?? '')}).`,
      provider,
      opts,
    );
  }
  if (sqlstate === '23503') {
    return new ApiError(
      'foreign_key_violation',
      `The row violates the foreign key "${String(err.constraint ?? '')}".`,
      provider,
      opts,
    );
  }
  if (sqlstate.startsWith('22')) {
    return new ApiError('invalid_value', `Invalid value: ${err.message}.`, provider, opts);
  }
  if (sqlstate.startsWith('23')) {
    return new ApiError('conflict', `The change violates a constraint: ${err.message}.`, provider, opts);
  }
  if (sqlstate === '57014') {
    return new ApiError(
      'timeout',
      `The statement on ${what} exceeded statement.timeout.ms and was cancelled.`,
      provider,
      opts,
    );
  }
  if (sqlstate === '28P01' || sqlstate === '28000') {
    return new ApiError(
      'database_unavailable',
      `${what} refused the credentials; update username/password of the instance.`,
      provider,
      opts,
    );
  }
  if (sqlstate === '3D000') {
    return new ApiError('database_unavailable', `${what} does not exist on the server; check db.name.`, provider, opts);
  }
  // 08xxx connection exceptions, 53xxx insufficient resources, 57P0x shutdown/crash.
  if (/^(08|53|57P)/.test(sqlstate)) {
    return new ApiError(
      'database_unavailable',
      `${what} is not available (${err.message}); retry later.`,
      provider,
      opts,
    );
  }
  if (sqlstate === '42501') {
    return new ApiError('bad_request', `The database user lacks a privilege: ${err.message}.`, provider, opts);
  }
  if (sqlstate === '25006') {
    return new ApiError('bad_request', `The database is read-only: ${err.message}.`, provider, opts);
  }
  return new ApiError('internal_error', 'Internal error; the relay logged it with this request id.', provider, opts);
}

/** Short description of a connection failure, for the 400 of instance validation. */
export function describeConnectFailure(err: unknown): string {
  if (isDatabaseError(err)) {
    if (err.code === '28P01' || err.code === '28000')
      return 'authentication failed: the database refused username/password';
    if (err.code === '3D000') return 'unknown database: check db.name';
    return `the database answered ${err.code}: ${err.message}`;
  }
  const api = toApiError(err);
  switch (api.code) {
    case 'tunnel_offline':
      return 'tunnel offline: no agent is connected to ground2cloud.tunnel';
    case 'not_allowed':
      return "target not allowed by the agent: add db.host to the agent's --allow list";
    case 'connect_refused':
      return 'unreachable: connection refused at db.host';
    case 'connect_timeout':
      return 'unreachable: connecting to db.host timed out';
    case 'dns_failed':
      return 'unreachable: the host name of db.host does not resolve';
    case 'unreachable':
    case 'database_unavailable':
      return `unreachable: ${api.providerMessage ?? api.message}`;
    default:
      return `connection failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}
