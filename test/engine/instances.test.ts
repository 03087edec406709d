// Platform API of instances (DESIGN 5.3, 5.4) against a real PostgreSQL: validation names the
// key or says what failed, the password never comes back, the element token only once,
// changes are re-validated and take effect, other organizations see nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH_FAILURE_LIMIT } from '../../relay/src/engine/context.js';
import { APP_PASSWORD, BASE, call, createInstance, type EngineHarness, startEngineHarness } from './harness.js';

let h: EngineHarness;
beforeAll(async () => {
  h = await startEngineHarness();
});
afterAll(async () => {
  await h?.close();
});

const post = (configuration: unknown, extra: Record<string, unknown> = {}) =>
  call(h.app, 'POST', `${BASE}/instances`, {
    auth: h.org.platform,
    body: { element: { key: 'postgresql' }, name: 'shop', configuration, ...extra },
  });

describe('POST /instances validation', () => {
  it.each([
    ['db.host', { 'db.host': undefined }],
    ['db.name', { 'db.name': undefined }],
    ['username', { username: undefined }],
    ['password', { password: undefined }],
  ])('a missing %s is a 400 naming it', async (key, overrides) => {
    const res = await post(h.shopConfig(overrides));
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'invalid_configuration' });
    expect((res.json as { message: string }).message).toContain(`"${key}"`);
    expect(res.headers['elements-request-id']).toBe((res.json as { requestId: string }).requestId);
  });

  it.each([
    ['db.host', { 'db.host': 'host:99999' }],
    ['db.host', { 'db.host': 'a b' }],
    ['connection.type', { 'connection.type': 'carrier-pigeon' }],
    ['ground2cloud.tunnel', { 'connection.type': 'ground2cloud' }],
    ['db.ssl', { 'db.ssl': 'maybe' }],
    ['pool.max', { 'pool.max': 0 }],
    ['statement.timeout.ms', { 'statement.timeout.ms': 'soon' }],
    ['filter.response.nulls', { 'filter.response.nulls': 'yes' }],
    ['db.table.names', { 'db.table.names': 'a*b' }],
    ['colour', { colour: 'blue' }],
  ])('a malformed %s is a 400 naming it', async (key, overrides) => {
    const res = await post(h.shopConfig(overrides));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toContain(`"${key}"`);
  });

  it('a wrong password is a 400 saying authentication failed, without the password', async () => {
    const res = await post(h.shopConfig({ password: 'not-the-password-42' }));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toMatch(/authentication failed/);
    expect(res.body).not.toContain('not-the-password-42');
  });

  it('an unknown database is a 400 saying so', async () => {
    const res = await post(h.shopConfig({ 'db.name': 'nope' }));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toMatch(/unknown database/);
  });

  it('an unreachable host is a 400 saying unreachable', async () => {
    const res = await post(h.shopConfig({ 'db.host': '127.0.0.1:1' }));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toMatch(/unreachable/);
  });

  it('an unknown schema is a 400 naming db.schema', async () => {
    const res = await post(h.shopConfig({ 'db.schema': 'nowhere' }));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toContain('db.schema');
  });

  it('an unknown tunnel is a 400 naming ground2cloud.tunnel', async () => {
    const res = await post(h.shopConfig({ 'connection.type': 'ground2cloud', 'ground2cloud.tunnel': 'no-such' }));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toContain('ground2cloud.tunnel');
  });

  it('a wrong element key or missing name is a 400', async () => {
    expect((await post(h.shopConfig(), { element: { key: 'mysql' } })).status).toBe(400);
    expect((await post(h.shopConfig(), { name: '' })).status).toBe(400);
    const noConfig = await call(h.app, 'POST', `${BASE}/instances`, { auth: h.org.platform, body: { name: 'x' } });
    expect(noConfig.status).toBe(400);
  });

  it('answers 429 with Retry-After after too many failed authentications from one address', async () => {
    const remoteAddress = '10.9.8.7'; // its own address: the rest of the file is not limited
    const attempt = (auth: string) =>
      h.app.inject({ method: 'GET', url: `${BASE}/instances`, headers: { authorization: auth }, remoteAddress });
    for (let i = 0; i < AUTH_FAILURE_LIMIT.failures; i++) {
      expect((await attempt('User nope, Organization nope')).statusCode).toBe(401);
    }
    const limited = await attempt(h.org.platform); // even right credentials wait
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'rate_limited' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const resource = await h.app.inject({
      method: 'GET',
      url: `${BASE}/objects`,
      headers: { authorization: 'x' },
      remoteAddress,
    });
    expect(resource.statusCode).toBe(429);
    // Other addresses are not affected.
    expect((await call(h.app, 'GET', `${BASE}/instances`, { auth: h.org.platform })).status).toBe(200);
  });

  it('needs platform credentials', async () => {
    const res = await call(h.app, 'POST', `${BASE}/instances`, { body: { name: 'x', configuration: h.shopConfig() } });
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ code: 'unauthorized' });
  });
});

