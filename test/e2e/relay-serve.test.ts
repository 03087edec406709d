// g2c-relay as a user runs it: the real binary on a temp data dir, over HTTP on loopback.
// Bootstrap credentials, admin create-org, restarts (graceful and SIGKILL), option errors.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '@g2c/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestPostgres } from '../helpers/postgres.js';
import { type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';

const run = promisify(execFile);
let root: string;
let dataDir: string;
let port: number;
const started: RunningProcess[] = [];

async function startRelay(extraEnv: NodeJS.ProcessEnv = {}): Promise<RunningProcess> {
  const relay = await startProcess(
    'relay',
    relayBin,
    ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir],
    {
      env: extraEnv,
      ready: /g2c-relay listening/,
      timeoutMs: 40_000,
    },
  );
  started.push(relay);
  return relay;
}

interface Secrets {
  organizationSecret: string;
  userSecret: string;
}
const auth = (s: Secrets) => ({ authorization: `User ${s.userSecret}, Organization ${s.organizationSecret}` });
const api = (path: string) => `http://127.0.0.1:${port}/elements/api-v2${path}`;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'g2c-relay-e2e-'));
  await chmod(root, 0o711);
  dataDir = join(root, 'data');
  port = await freePort();
});
afterAll(async () => {
  await Promise.allSettled(started.map((p) => p.stop()));
  await rm(root, { recursive: true, force: true });
});

describe('g2c-relay serve', () => {
  let secrets: Secrets;
  let tunnel: { id: string; token: string };

  it('bootstraps organization default: credentials.json 0600, secrets never in the log', async () => {
    const relay = await startRelay();
    const file = join(dataDir, 'credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, 'master.key'))).mode & 0o777).toBe(0o600);
    secrets = JSON.parse(await readFile(file, 'utf8'));
    expect(Object.keys(secrets).sort()).toEqual(['organizationSecret', 'userSecret']);
    const log = relay.lines.join('\n');
    expect(log).toContain(file);
    expect(log).not.toContain(secrets.organizationSecret);
    expect(log).not.toContain(secrets.userSecret);

    const res = await fetch(api('/tunnels'), {
      method: 'POST',
      headers: { ...auth(secrets), 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'plant' }),
    });
    expect(res.status).toBe(200);
    tunnel = await res.json();
    expect(relay.lines.join('\n')).not.toContain(tunnel.token);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  });

  it('admin create-org prints a new working pair while the relay runs', async () => {
    const { stdout } = await run(process.execPath, [relayBin, 'admin', 'create-org', 'acme', '--data-dir', dataDir]);
    const created = JSON.parse(stdout) as Secrets & { organization: string };
    expect(created.organization).toBe('acme');
    const list = await fetch(api('/tunnels'), { headers: auth(created) });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual([]);
    const other = await fetch(api(`/tunnels/${tunnel.id}`), { headers: auth(created) });
    expect(other.status).toBe(404);
    await expect(
      run(process.execPath, [relayBin, 'admin', 'create-org', 'acme', '--data-dir', dataDir]),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('already exists'),
    });
  });

  it('forward exits 1 at start when the secrets or the tunnel are wrong, saying which', async () => {
    const forward = (tunnelName: string, userSecret: string) =>
      run(
        process.execPath,
        [
          relayBin,
          'forward',
          '--relay',
          `http://127.0.0.1:${port}`,
          '--tunnel',
          tunnelName,
          '--to',
          '10.0.0.5:5432',
          '--listen',
          '127.0.0.1:0',
        ],
        {
          env: { ...process.env, G2C_USER_SECRET: userSecret, G2C_ORG_SECRET: secrets.organizationSecret },
        },
      ).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
    const wrongSecret = await forward('plant', 'nope');
    expect(wrongSecret?.code).toBe(1);
    expect(wrongSecret?.stderr).toMatch(/unauthorized: the relay answered 401/);
    const wrongTunnel = await forward('no-such-tunnel', secrets.userSecret);
    expect(wrongTunnel?.code).toBe(1);
    expect(wrongTunnel?.stderr).toMatch(/not_found: the relay answered 404/);
  });

  it('refuses a second relay on the same data dir', async () => {
    const second = await startProcess('relay2', relayBin, ['--listen', '127.0.0.1:0', '--data-dir', dataDir]);
    started.push(second);
    expect(await second.exited).toBe(1);
    expect(second.lines.join('\n')).toMatch(/another g2c-relay \(pid \d+\) is serving/);
  });

  it('keeps tunnels, tokens and secrets across a graceful restart', async () => {
    expect(await started[0]!.stop()).toBe(0);
    await startRelay();
    const res = await fetch(api(`/tunnels/${tunnel.id}`), { headers: auth(secrets) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: tunnel.id, name: 'plant' });
    // The credentials file is not rewritten on later starts.
    expect(JSON.parse(await readFile(join(dataDir, 'credentials.json'), 'utf8'))).toEqual(secrets);
  });

  it('starts again after being SIGKILLed (the orphaned PostgreSQL is stopped and restarted)', async () => {
    const relay = started.at(-1)!;
    relay.signal('SIGKILL');
    await relay.exited;
    const again = await startRelay();
    expect(again.lines.join('\n')).toMatch(/left running by a relay/);
    const res = await fetch(api(`/tunnels/${tunnel.id}`), { headers: auth(secrets) });
    expect(res.status).toBe(200);
    expect(await again.stop()).toBe(0);
  });
});

