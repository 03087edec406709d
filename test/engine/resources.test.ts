// The resource API over HTTP (app.inject) against test/fixtures/engine.sql. The whole suite
// runs once per connection type on the same database (reset from its template in between):
// direct, then ground2cloud through a real agent; every recorded response must be identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_CACHE_DEFAULTS } from '../../relay/src/engine/schema-cache.js';
import {
  BASE,
  call,
  createInstance,
  type EngineHarness,
  type Reply,
  startEngineHarness,
  startProxy,
} from './harness.js';
import { type Connection, connectionKinds, startTunnel, type TunnelSetup } from './tunnel.js';

let h: EngineHarness;
let tunnel: TunnelSetup | undefined;
const kinds = connectionKinds();

beforeAll(async () => {
  h = await startEngineHarness();
  if (kinds.includes('ground2cloud')) tunnel = await startTunnel(h);
}, 60_000);
afterAll(async () => {
  await tunnel?.stop();
  await h?.close();
});

/** What must be identical between connection types: status, body without ids, paging headers. */
type Recorded = { call: string; status: number; body: unknown; count?: unknown; next?: unknown };
const transcripts: Record<string, Recorded[]> = {};

function normalise(res: Reply): unknown {
  if (res.json === undefined) return res.body;
  const body = JSON.parse(JSON.stringify(res.json));
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    delete body.requestId;
    delete body.latencyMs;
    delete body.connection; // /ping says which (asserted there)
  }
  return body;
}

