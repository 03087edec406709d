// What the engine keeps alive per instance: its parsed configuration, its pg pool and its schema
// cache. Built on first use from the stored record, re-checked against the store every few
// seconds (another relay may have changed it), replaced atomically when the instance changes,
// and closed when it is deleted. Validation of a new or changed configuration (connect +
// introspect) also lives here, with a 400 that says what failed.
import type pg from 'pg';
import { ApiError } from '../errors.js';
import type { InstanceRecord } from '../store/instances.js';
import { type InstanceConfig, parseConfiguration } from './config.js';
import { describeConnectFailure, isSchemaMiss, toApiError } from './errors.js';
import { createPool, type PoolLogger, type TunnelSocketFactory } from './pools.js';
import type { TableInfo } from './schema.js';
import { introspect, SchemaCache, tableNameFilter } from './schema-cache.js';

export const RUNTIME_DEFAULTS = {
  /** A live instance re-reads its record from the store at most this often. */
  recheckMs: 5_000,
  /**
   * A replaced or deleted instance's pool is ended this long after the swap: a request that
   * picked the old runtime just before finishes on it instead of meeting an ended pool.
   */
  retireGraceMs: 5_000,
  /** Validation gives a first connection at least this long to open. */
  probeConnectTimeoutMs: 10_000,
};

export interface InstanceRuntime {
  id: string;
  orgId: string;
  /** updatedAt of the record this runtime was built from. */
  version: number;
  config: InstanceConfig;
  tunnelId: string | null;
  pool: pg.Pool;
  schema: SchemaCache;
  /** "instance <name>": for messages. */
  label: string;
  checkedAt: number;
}

export interface RuntimeDeps {
  /** Socket factory of a tunnel; absent when the relay has no hub (ground2cloud then fails). */
  tunnelSocket?: TunnelSocketFactory;
  logger?: PoolLogger;
}

function configOf(record: InstanceRecord): InstanceConfig {
  return parseConfiguration({ ...record.configuration, password: record.password });
}

export class InstanceRuntimes {
  private readonly live = new Map<string, InstanceRuntime>();

  constructor(private readonly deps: RuntimeDeps) {}

  private build(record: InstanceRecord, pool?: pg.Pool, tables?: TableInfo[]): InstanceRuntime {
    const config = configOf(record);
    const label = `instance "${record.name}"`;
    const realPool =
      pool ??
      createPool(config, {
        tunnelId: record.tunnelId ?? undefined,
        tunnelSocket: this.deps.tunnelSocket,
        logger: this.deps.logger,
        label: record.id,
      });
    const schema = new SchemaCache(() => introspect(realPool, config.schema, tableNameFilter(config.tableNames)));
    if (tables) schema.prime(tables);
    return {
      id: record.id,
      orgId: record.orgId,
      version: record.updatedAt.getTime(),
      config,
      tunnelId: record.tunnelId,
      pool: realPool,
      schema,
      label,
      checkedAt: Date.now(),
    };
  }

  /** The live runtime of an instance when it was checked against the store less than recheckMs ago. */
  fresh(id: string): InstanceRuntime | undefined {
    const current = this.live.get(id);
    return current && Date.now() - current.checkedAt < RUNTIME_DEFAULTS.recheckMs ? current : undefined;
  }

  /**
   * The runtime of an instance. `load` reads the current record (undefined = deleted); it is
   * called when the instance is not live here or was last checked more than recheckMs ago.
   */
  async get(id: string, load: () => Promise<InstanceRecord | undefined>): Promise<InstanceRuntime | undefined> {
    const current = this.fresh(id);
    if (current) return current;
    // Concurrent calls share one store read (and one pool: a burst of first calls after a
    // restart must not build a pool each).
    let pending = this.loading.get(id);
    if (!pending) {
      pending = this.refreshRuntime(id, load).finally(() => this.loading.delete(id));
      this.loading.set(id, pending);
    }
    return pending;
  }

  private readonly loading = new Map<string, Promise<InstanceRuntime | undefined>>();

