// One pg.Pool per instance. A direct pool and a ground2cloud pool differ only by the `stream`
// factory handed to pg (DESIGN 4.4): nothing above the socket knows about the tunnel.
import type { Duplex } from 'node:stream';
import pg from 'pg';
import type { InstanceConfig } from './config.js';

/** How idle connections are kept, and defaults of the pool (the rest comes from the instance). */
export const POOL_DEFAULTS = {
  /** An idle connection is closed after this long. */
  idleTimeoutMs: 30_000,
  application_name: 'g2c-relay',
  /**
   * Session settings of every connection: timestamptz values are written in UTC (so every relay,
   * whatever the server's default TimeZone, answers alike), and floats in their shortest exact
   * form also on PostgreSQL < 12 (whose default rounds float8 to 15 digits).
   */
  options: '-c TimeZone=UTC -c extra_float_digits=3',
};

/** Builds the socket factory of a tunnel (hub/pg-socket.ts's tunnelSocketFactory). */
export type TunnelSocketFactory = (tunnelId: string) => () => Duplex;

export interface PoolLogger {
  warn(obj: object, msg: string): void;
}

function sslOption(config: InstanceConfig): pg.ClientConfig['ssl'] {
  if (config.ssl === 'disable') return false;
  if (config.ssl === 'require') return { rejectUnauthorized: false };
  return { rejectUnauthorized: true, ca: config.sslCa, servername: config.host };
}

/**
 * A new pool for `config`. `tunnelId` (required for ground2cloud) selects the tunnel whose agent
 * dials `config.host:config.port`.
 */
export function createPool(
  config: InstanceConfig,
  options: { tunnelId?: string; tunnelSocket?: TunnelSocketFactory; logger?: PoolLogger; label?: string },
): pg.Pool {
  const poolConfig: pg.PoolConfig = {
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.username,
    password: config.password,
    ssl: sslOption(config),
    max: config.poolMax,
    idleTimeoutMillis: POOL_DEFAULTS.idleTimeoutMs,
    connectionTimeoutMillis: config.poolTimeoutMs,
    statement_timeout: config.statementTimeoutMs || undefined,
    application_name: POOL_DEFAULTS.application_name,
    options: POOL_DEFAULTS.options,
  };
  if (config.connectionType === 'ground2cloud') {
    if (!options.tunnelId || !options.tunnelSocket) throw new Error('ground2cloud pool without a tunnel');
    (poolConfig as pg.PoolConfig & { stream: () => Duplex }).stream = options.tunnelSocket(options.tunnelId);
  }
  const pool = new pg.Pool(poolConfig);
  // An idle connection that dies (database restart, tunnel lost) must not crash the relay; the
  // pool drops it and the next request opens a new one.
  pool.on('error', (err) => {
    options.logger?.warn(
      { err: { message: err.message, code: (err as { code?: string }).code }, instance: options.label },
      'idle database connection lost',
    );
  });
  return pool;
}
