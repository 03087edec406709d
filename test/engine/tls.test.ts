// db.ssl against a PostgreSQL that speaks TLS (a throwaway CA and server certificate made with
// openssl): require and verify-full work, direct and through the tunnel (the agent then carries
// only ciphertext); a certificate from another CA is refused with a 400 that says so.
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE, call, createInstance, type EngineHarness, startEngineHarness } from './harness.js';
import { startTunnel, type TunnelSetup } from './tunnel.js';

let dir: string;
let ca: string;
let otherCa: string;
let h: EngineHarness;
let tunnel: TunnelSetup;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'g2c-engine-tls-'));
  await chmod(dir, 0o711); // the server (user postgres when we are root) reads its files here
  for (const name of ['ca', 'other']) {
    openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${name} test CA`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    ]);
  }
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.ext',
    '-out',
    'server.crt',
  ]);
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    for (const f of ['server.key', 'server.crt']) await chown(join(dir, f), uid, gid);
  }
  await chmod(join(dir, 'server.key'), 0o600);
  await chmod(join(dir, 'server.crt'), 0o644);
  ca = await readFile(join(dir, 'ca.crt'), 'utf8');
  otherCa = await readFile(join(dir, 'other.crt'), 'utf8');
  h = await startEngineHarness({
    settings: { ssl: 'on', ssl_cert_file: join(dir, 'server.crt'), ssl_key_file: join(dir, 'server.key') },
  });
  tunnel = await startTunnel(h);
  await tunnel.startAgent(['127.0.0.1:*', 'localhost:*']);
}, 90_000);

afterAll(async () => {
  await tunnel?.stop();
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function sslInUse(user: string): Promise<boolean[]> {
  const { rows } = await h.db.query(
    `select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = '${user}'`,
  );
  return rows.map((r) => r.ssl as boolean);
}

describe('db.ssl', () => {
  for (const kind of ['direct', 'ground2cloud'] as const) {
    const extra = () => (kind === 'ground2cloud' ? tunnel.configuration() : {});

    it(`${kind}: require and verify-full connect with TLS`, async () => {
      const required = await createInstance(h, h.shopConfig({ 'db.ssl': 'require', ...extra() }), `req-${kind}`);
      expect((await call(h.app, 'GET', `${BASE}/countries/fr`, { auth: required.auth })).json).toEqual({
        code: 'fr',
        name: 'France',
      });
      const verified = await createInstance(
        h,
        h.shopConfig({ 'db.host': `localhost:${h.db.port}`, 'db.ssl': 'verify-full', 'db.ssl.ca': ca, ...extra() }),
        `full-${kind}`,
      );
      expect((await call(h.app, 'GET', `${BASE}/countries/de`, { auth: verified.auth })).status).toBe(200);
      const ssl = await sslInUse('shop_app');
      expect(ssl.length).toBeGreaterThan(0);
      expect(ssl.every(Boolean)).toBe(true);
    });

    it(`${kind}: a certificate from another CA is refused with a 400 that says so`, async () => {
      const res = await call(h.app, 'POST', `${BASE}/instances`, {
        auth: h.org.platform,
        body: {
          name: 'wrong-ca',
          configuration: h.shopConfig({
            'db.host': `localhost:${h.db.port}`,
            'db.ssl': 'verify-full',
            'db.ssl.ca': otherCa,
            ...extra(),
          }),
        },
      });
      expect(res.status).toBe(400);
      expect((res.json as { message: string }).message).toMatch(/certificate/i);
    });
  }
});
