// A relay app for the engine's HTTP tests: a real PostgreSQL cluster holding the relay's store
// (database `relay`) and the customer database (`shop`, from test/fixtures/engine.sql, kept as
// template `shop_tpl` so a run can start again from the same data), an organization with its
// secrets, and helpers to call the API through app.inject().
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { MasterKey } from '../../relay/src/auth/crypto.js';
import { TokenService } from '../../relay/src/auth/tokens.js';
import type { RelayConfig } from '../../relay/src/config.js';
import { Hub } from '../../relay/src/hub/hub.js';
import { startServer } from '../../relay/src/server.js';
import { createStore, type Store } from '../../relay/src/store/db.js';
import { migrate } from '../../relay/src/store/migrations.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

export const BASE = '/elements/api-v2';
export const APP_USER = 'shop_app';
export const APP_PASSWORD = 'app-pw-5f1c9e';

export interface Org {
  id: string;
  /** `User <s>, Organization <s>` */
  platform: string;
}

export interface EngineHarness {
  db: TestPostgres;
  store: Store;
  app: FastifyInstance;
  /** Base URL the app listens on (loopback), for agents. */
  url: string;
  hub: Hub;
  tokens: TokenService;
  org: Org;
  otherOrg: Org;
  /** Configuration of a direct instance on `shop` (override keys as needed). */
  shopConfig(overrides?: Record<string, unknown>): Record<string, unknown>;
  /** Recreates `shop` from its template (the instances' open connections are cut). */
  resetShop(): Promise<void>;
  close(): Promise<void>;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json: unknown;
}

/** One call through app.inject(); `body` objects are sent as JSON, strings as they are. */
export async function call(
  app: FastifyInstance,
  method: string,
  url: string,
  options: { auth?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth !== undefined) headers.authorization = options.auth;
  let payload: string | undefined;
  if (options.body !== undefined) {
    payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await app.inject({ method: method as 'GET', url, headers, payload });
  let json: unknown;
  try {
    json = res.body ? JSON.parse(res.body) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body: res.body, json };
}

async function newOrg(store: Store, name: string): Promise<Org> {
  const created = await store.orgs.create(name);
  return {
    id: created.organization.id,
    platform: `User ${created.userSecret}, Organization ${created.organizationSecret}`,
  };
}

/** `settings`: extra PostgreSQL server settings (e.g. ssl=on with a certificate). */
export async function startEngineHarness(
  options: { settings?: Record<string, string | number> } = {},
): Promise<EngineHarness> {
  const db = await startTestPostgres({ settings: options.settings });
  // pg's pool.end() resolves before its sockets are closed: a server stopped at once would
  // send a late FATAL to a client nobody listens to any more. Give them a moment.
  const cleanups: (() => Promise<unknown>)[] = [() => new Promise((r) => setTimeout(r, 300)).then(() => db.stop())];
  try {
    await db.query('create database relay');
    await db.query('create database shop_tpl');
    await db.loadFixture('engine.sql', 'shop_tpl');
    await db.query(`create role ${APP_USER} login password '${APP_PASSWORD}'`);
    await db.query(
      `grant all on all tables in schema public to ${APP_USER};
       grant all on all sequences in schema public to ${APP_USER};
       grant create, usage on schema public to ${APP_USER};`,
      'shop_tpl',
    );
    await db.query('create database shop template shop_tpl');
    // A server default other than UTC: answers must not depend on it (pools set TimeZone=UTC).
    await db.query(`alter database shop set timezone to 'Asia/Kolkata'`);

    const storePool = new pg.Pool({ connectionString: db.url('relay'), max: 10 });
    const store = createStore(storePool);
    cleanups.unshift(() => store.close());
    const logger = pino({ level: process.env.G2C_TEST_VERBOSE ? 'debug' : 'silent' });
    await migrate(storePool, logger);
    const masterKey = MasterKey.generate();
    const tokens = await TokenService.create(store, masterKey);
    const hub = new Hub({ tokens, presence: store.presence, logger, nodeId: 'test-node' });
    cleanups.unshift(() => hub.close());
    const config: RelayConfig = {
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: db.dir,
      logLevel: 'silent',
      nodeId: 'test-node',
      bodyLimitBytes: 1024 * 1024,
      shutdownGraceMs: 1000,
    };
    const server = await startServer({ config, logger, store, tokens, hub, masterKey });
    cleanups.unshift(() => server.close());
    const app = server.app;
    const org = await newOrg(store, 'acme');
    const otherOrg = await newOrg(store, 'globex');
    return {
      db,
      store,
      app,
      url: server.url,
      hub,
      tokens,
      org,
      otherOrg,
      shopConfig: (overrides = {}) => ({
        'db.host': `127.0.0.1:${db.port}`,
        'db.name': 'shop',
        username: APP_USER,
        password: APP_PASSWORD,
        ...overrides,
      }),
      resetShop: async () => {
        await db.query('drop database shop with (force)');
        await db.query('create database shop template shop_tpl');
        await db.query(`alter database shop set timezone to 'Asia/Kolkata'`);
      },
      close: async () => {
        for (const cleanup of cleanups) {
          const t = Date.now();
          await cleanup().catch(() => {});
          if (process.env.G2C_TEST_VERBOSE) console.error('cleanup', cleanup.toString().slice(0, 60), Date.now() - t);
        }
      },
    };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    throw err;
  }
}

/** Creates an instance and returns its id and the full resource Authorization header. */
export async function createInstance(
  h: EngineHarness,
  configuration: Record<string, unknown>,
  name = 'shop',
): Promise<{ id: string; auth: string; token: string }> {
  const res = await call(h.app, 'POST', `${BASE}/instances`, {
    auth: h.org.platform,
    body: { element: { key: 'postgresql' }, name, configuration },
  });
  if (res.status !== 200) throw new Error(`POST /instances: ${res.status} ${res.body}`);
  const { id, token } = res.json as { id: string; token: string };
  return { id, token, auth: `${h.org.platform}, Element ${token}` };
}

/** A TCP proxy to `port` that can be cut (its listener closed and every connection reset). */
export async function startProxy(port: number): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