for (const kind of kinds) {
  describe(`${kind} instance`, () => {
    let auth = '';
    const log: Recorded[] = [];
    transcripts[kind] = log;

    /** A resource call, recorded for the comparison between connection types. */
    const api = async (
      method: string,
      path: string,
      options: { body?: unknown; headers?: Record<string, string>; record?: boolean } = {},
    ) => {
      const res = await call(h.app, method, path.startsWith('/elements') ? path : `${BASE}${path}`, {
        auth,
        ...options,
      });
      expect(res.headers['elements-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      if (options.record !== false) {
        log.push({
          call: `${method} ${path}`,
          status: res.status,
          body: normalise(res),
          count: res.headers['elements-returned-count'],
          next: res.headers['elements-next-page-token'],
        });
      }
      return res;
    };

    beforeAll(async () => {
      await h.resetShop();
      auth = (await createInstance(h, configFor(kind), 'shop')).auth;
    });

    it('GET /ping answers ok with the connection type', async () => {
      const res = await api('GET', '/ping');
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ status: 'ok', connection: kind });
      expect(typeof (res.json as { latencyMs: number }).latencyMs).toBe('number');
    });

    it('GET /objects lists tables and views, awkward names included', async () => {
      const res = await api('GET', '/objects');
      expect(res.json).toEqual([
        'Mixed Case',
        'adults',
        'countries',
        'events',
        'it\'s "quoted"',
        'memberships',
        'objects',
        'orders',
        'people',
        'ping',
        'samples',
        'slow',
        'walk',
      ]);
    });

    it('GET /objects/{name}/metadata describes keys, types, read-only and required fields', async () => {
      const people = (await api('GET', '/objects/people/metadata')).json as {
        primaryKey: string;
        fields: {
          vendorPath: string;
          vendorRequired: boolean;
          vendorReadOnly: boolean;
          createable: boolean;
          type: string;
          vendorNativeType: string;
        }[];
      };
      expect(people.primaryKey).toBe('id');
      const field = (name: string) => people.fields.find((f) => f.vendorPath === name);
      expect(field('id')).toMatchObject({ vendorRequired: false, vendorReadOnly: false, type: 'integer' });
      expect(field('email')).toMatchObject({ vendorRequired: true, type: 'string', vendorNativeType: 'text' });
      expect(field('name_len')).toMatchObject({ vendorReadOnly: true, createable: false });
      expect(field('badge')).toMatchObject({ vendorReadOnly: true, createable: false, vendorNativeType: 'bigint' });
      const view = (await api('GET', '/objects/adults/metadata')).json as {
        primaryKey: null;
        fields: { vendorReadOnly: boolean }[];
      };
      expect(view.primaryKey).toBeNull();
      expect(view.fields.every((f) => f.vendorReadOnly)).toBe(true);
      const composite = (await api('GET', '/objects/memberships/metadata')).json;
      expect(composite).toMatchObject({ primaryKey: null, primaryKeyColumns: ['person_id', 'team'] });
      const samples = (await api('GET', '/objects/samples/metadata')).json as {
        fields: { vendorPath: string; vendorNativeType: string }[];
      };
      expect(samples.fields.find((f) => f.vendorPath === 'num')?.vendorNativeType).toBe('numeric(40,10)');
      expect((await api('GET', '/objects/nope/metadata')).status).toBe(404);
    });

    it('every common type round-trips exactly (POST stores what GET returns)', async () => {
      // Raw JSON text: 9007199254740993 and the numeric must not pass through a double.
      const values: [string, string][] = [
        ['i2', '-32768'],
        ['i4', '2147483647'],
        ['i8', '9007199254740993'],
        ['num', '123456789012345678901234567890.0123456789'],
        ['f8', '0.1'],
        ['flag', 'true'],
        ['t', '"line\\nbreak \\"quoted\\" é 😀"'],
        ['vc', '"twenty chars max"'],
        ['d', '"2024-02-29"'],
        ['tm', '"23:59:59.999999"'],
        ['ts', '"2024-01-31T13:45:00.123456"'],
        ['tstz', '"2024-01-31T13:45:00.123456+00:00"'],
        ['iv', '"1 year 2 mons 3 days 04:05:06.789"'],
        ['u', '"0b5e3c9a-1f2d-4c3b-9a8e-7d6c5b4a3f21"'],
        ['j', '{"keep":  "spacing" , "n": 1.50}'],
        ['jb', '{"a": 1, "b": [true, null, "x"]}'],
        ['b', '"AAECAwT/"'],
        ['tags', '["a","b c","\\"q\\""]'],
        ['nums', '[1,-2,3]'],
        ['m', '"happy"'],
        ['ip', '"192.168.0.0/24"'],
      ];
      const body = `{${values.map(([k, v]) => `"${k}":${v}`).join(',')}}`;
      const created = await api('POST', '/samples', { body });
      expect(created.status).toBe(200);
      const id = /"id":(\d+)/.exec(created.body)?.[1];
      expect(id).toBeDefined();
      const fetched = await api('GET', `/samples/${id}`);
      const listed = await api('GET', `/samples?where=${encodeURIComponent(`id = ${id}`)}`);
      for (const text of [created.body, fetched.body, listed.body]) {
        for (const [key, value] of values) expect(text).toContain(`"${key}":${value}`);
      }
      // int8 extremes through PATCH, and nulls
      const patched = await api('PATCH', `/samples/${id}`, { body: '{"i8": -9223372036854775808, "t": null}' });
      expect(patched.body).toContain('"i8":-9223372036854775808');
      expect(patched.body).toContain('"t":null');
      // The value can be filtered on exactly.
      const found = await api('GET', `/samples?where=${encodeURIComponent('i8 = -9223372036854775808')}&fields=id`);
      expect(found.json).toEqual([{ id: Number(id) }]);
    });

    it('by-id routes work with serial, uuid and text keys; 404 when absent', async () => {
      expect((await api('GET', '/people/1')).json).toMatchObject({ id: 1, email: 'ann@example.com', name_len: 3 });
      expect((await api('GET', '/countries/fr')).json).toEqual({ code: 'fr', name: 'France' });
      const uuid = '5d7c8e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6';
      const order = await api('POST', '/orders', { body: { id: uuid, person_id: 1, total: '19.90' } });
      expect(order.status).toBe(200);
      expect(order.body).toBe(`{"id":"${uuid}","person_id":1,"total":19.90,"note":null}`);
      expect((await api('GET', `/orders/${uuid}`)).body).toBe(order.body);
      const missing = await api('GET', '/people/99999');
      expect(missing.status).toBe(404);
      expect(missing.json).toMatchObject({ code: 'not_found' });
      expect((await api('GET', '/countries/zz')).status).toBe(404);
      expect((await api('GET', '/nosuchtable')).status).toBe(404);
      const badUuid = await api('GET', '/orders/not-a-uuid');
      expect(badUuid.status).toBe(400);
      expect(badUuid.json).toMatchObject({ code: 'invalid_value' });
    });

    it('POST answers the stored row with defaults, generated and identity values; PATCH and DELETE', async () => {
      const created = await api('POST', '/people', {
        body: { email: 'dee@example.com', name: 'Dee', age: 41, created: '2024-05-01T10:00:00+00:00' },
      });
      expect(created.status).toBe(200);
      expect(created.json).toEqual({
        id: 4,
        email: 'dee@example.com',
        name: 'Dee',
        age: 41,
        mood: 'ok',
        name_len: 3,
        badge: 1003,
        created: '2024-05-01T10:00:00+00:00',
      });
      const patched = await api('PATCH', '/people/4', {
        body: { name: 'Deedee', age: null, created: '2024-05-01T12:00:00.5+02:00' },
      });
      // timestamptz answers in UTC whatever the server's TimeZone (the fixture's is Asia/Kolkata)
      expect(patched.json).toMatchObject({
        id: 4,
        name: 'Deedee',
        age: null,
        name_len: 6,
        created: '2024-05-01T10:00:00.5+00:00',
      });
      expect((await api('PATCH', '/people/999', { body: { name: 'x' } })).status).toBe(404);
      const readOnly = await api('PATCH', '/people/4', { body: { name_len: 1 } });
      expect(readOnly.status).toBe(400);
      const deleted = await api('DELETE', '/people/4');
      expect(deleted.json).toMatchObject({ id: 4, name: 'Deedee' });
      expect((await api('GET', '/people/4')).status).toBe(404);
      expect((await api('DELETE', '/people/4')).status).toBe(404);
    });

    it('tables without a single-column key and views answer 405 on by-id routes; views are read-only', async () => {
      for (const path of ['/memberships/1', '/events/1', '/adults/1']) {
        for (const method of ['GET', 'PATCH', 'DELETE']) {
          const res = await api(method, path, method === 'PATCH' ? { body: { role: 'x' } } : {});
          expect(res.status, `${method} ${path}`).toBe(405);
          expect(res.json).toMatchObject({ code: 'method_not_allowed' });
        }
      }
      const viewPost = await api('POST', '/adults', { body: { name: 'x' } });
      expect(viewPost.status).toBe(405);
      expect(viewPost.headers.allow).toBe('GET, HEAD');
      // list and insert work without a key
      const inserted = await api('POST', '/memberships', { body: { person_id: 2, team: 'blue' } });
      expect(inserted.json).toEqual({ person_id: 2, team: 'blue', role: 'member' });
      const events = await api('POST', '/events', { body: { at: '2024-01-01T00:00:00+00:00', kind: 'x' } });
      expect(events.status).toBe(200);
      expect((await api('GET', '/adults?orderBy=id')).json).toEqual([{ id: 1, name: 'Ann', age: 34 }]);
    });

    it('names with capitals, spaces and quotes are reachable URL-encoded; reserved names under /resources', async () => {
      expect((await api('GET', `/${encodeURIComponent('Mixed Case')}/1`)).json).toEqual({
        Key: 1,
        'Some Value': 'one',
        'quote"d': 'q1',
      });
      expect(
        (await api('GET', `/${encodeURIComponent('Mixed Case')}?where=${encodeURIComponent('"Some Value" = \'one\'')}`))
          .json,
      ).toHaveLength(1);
      expect((await api('GET', `/${encodeURIComponent('it\'s "quoted"')}/1`)).json).toEqual({ id: 1, v: 'x' });
      expect((await api('GET', '/resources/objects/1')).json).toEqual({ id: 1, label: 'an object row' });
      expect((await api('GET', '/resources/ping')).json).toEqual([{ id: 1, label: 'a ping row' }]);
      expect((await api('GET', '/resources/people/1')).json).toMatchObject({ id: 1 });
      for (const [method, path] of [
        ['DELETE', '/objects/1'],
        ['POST', '/ping'],
      ]) {
        const collide = await api(method, path, method === 'POST' ? { body: { id: 2 } } : {});
        expect(collide.status).toBe(404);
        expect((collide.json as { message: string }).message).toContain(`/resources${path.replace('/1', '')}`);
      }
    });

    it('lists with where, fields, orderBy, pageSize, page; next-page token only when more rows exist', async () => {
      const q = (s: string) => `/people?${s}`;
      const all = await api('GET', q('orderBy=id&fields=id,name'));
      expect(all.json).toEqual([
        { id: 1, name: 'Ann' },
        { id: 2, name: 'Bob' },
        { id: 3, name: 'Cy' },
      ]);
      expect(all.headers['elements-returned-count']).toBe('3');
      expect(all.headers['elements-next-page-token']).toBeUndefined();
      const where = encodeURIComponent("age >= 18 OR mood IN ('sad') AND email LIKE '%example.com'");
      expect((await api('GET', q(`where=${where}&fields=id&orderBy=id desc`))).json).toEqual([{ id: 2 }, { id: 1 }]);
      expect((await api('GET', q(`where=${encodeURIComponent('age IS NULL')}&fields=name`))).json).toEqual([
        { name: 'Cy' },
      ]);
      const first = await api('GET', q('pageSize=2&orderBy=name&fields=name'));
      expect(first.json).toEqual([{ name: 'Ann' }, { name: 'Bob' }]);
      const token = first.headers['elements-next-page-token'] as string;
      expect(token).toBeTruthy();
      const second = await api('GET', q(`pageSize=2&orderBy=name&fields=name&nextPage=${encodeURIComponent(token)}`));
      expect(second.json).toEqual([{ name: 'Cy' }]);
      expect(second.headers['elements-next-page-token']).toBeUndefined();
      const exact = await api('GET', q('pageSize=3'));
      expect(exact.headers['elements-next-page-token']).toBeUndefined();
      expect((await api('GET', q('pageSize=2&page=2&orderBy=id&fields=id'))).json).toEqual([{ id: 3 }]);
      const reused = await api('GET', q(`pageSize=2&orderBy=email&fields=name&nextPage=${encodeURIComponent(token)}`));
      expect(reused.status).toBe(400);
      expect(reused.json).toMatchObject({ code: 'invalid_page_token' });
      expect((await api('GET', q('pageSize=1001'))).status).toBe(400);
      const badWhere = await api('GET', q(`where=${encodeURIComponent("name = 'x' AND")}`));
      expect(badWhere.status).toBe(400);
      expect(badWhere.json).toMatchObject({ code: 'invalid_where' });
      expect((await api('GET', q('fields=nosuch'))).status).toBe(400);
      expect((await api('GET', q('orderBy=nosuch'))).status).toBe(400);
    });

    it('maps constraint and value errors (DESIGN 6)', async () => {
      const cases: [unknown, number, string][] = [
        [{ email: 'ann@example.com', name: 'Again' }, 409, 'unique_violation'],
        [{ email: 'n@example.com' }, 400, 'not_null_violation'],
        [{ email: 'c@example.com', name: 'C', age: -1 }, 400, 'check_violation'],
        [{ email: 'v@example.com', name: 'V', age: 'old' }, 400, 'invalid_value'],
        [{ email: 'm@example.com', name: 'M', mood: 'angry' }, 400, 'invalid_value'],
        [{ email: 'r@example.com', name: 'R', name_len: 3 }, 400, ''],
        [{ email: 'u@example.com', name: 'U', nosuch: 1 }, 400, ''],
      ];
      for (const [fields, status, code] of cases) {
        // A fixed `created` keeps PostgreSQL's "Failing row contains (...)" the same on every run.
        const body = { ...(fields as object), created: '2024-01-01T00:00:00+00:00' };
        const res = await api('POST', '/people', { body });
        expect(res.status, JSON.stringify(body)).toBe(status);
        if (code) expect(res.json).toMatchObject({ code });
        expect(res.json).toHaveProperty('message');
      }
      const fk = await api('POST', '/orders', {
        body: { id: '00000000-0000-4000-8000-000000000001', person_id: 999, total: 1 },
      });
      expect(fk.status).toBe(409);
      expect(fk.json).toMatchObject({ code: 'foreign_key_violation' });
      expect((await api('POST', '/people', { body: 'not json' })).json).toMatchObject({ code: 'invalid_json' });
      expect((await api('POST', '/people', { body: '[1]' })).status).toBe(400);
      const text = await api('POST', '/people', { body: 'x', headers: { 'content-type': 'text/plain' } });
      expect(text.status).toBe(415);
      const big = await api('POST', '/people', { body: { email: 'x'.repeat(2 * 1024 * 1024) } });
      expect(big.status).toBe(413);
    });

    it('a table or column added or dropped meanwhile is picked up at once', async () => {
      // Refresh-on-miss is rate-limited; earlier tests used it moments ago.
      await new Promise((r) => setTimeout(r, SCHEMA_CACHE_DEFAULTS.minMissRefreshIntervalMs + 50));
      await h.db.query('alter table countries add column capital text', 'shop');
      const added = await api('GET', '/countries?fields=code,capital&orderBy=code');
      expect(added.status).toBe(200);
      expect(added.json).toEqual([
        { code: 'de', capital: null },
        { code: 'fr', capital: null },
        { code: 'jp', capital: null },
      ]);
      await h.db.query('alter table countries drop column capital', 'shop');
      const dropped = await api('GET', '/countries/fr');
      expect(dropped.status).toBe(200);
      expect(dropped.json).toEqual({ code: 'fr', name: 'France' });
      await new Promise((r) => setTimeout(r, SCHEMA_CACHE_DEFAULTS.minMissRefreshIntervalMs + 50));
      await h.db.query('create table fresh (id int primary key); grant all on fresh to shop_app', 'shop');
      expect((await api('GET', '/fresh')).status).toBe(200);
      await h.db.query('drop table fresh', 'shop');
    });

    it('walks 10,000 rows by nextPage while rows are inserted: each row once, in order', async () => {
      let inserting = true;
      let extra = 0;
      // Rows before and after the walk's position keep arriving meanwhile.
      const writer = (async () => {
        for (let i = 1; inserting && i <= 400; i++) {
          await h.db.query(`insert into walk values (${10_000 + i}, 1), (${-i}, 2)`, 'shop');
          extra += 2;
        }
      })();
      const seen: number[] = [];
      let token: string | undefined;
      try {
        for (let page = 0; page < 100; page++) {
          const path = `/walk?pageSize=500&fields=id${token ? `&nextPage=${encodeURIComponent(token)}` : ''}`;
          const res = await api('GET', path, { record: false });
          expect(res.status).toBe(200);
          seen.push(...(res.json as { id: number }[]).map((r) => r.id));
          token = res.headers['elements-next-page-token'] as string | undefined;
          if (!token) break;
        }
      } finally {
        inserting = false;
        await writer;
      }
      expect(token).toBeUndefined();
      expect(extra).toBeGreaterThan(0);
      const original = seen.filter((id) => id >= 1 && id <= 10_000);
      expect(original).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      await h.db.query('delete from walk where id < 1 or id > 10000', 'shop');
    });

    it('walks a non-unique order (v desc) exactly once', async () => {
      const seen: string[] = [];
      let token: string | undefined;
      for (let page = 0; page < 20; page++) {
        const path = `/walk?pageSize=1000&orderBy=${encodeURIComponent('v desc')}${token ? `&nextPage=${encodeURIComponent(token)}` : ''}`;
        const res = await api('GET', path, { record: false });
        seen.push(...(res.json as { id: number; v: number }[]).map((r) => `${r.v}:${r.id}`));
        token = res.headers['elements-next-page-token'] as string | undefined;
        if (!token) break;
      }
      expect(seen).toHaveLength(10_000);
      expect(new Set(seen).size).toBe(10_000);
    });

    it('statement timeout and pool timeout answer 504', async () => {
      const slow = await createInstance(
        h,
        configFor(kind, { 'statement.timeout.ms': 600, 'pool.max': 1, 'pool.timeout.ms': 300 }),
        'slow',
      );
      // The one connection exists before the race (on a slow machine its opening may take a retry).
      let warm = 0;
      for (let i = 0; i < 5 && warm !== 200; i++)
        warm = (await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: slow.auth })).status;
      expect(warm).toBe(200);
      const get = () => call(h.app, 'GET', `${BASE}/slow`, { auth: slow.auth });
      const [a, b] = await Promise.all([get(), get()]);
      const bodies = [a, b].map((r) => r.json as { code: string; providerMessage?: string });
      expect([a.status, b.status]).toEqual([504, 504]);
      expect(bodies.map((x) => x.code)).toEqual(['timeout', 'timeout']);
      const provider = bodies.map((x) => x.providerMessage ?? '').sort();
      expect(provider[0]).toMatch(/canceling statement due to statement timeout/);
      expect(provider[1]).toMatch(/timeout exceeded when trying to connect/);
    });

    it('a database that cannot be reached answers 502', async () => {
      const proxy = await startProxy(h.db.port);
      try {
        const inst = await createInstance(h, configFor(kind, { 'db.host': `127.0.0.1:${proxy.port}` }), 'proxied');
        expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth })).status).toBe(200);
        await proxy.cut();
        await new Promise((r) => setTimeout(r, 100));
        const res = await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth });
        expect(res.status).toBe(502);
        expect(res.json).toMatchObject({ code: 'connect_refused' });
      } finally {
        await proxy.cut().catch(() => {});
      }
    });

    it('refuses missing or wrong credentials with 401', async () => {
      const platformOnly = auth.replace(/, Element .*$/, '');
      for (const header of [
        undefined,
        '',
        'Bearer x',
        platformOnly,
        `${platformOnly}, Element wrong`,
        auth.replace(/User \S+/, 'User nope'),
      ]) {
        const res = await call(h.app, 'GET', `${BASE}/countries`, { auth: header });
        expect(res.status).toBe(401);
        expect(res.json).toMatchObject({ code: 'unauthorized' });
        expect(res.headers['elements-request-id']).toBeTruthy();
      }
    });
  });
}

function configFor(kind: Connection, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base = h.shopConfig(overrides);
  return kind === 'ground2cloud' && tunnel ? { ...base, ...tunnel.configuration() } : base;
}

describe.runIf(kinds.length > 1)('direct and ground2cloud', () => {
  it('answer identically', () => {
    expect(transcripts.ground2cloud).toEqual(transcripts.direct);
  });
});