  private async refreshRuntime(
    id: string,
    load: () => Promise<InstanceRecord | undefined>,
  ): Promise<InstanceRuntime | undefined> {
    const record = await load();
    const current = this.live.get(id);
    if (!record) {
      if (current) this.evict(id);
      return undefined;
    }
    if (current && current.version === record.updatedAt.getTime()) {
      current.checkedAt = Date.now();
      return current;
    }
    return this.install(record);
  }

  /** Makes `record` live, with a pool and tables already validated when given; the old pool drains. */
  install(record: InstanceRecord, probed?: { pool: pg.Pool; tables: TableInfo[] }): InstanceRuntime {
    const runtime = this.build(record, probed?.pool, probed?.tables);
    const old = this.live.get(record.id);
    this.live.set(record.id, runtime);
    if (old && old.pool !== runtime.pool) this.retire(old.pool);
    return runtime;
  }

  /** Forgets the instance; its pool ends after the grace period. */
  evict(id: string): void {
    const old = this.live.get(id);
    if (!old) return;
    this.live.delete(id);
    this.retire(old.pool);
  }

  private readonly retiring = new Set<pg.Pool>();

  private retire(pool: pg.Pool): void {
    this.retiring.add(pool);
    setTimeout(() => {
      this.retiring.delete(pool);
      pool.end().catch(() => {});
    }, RUNTIME_DEFAULTS.retireGraceMs).unref();
  }

  /** Ends every pool, live or retiring. */
  async close(): Promise<void> {
    const pools = [...[...this.live.values()].map((r) => r.pool), ...this.retiring];
    this.live.clear();
    this.retiring.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
  }

  /**
   * Connects with `config` and introspects it. Resolves with a pool and tables to install, or
   * throws a 400 `invalid_configuration` saying what failed (never the password).
   */
  async probe(config: InstanceConfig, tunnelId: string | null): Promise<{ pool: pg.Pool; tables: TableInfo[] }> {
    if (config.connectionType === 'ground2cloud' && !this.deps.tunnelSocket) {
      throw new ApiError(
        'invalid_configuration',
        'This relay has no tunnel hub; ground2cloud instances are unavailable.',
      );
    }
    const options = { tunnelId: tunnelId ?? undefined, tunnelSocket: this.deps.tunnelSocket, logger: this.deps.logger };
    // Validation waits for a slow first connection (a tunnel dial, a far database) even when
    // pool.timeout.ms is short: that setting is about waiting for a busy pool.
    const probeTimeoutMs = Math.max(config.poolTimeoutMs, RUNTIME_DEFAULTS.probeConnectTimeoutMs);
    const pool = createPool({ ...config, poolMax: 1, poolTimeoutMs: probeTimeoutMs }, options);
    try {
      const tables = await introspect(pool, config.schema, tableNameFilter(config.tableNames));
      const { rows } = await pool.query('select 1 from pg_namespace where nspname = $1', [config.schema]);
      if (rows.length === 0) {
        throw new ApiError(
          'invalid_configuration',
          `Schema "${config.schema}" does not exist in database "${config.database}" (db.schema).`,
        );
      }
      await pool.end();
      return { pool: createPool(config, options), tables };
    } catch (err) {
      await pool.end().catch(() => {});
      if (err instanceof ApiError && err.code === 'invalid_configuration') throw err;
      const target = config.connectionType === 'ground2cloud' ? ' (through the tunnel)' : '';
      throw new ApiError(
        'invalid_configuration',
        `Cannot use the database at ${config.host}:${config.port}${target}: ${describeConnectFailure(err)}.`,
        (err as Error)?.message,
      );
    }
  }
}

/**
 * Runs `work` against an instance, refreshing the schema and retrying once when PostgreSQL says
 * a table or column does not exist (the cache was stale), and mapping failures to ApiErrors.
 */
export async function withSchemaRetry<T>(runtime: InstanceRuntime, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!isSchemaMiss(err)) throw toApiError(err, runtime.label);
    await runtime.schema.refresh().catch(() => {});
    try {
      return await work();
    } catch (again) {
      throw toApiError(again, runtime.label);
    }
  }
}