describe('instance lifecycle', () => {
  it('creates, shows without password, changes with re-validation, deletes', async () => {
    const created = await post(h.shopConfig({ 'db.table.names': 'people,count*' }), { tags: ['prod'] });
    expect(created.status).toBe(200);
    const view = created.json as Record<string, unknown>;
    expect(view).toMatchObject({
      name: 'shop',
      element: { key: 'postgresql' },
      tags: ['prod'],
      connectionType: 'direct',
      configuration: { 'db.name': 'shop', 'db.table.names': 'people,count*' },
    });
    expect(typeof view.token).toBe('string');
    expect(created.body).not.toContain(APP_PASSWORD);
    const id = view.id as string;
    const auth = `${h.org.platform}, Element ${view.token}`;

    // db.table.names with an exact name and a prefix*
    const objects = await call(h.app, 'GET', `${BASE}/objects`, { auth });
    expect(objects.json).toEqual(['countries', 'people']);

    const one = await call(h.app, 'GET', `${BASE}/instances/${id}`, { auth: h.org.platform });
    expect(one.status).toBe(200);
    expect(one.json).not.toHaveProperty('token');
    expect(one.body).not.toContain(APP_PASSWORD);
    const list = await call(h.app, 'GET', `${BASE}/instances`, { auth: h.org.platform });
    expect((list.json as { id: string }[]).map((i) => i.id)).toContain(id);
    expect(list.body).not.toContain(APP_PASSWORD);
    expect(list.body).not.toContain(view.token as string);

    // A bad change is refused and leaves the instance working.
    const bad = await call(h.app, 'PATCH', `${BASE}/instances/${id}`, {
      auth: h.org.platform,
      body: { configuration: { password: 'wrong-pw-77' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body).not.toContain('wrong-pw-77');
    expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth })).status).toBe(200);

    // A good change takes effect at once (the password is kept when not sent).
    const changed = await call(h.app, 'PATCH', `${BASE}/instances/${id}`, {
      auth: h.org.platform,
      body: { name: 'shop2', configuration: { 'db.table.names': null } },
    });
    expect(changed.status).toBe(200);
    expect(changed.json).toMatchObject({ name: 'shop2' });
    expect((changed.json as { configuration: object }).configuration).not.toHaveProperty('db.table.names');
    const after = await call(h.app, 'GET', `${BASE}/objects`, { auth });
    expect(after.json).toContain('samples');

    const del = await call(h.app, 'DELETE', `${BASE}/instances/${id}`, { auth: h.org.platform });
    expect(del.status).toBe(200);
    expect((await call(h.app, 'GET', `${BASE}/instances/${id}`, { auth: h.org.platform })).status).toBe(404);
    const gone = await call(h.app, 'GET', `${BASE}/countries`, { auth });
    expect(gone.status).toBe(401);
  });

  it("another organization's instance is invisible", async () => {
    const mine = await createInstance(h, h.shopConfig(), 'private');
    const theirs = h.otherOrg.platform;
    expect((await call(h.app, 'GET', `${BASE}/instances/${mine.id}`, { auth: theirs })).status).toBe(404);
    expect((await call(h.app, 'GET', `${BASE}/instances/${mine.id}/docs`, { auth: theirs })).status).toBe(404);
    expect(
      (await call(h.app, 'PATCH', `${BASE}/instances/${mine.id}`, { auth: theirs, body: { name: 'hijack' } })).status,
    ).toBe(404);
    expect((await call(h.app, 'DELETE', `${BASE}/instances/${mine.id}`, { auth: theirs })).status).toBe(404);
    const list = await call(h.app, 'GET', `${BASE}/instances`, { auth: theirs });
    expect(list.json).toEqual([]);
    // Their secrets with my element token: 401, not my rows.
    const res = await call(h.app, 'GET', `${BASE}/countries`, { auth: `${theirs}, Element ${mine.token}` });
    expect(res.status).toBe(401);
    // Still mine.
    expect((await call(h.app, 'GET', `${BASE}/countries`, { auth: mine.auth })).status).toBe(200);
  });

  it('filter.response.nulls leaves null fields out', async () => {
    const inst = await createInstance(h, h.shopConfig({ 'filter.response.nulls': true }), 'nonulls');
    const cy = await call(h.app, 'GET', `${BASE}/people/3`, { auth: inst.auth });
    expect(cy.json).toMatchObject({ id: 3, name: 'Cy' });
    expect(cy.json).not.toHaveProperty('age');
    expect(cy.json).not.toHaveProperty('mood');
    const list = await call(h.app, 'GET', `${BASE}/people?where=${encodeURIComponent('id = 3')}`, { auth: inst.auth });
    expect(list.json).toEqual([cy.json]);
  });

  it('db.ssl=require against a server without TLS is a 400 saying so', async () => {
    const res = await post(h.shopConfig({ 'db.ssl': 'require' }));
    expect(res.status).toBe(400);
    expect((res.json as { message: string }).message).toMatch(/SSL/i);
  });

  it('a database that refuses the login after creation answers 502 database_unavailable', async () => {
    await h.db.query(
      `create role shop_tmp login password 'tmp-pw-1'; grant select on all tables in schema public to shop_tmp`,
      'shop',
    );
    const inst = await createInstance(h, h.shopConfig({ username: 'shop_tmp', password: 'tmp-pw-1' }), 'tmp');
    expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth })).status).toBe(200);
    await h.db.query(
      `alter role shop_tmp password 'changed-elsewhere';
       select pg_terminate_backend(pid) from pg_stat_activity where usename = 'shop_tmp'`,
    );
    await new Promise((r) => setTimeout(r, 200));
    const res = await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth });
    expect(res.status).toBe(502);
    expect(res.json).toMatchObject({ code: 'database_unavailable' });
    expect((res.json as { message: string }).message).toMatch(/credentials/);
  });

  it("closes an instance's old pool after a change and its pool after a delete", async () => {
    await h.db.query(
      `create role pool_a login password 'pa'; create role pool_b login password 'pb';
       grant select on all tables in schema public to pool_a, pool_b`,
      'shop',
    );
    const connections = async (user: string) =>
      Number((await h.db.query(`select count(*) as n from pg_stat_activity where usename = '${user}'`)).rows[0].n);
    const waitNone = async (user: string) => {
      for (let i = 0; i < 100 && (await connections(user)) > 0; i++) await new Promise((r) => setTimeout(r, 100));
      return connections(user);
    };
    const inst = await createInstance(h, h.shopConfig({ username: 'pool_a', password: 'pa' }), 'pools');
    expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth })).status).toBe(200);
    expect(await connections('pool_a')).toBeGreaterThan(0);
    const patched = await call(h.app, 'PATCH', `${BASE}/instances/${inst.id}`, {
      auth: h.org.platform,
      body: { configuration: { username: 'pool_b', password: 'pb' } },
    });
    expect(patched.status).toBe(200);
    expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth })).status).toBe(200);
    expect(await waitNone('pool_a')).toBe(0);
    expect(await connections('pool_b')).toBeGreaterThan(0);
    expect((await call(h.app, 'DELETE', `${BASE}/instances/${inst.id}`, { auth: h.org.platform })).status).toBe(200);
    expect(await waitNone('pool_b')).toBe(0);
  });

  it('serves an OpenAPI 3.1 document with only the routes each table has', async () => {
    const inst = await createInstance(h, h.shopConfig(), 'docs');
    const res = await call(h.app, 'GET', `${BASE}/instances/${inst.id}/docs`, { auth: h.org.platform });
    expect(res.status).toBe(200);
    const doc = res.json as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths['/people'])).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/people/{id}'])).toEqual(['parameters', 'get', 'patch', 'delete']);
    expect(Object.keys(doc.paths['/adults'])).toEqual(['get']); // a view: list only
    expect(doc.paths['/adults/{id}']).toBeUndefined();
    expect(doc.paths['/memberships/{id}']).toBeUndefined(); // composite key
    expect(doc.paths['/events/{id}']).toBeUndefined(); // no key
    expect(doc.paths['/resources/objects']).toBeDefined(); // reserved name
    expect(doc.paths['/Mixed%20Case/{id}']).toBeDefined();
    expect(doc.components.schemas.samples.properties.i8).toMatchObject({ type: ['integer', 'null'], format: 'int64' });
    expect(doc.components.schemas.people.properties.name_len).toMatchObject({ readOnly: true });
  });
});
