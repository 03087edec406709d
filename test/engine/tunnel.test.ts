// What only a ground2cloud instance can meet: its agent stops (503 tunnel_offline with
// Retry-After, fast) and comes back (calls work again), the agent refuses the target (502 with
// its code), validation through an offline tunnel, and switching an instance between direct
// and ground2cloud while another instance keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE, call, createInstance, type EngineHarness, startEngineHarness } from './harness.js';
import { startTunnel, type TunnelSetup } from './tunnel.js';

let h: EngineHarness;
let tunnel: TunnelSetup;
beforeAll(async () => {
  h = await startEngineHarness();
  tunnel = await startTunnel(h);
}, 60_000);
afterAll(async () => {
  await tunnel?.stop();
  await h?.close();
});

const g2c = (overrides: Record<string, unknown> = {}) => ({ ...h.shopConfig(overrides), ...tunnel.configuration() });

describe('ground2cloud instance', () => {
  it('answers 503 tunnel_offline with Retry-After within a second while the agent is stopped, then works again', async () => {
    const inst = await createInstance(h, g2c(), 'g2c');
    expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth })).status).toBe(200);
    await tunnel.stopAgent();
    for (const path of ['/countries/fr', '/people?pageSize=1', '/ping']) {
      const started = Date.now();
      const res = await call(h.app, 'GET', `${BASE}${path}`, { auth: inst.auth });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(res.status, `${path}: ${res.body}`).toBe(503);
      expect(res.json).toMatchObject({ code: 'tunnel_offline' });
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Validation through the offline tunnel says so.
    const create = await call(h.app, 'POST', `${BASE}/instances`, {
      auth: h.org.platform,
      body: { name: 'offline', configuration: g2c() },
    });
    expect(create.status).toBe(400);
    expect((create.json as { message: string }).message).toMatch(/tunnel offline/);

    await tunnel.startAgent();
    const back = await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth });
    expect(back.status).toBe(200);
    expect(back.json).toEqual({ code: 'fr', name: 'France' });
  });

  it("answers 502 with the agent's code when the agent refuses the target", async () => {
    // Reached as "localhost": allowed by 127.0.0.1:* only while the agent allows it by name.
    await tunnel.startAgent(['127.0.0.1:*', `localhost:${h.db.port}`]);
    const inst = await createInstance(h, g2c({ 'db.host': `localhost:${h.db.port}` }), 'by-name');
    expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth })).status).toBe(200);
    await tunnel.startAgent(['127.0.0.1:*']);
    const res = await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: inst.auth });
    expect(res.status).toBe(502);
    expect(res.json).toMatchObject({ code: 'not_allowed' });
    // Creating one is refused with a message that says so.
    const create = await call(h.app, 'POST', `${BASE}/instances`, {
      auth: h.org.platform,
      body: { name: 'refused', configuration: g2c({ 'db.host': `localhost:${h.db.port}` }) },
    });
    expect(create.status).toBe(400);
    expect((create.json as { message: string }).message).toMatch(/not allowed by the agent/);
  });

  it('a tunnel used by an instance cannot be deleted (409)', async () => {
    await createInstance(h, g2c(), 'user-of-tunnel');
    const res = await call(h.app, 'DELETE', `${BASE}/tunnels/${tunnel.id}`, { auth: h.org.platform });
    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ code: 'conflict' });
  });

  it('switches an instance between direct and ground2cloud while another keeps serving', async () => {
    const other = await createInstance(h, h.shopConfig(), 'other');
    const moving = await createInstance(h, h.shopConfig(), 'moving');
    let running = true;
    const failures: string[] = [];
    let served = 0;
    const load = (async () => {
      while (running) {
        const res = await call(h.app, 'GET', `${BASE}/people/1`, { auth: other.auth });
        if (res.status !== 200) failures.push(`${res.status} ${res.body}`);
        served++;
      }
    })();
    try {
      for (const [configuration, expected] of [
        [tunnel.configuration(), 'ground2cloud'],
        [{ 'connection.type': 'direct' }, 'direct'],
        [tunnel.configuration(), 'ground2cloud'],
      ] as const) {
        const patched = await call(h.app, 'PATCH', `${BASE}/instances/${moving.id}`, {
          auth: h.org.platform,
          body: { configuration },
        });
        expect(patched.status, patched.body).toBe(200);
        expect(patched.json).toMatchObject({ connectionType: expected });
        const ping = await call(h.app, 'GET', `${BASE}/ping`, { auth: moving.auth });
        expect(ping.json).toMatchObject({ status: 'ok', connection: expected });
        expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: moving.auth })).status).toBe(200);
      }
    } finally {
      running = false;
      await load;
    }
    expect(served).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  });
});