describe('g2c-relay option errors', () => {
  it('exits 2 with one line naming a bad option', async () => {
    for (const [args, option] of [
      [['--listen', 'nowhere'], '--listen'],
      [['--log-level', 'loud'], '--log-level'],
      [['--tls-cert', '/nonexistent'], '--tls-key'],
      [['--bogus', '1'], '--bogus'],
      [['forward', '--relay', 'http://x', '--tunnel', 't'], '--to'],
      [['admin', 'create-org', 'a\u0001b'], '--create-org'],
      [['admin', 'create-org', 'x'.repeat(65)], '--create-org'],
    ] as const) {
      const err = await run(process.execPath, [relayBin, ...args]).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
      expect(err?.code, args.join(' ')).toBe(2);
      expect(err?.stderr.trim().split('\n')[0]).toContain(option);
    }
  });

  it('refuses an external store without G2C_MASTER_KEY', async () => {
    const err = await run(
      process.execPath,
      [
        relayBin,
        '--listen',
        '127.0.0.1:0',
        '--database-url',
        'postgres://u:p@127.0.0.1:1/x',
        '--data-dir',
        join(root, 'ext'),
      ],
      {
        env: { ...process.env, G2C_MASTER_KEY: '' },
      },
    ).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toContain('G2C_MASTER_KEY is required');
  });
});

describe('several relays on one external store', () => {
  it('start together, bootstrap once, share signing keys: a token from one is valid at the other', async () => {
    const store = await startTestPostgres();
    try {
      const env = { G2C_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
      const ports = [await freePort(), await freePort()];
      const relays = await Promise.all(
        ports.map(async (p, i) => {
          const relay = await startProcess(
            `relay-${i}`,
            relayBin,
            ['--listen', `127.0.0.1:${p}`, '--data-dir', join(root, `shared-${i}`), '--database-url', store.url()],
            { env, ready: /g2c-relay listening/, timeoutMs: 40_000 },
          );
          started.push(relay);
          return relay;
        }),
      );
      const { rows: orgs } = await store.query('select name from organizations');
      expect(orgs).toEqual([{ name: 'default' }]);
      expect((await store.query('select count(*)::int as n from signing_keys')).rows[0].n).toBe(1);
      expect(
        (await store.query('select max(version)::int as v from schema_migrations')).rows[0].v,
      ).toBeGreaterThanOrEqual(1);

      const files = await Promise.all(
        [0, 1].map((i) => readFile(join(root, `shared-${i}`, 'credentials.json'), 'utf8').catch(() => undefined)),
      );
      expect(files.filter(Boolean)).toHaveLength(1);
      const shared = JSON.parse(files.find(Boolean)!) as Secrets;

      const created = await fetch(`http://127.0.0.1:${ports[0]}/elements/api-v2/tunnels`, {
        method: 'POST',
        headers: { ...auth(shared), 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'shared' }),
      });
      const t = (await created.json()) as { id: string; token: string };
      // The other relay accepts an agent with that token (same issuer and signing key in the store).
      await new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${ports[1]}/agent/v1/connect`, 'g2c.v1', {
          headers: { authorization: `Bearer ${t.token}` },
        });
        ws.on('open', () => {
          ws.terminate();
          resolve();
        });
        ws.on('unexpected-response', (_req, res) => reject(new Error(`relay 1 answered ${res.statusCode}`)));
        ws.on('error', reject);
      });
      const seen = await fetch(`http://127.0.0.1:${ports[1]}/elements/api-v2/tunnels/${t.id}`, {
        headers: auth(shared),
      });
      expect(seen.status).toBe(200);

      const { stdout } = await run(process.execPath, [
        relayBin,
        'admin',
        'create-org',
        'ext',
        '--database-url',
        store.url(),
      ]);
      expect(JSON.parse(stdout).organization).toBe('ext');
      for (const relay of relays) expect(await relay.stop()).toBe(0);
    } finally {
      await store.stop();
    }
  });
});
