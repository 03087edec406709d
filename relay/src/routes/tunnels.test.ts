// The tunnels API and the app's shared behaviour (request ids, error format, limits, logs)
// through fastify's inject(), on a real store; the forward endpoint's refusals over a real socket.
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';
import { type AppDeps, buildApp } from '../app.js';
import { MasterKey } from '../auth/crypto.js';
import { TokenService } from '../auth/tokens.js';
import { serveConfig } from '../config.js';
import { Hub } from '../hub/hub.js';
import { createLogger } from '../logger.js';
import { type RelayServer, startServer } from '../server.js';
import { createStore, type Store } from '../store/db.js';
import { migrate } from '../store/migrations.js';
import type { NewOrganization } from '../store/orgs.js';

let db: TestPostgres;
let store: Store;
let app: FastifyInstance;
let deps: AppDeps;
let orgA: NewOrganization;
let orgB: NewOrganization;
const logLines: string[] = [];

const auth = (o: NewOrganization) => ({ authorization: `User ${o.userSecret}, Organization ${o.organizationSecret}` });
const base = '/elements/api-v2';

beforeAll(async () => {
  db = await startTestPostgres();
  const pool = new pg.Pool({ connectionString: db.url(), max: 5 });
  store = createStore(pool);
  await migrate(pool);
  const masterKey = MasterKey.generate();
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger('debug', sink);
  const tokens = await TokenService.create(store, masterKey);
  const config = serveConfig({ listen: '127.0.0.1:0', 'data-dir': db.dir, 'log-level': 'debug' }, {});
  config.bodyLimitBytes = 64 * 1024;
  const hub = new Hub({ tokens, presence: store.presence, logger, nodeId: 'test' });
  deps = { config, logger, store, tokens, hub, masterKey };
  app = buildApp(deps);
  orgA = await store.orgs.create('a');
  orgB = await store.orgs.create('b');
});
afterAll(async () => {
  await app?.close();
  await store?.close();
  await db?.stop();
});

async function createTunnel(name: string, org = orgA) {
  const res = await app.inject({ method: 'POST', url: `${base}/tunnels`, headers: auth(org), payload: { name } });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { id: string; name: string; token: string; createdAt: string };
}

describe('errors and request ids', () => {
  it('gives every response an elements-request-id, and every error the JSON body', async () => {
    const ok = await app.inject({ url: '/healthz' });
    expect(ok.json()).toEqual({ status: 'ok' });
    expect(ok.headers['elements-request-id']).toMatch(/^[0-9a-f-]{36}$/);

    const missing = await app.inject({ url: '/nowhere' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      requestId: missing.headers['elements-request-id'],
      message: expect.stringContaining('/nowhere'),
      code: 'not_found',
    });

    const noAuth = await app.inject({ url: `${base}/tunnels` });
    expect(noAuth.statusCode).toBe(401);
    expect(noAuth.json()).toMatchObject({ code: 'unauthorized', requestId: noAuth.headers['elements-request-id'] });
  });

  it('answers bad JSON 400, an oversized body 413, a non-JSON content type 415', async () => {
    const headers = { ...auth(orgA), 'content-type': 'application/json' };
    const bad = await app.inject({ method: 'POST', url: `${base}/tunnels`, headers, payload: '{"name": ' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('invalid_json');

    const big = await app.inject({
      method: 'POST',
      url: `${base}/tunnels`,
      headers,
      payload: JSON.stringify({ name: 'x'.repeat(100_000) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ code: 'payload_too_large' });
    expect(big.headers['elements-request-id']).toBeTruthy();

    const text = await app.inject({
      method: 'POST',
      url: `${base}/tunnels`,
      headers: { ...auth(orgA), 'content-type': 'text/plain' },
      payload: 'name=x',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().code).toBe('unsupported_media_type');
  });

  it('readyz answers while the store does', async () => {
    const res = await app.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready' });
  });

  it('readyz answers 503 database_unavailable when the store does not, healthz still 200', async () => {
    const deadStore = createStore(new pg.Pool({ connectionString: 'postgres://x:y@127.0.0.1:1/none', max: 1 }));
    const lonely = buildApp({ ...deps, store: deadStore });
    try {
      const ready = await lonely.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ code: 'database_unavailable', message: expect.stringContaining('store') });
      expect((await lonely.inject({ url: '/healthz' })).statusCode).toBe(200);
      // API calls say the same (503 with Retry-After), not 500 internal_error.
      const list = await lonely.inject({ url: `${base}/tunnels`, headers: auth(orgA) });
      expect(list.statusCode).toBe(503);
      expect(list.json()).toMatchObject({ code: 'database_unavailable' });
      expect(list.headers['retry-after']).toBe('5');
    } finally {
      await lonely.close();
      await deadStore.close();
    }
  });
});

describe('tunnels API', () => {
  it('creates a tunnel whose token verifies, lists and gets it with its live status', async () => {
    const t = await createTunnel('plant');
    expect(await deps.tokens.verify(t.token)).toMatchObject({ tunnelId: t.id });
    const list = await app.inject({ url: `${base}/tunnels`, headers: auth(orgA) });
    expect(list.json()).toContainEqual({
      id: t.id,
      name: 'plant',
      createdAt: t.createdAt,
      status: 'offline',
      agents: [],
    });
    const one = await app.inject({ url: `${base}/tunnels/${t.id}`, headers: auth(orgA) });
    expect(one.json()).toEqual({ id: t.id, name: 'plant', createdAt: t.createdAt, status: 'offline', agents: [] });
    expect(one.json().token).toBeUndefined();
    const byName = await app.inject({ url: `${base}/tunnels/plant`, headers: auth(orgA) });
    expect(byName.json().id).toBe(t.id);
  });

  it('refuses bad and duplicate names', async () => {
    for (const payload of [
      {},
      { name: '' },
      { name: 'a b' },
      { name: 7 },
      [1],
      { name: '3f1c2b8e-0000-4000-8000-000000000000' },
    ]) {
      const res = await app.inject({ method: 'POST', url: `${base}/tunnels`, headers: auth(orgA), payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    await createTunnel('dup');
    const again = await app.inject({
      method: 'POST',
      url: `${base}/tunnels`,
      headers: auth(orgA),
      payload: { name: 'dup' },
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('conflict');
  });

  it('rotates: the new token verifies, the old one is revoked', async () => {
    const t = await createTunnel('rotate-me');
    const res = await app.inject({ method: 'POST', url: `${base}/tunnels/${t.id}/token`, headers: auth(orgA) });
    expect(res.statusCode).toBe(200);
    const { token } = res.json();
    expect(token).not.toBe(t.token);
    expect(await deps.tokens.verify(token)).toMatchObject({ tunnelId: t.id });
    await expect(deps.tokens.verify(t.token)).rejects.toMatchObject({ code: 'token_revoked' });
  });

  it('deletes: 409 while an instance uses the tunnel, then revoked and gone', async () => {
    const t = await createTunnel('to-delete');
    await store.pool.query(
      `insert into instances (id, org_id, name, configuration, password_enc, tunnel_id, token_hash)
       values (gen_random_uuid(), $1, 'crm', '{}', 'x', $2, 'h-to-delete')`,
      [orgA.organization.id, t.id],
    );
    const busy = await app.inject({ method: 'DELETE', url: `${base}/tunnels/${t.id}`, headers: auth(orgA) });
    expect(busy.statusCode).toBe(409);
    expect(busy.json().message).toMatch(/1 instance uses/);
    await store.pool.query(`delete from instances where token_hash = 'h-to-delete'`);

    const gone = await app.inject({ method: 'DELETE', url: `${base}/tunnels/${t.id}`, headers: auth(orgA) });
    expect(gone.statusCode).toBe(200);
    await expect(deps.tokens.verify(t.token)).rejects.toMatchObject({ code: 'token_revoked' });
    const after = await app.inject({ url: `${base}/tunnels/${t.id}`, headers: auth(orgA) });
    expect(after.statusCode).toBe(404);
  });

  it('hides every tunnel from other organizations (404 on every call)', async () => {
    const t = await createTunnel('private');
    const calls = [
      { method: 'GET', url: `${base}/tunnels/${t.id}` },
      { method: 'GET', url: `${base}/tunnels/private` },
      { method: 'POST', url: `${base}/tunnels/${t.id}/token` },
      { method: 'DELETE', url: `${base}/tunnels/${t.id}` },
    ] as const;
    for (const call of calls) {
      const res = await app.inject({ ...call, headers: auth(orgB) });
      expect(res.statusCode, `${call.method} ${call.url}`).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    const list = await app.inject({ url: `${base}/tunnels`, headers: auth(orgB) });
    expect(list.json().map((x: { id: string }) => x.id)).not.toContain(t.id);
    expect(await deps.tokens.verify(t.token)).toMatchObject({ tunnelId: t.id });
  });

  it('refuses a tunnel beyond the per-organization limit with 409, other organizations unaffected', async () => {
    const org = await store.orgs.create('limited');
    const other = await store.orgs.create('unlimited');
    const saved = deps.config.maxTunnelsPerOrg;
    deps.config.maxTunnelsPerOrg = 2;
    try {
      await createTunnel('one', org);
      await createTunnel('two', org);
      const res = await app.inject({
        method: 'POST',
        url: `${base}/tunnels`,
        headers: auth(org),
        payload: { name: 'three' },
      });
      expect(res.statusCode).toBe(409);
      expect(res.json()).toMatchObject({ code: 'conflict', message: expect.stringMatching(/2 tunnels/) });
      await createTunnel('three', other);
    } finally {
      deps.config.maxTunnelsPerOrg = saved;
    }
  });

  it('answers 404 (never 500) for ids and names no tunnel can have', async () => {
    for (const id of ['%00', 'a%00b', 'x'.repeat(90), '%E2%80%AE', '..%2F..']) {
      for (const call of [
        { method: 'GET', url: `${base}/tunnels/${id}` },
        { method: 'POST', url: `${base}/tunnels/${id}/token` },
        { method: 'DELETE', url: `${base}/tunnels/${id}` },
      ] as const) {
        const res = await app.inject({ ...call, headers: auth(orgA) });
        expect(res.statusCode, `${call.method} ${call.url.slice(0, 60)}`).toBe(404);
        expect(res.json().code).toBe('not_found');
      }
    }
  });

  it('never logs secrets or tokens', async () => {
    const t = await createTunnel('logged');
    await app.inject({ method: 'POST', url: `${base}/tunnels/${t.id}/token`, headers: auth(orgA) });
    const all = logLines.join('');
    expect(all).toContain('tunnel created');
    for (const secret of [orgA.userSecret, orgA.organizationSecret, orgB.userSecret, t.token]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe('shutdown', () => {
  it('does not hang on a store that stopped answering (presence rows, pool end)', async () => {
    const never = () => new Promise<never>(() => {});
    const presence = Object.assign(Object.create(Object.getPrototypeOf(store.presence)), store.presence, {
      clearNode: never,
    });
    const hub = new Hub({ tokens: deps.tokens, logger: deps.logger, nodeId: 'stuck' });
    const server = await startServer({
      ...deps,
      config: { ...deps.config, shutdownGraceMs: 300 },
      hub,
      store: { ...store, presence, close: never },
    });
    const outcome = await Promise.race([
      server.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still waiting'), 4000)),
    ]);
    expect(outcome).toBe('closed');
  });
});

describe('forward endpoint refusals (real socket)', () => {
  let server: RelayServer;
  beforeAll(async () => {
    server = await startServer({
      ...deps,
      hub: deps.hub as Hub,
      store: createStore(new pg.Pool({ connectionString: db.url(), max: 2 })),
    });
  });
  afterAll(() => server?.close());

  async function refusal(
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: Record<string, string> }> {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}${path}`, { headers });
    return new Promise((resolve, reject) => {
      ws.on('open', () => reject(new Error('upgrade accepted')));
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
    });
  }

  it('answers 401, 404, 400 and 503 tunnel_offline with the JSON body before any upgrade', async () => {
    const t = await createTunnel('fwd');
    const path = `${base}/tunnels/${t.id}/forward?host=db&port=5432`;
    expect(await refusal(path, {})).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    expect(await refusal(path, auth(orgB))).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(await refusal(`${base}/tunnels/${t.id}/forward?host=db&port=99999`, auth(orgA))).toMatchObject({
      status: 400,
      body: { code: 'invalid_parameter' },
    });
    const offline = await refusal(path, auth(orgA));
    expect(offline).toMatchObject({ status: 503, body: { code: 'tunnel_offline' } });
    expect(offline.body.requestId).toBeTruthy();
    expect(await refusal('/elsewhere', auth(orgA))).toMatchObject({ status: 404 });
    expect(await refusal(`${base}/tunnels/%00/forward?host=db&port=5432`, auth(orgA))).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
    expect(await refusal(`${base}/tunnels/%ff/forward?host=db&port=5432`, auth(orgA))).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
    const longHost = await refusal(`${base}/tunnels/${t.id}/forward?host=${'h'.repeat(256)}&port=5432`, auth(orgA));
    expect(longHost).toMatchObject({
      status: 400,
      body: { code: 'invalid_parameter', message: 'host: at most 255 characters' },
    });
  });

  it('explains itself to a plain GET', async () => {
    const t = await createTunnel('fwd-get');
    const res = await fetch(`${server.url}${base}/tunnels/${t.id}/forward?host=db&port=5432`, { headers: auth(orgA) });
    expect(res.status).toBe(426);
  });
});
