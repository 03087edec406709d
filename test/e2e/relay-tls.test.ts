// g2c-relay over TLS: --tls-cert/--tls-key serve HTTPS and WSS on one port; the agent and
// `forward` trust the private CA with --ca; psql reaches the private database through it.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort } from '@g2c/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';
import { selfSignedCertificate } from '../helpers/tls.js';

const run = promisify(execFile);
let target: TestPostgres;
let root: string;
let port: number;
let ca: Buffer;
const processes: RunningProcess[] = [];

function httpsJson(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${port}${path}`,
      { method: init.method ?? 'GET', headers: init.headers, ca },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

beforeAll(async () => {
  target = await startTestPostgres();
  root = await mkdtemp(join(tmpdir(), 'g2c-tls-e2e-'));
  await chmod(root, 0o711);
  await selfSignedCertificate({ certFile: join(root, 'cert.pem'), keyFile: join(root, 'key.pem') });
  ca = await readFile(join(root, 'cert.pem'));
  port = await freePort();
  processes.push(
    await startProcess(
      'relay',
      relayBin,
      [
        '--listen',
        `127.0.0.1:${port}`,
        '--data-dir',
        join(root, 'data'),
        '--tls-cert',
        join(root, 'cert.pem'),
        '--tls-key',
        join(root, 'key.pem'),
      ],
      { ready: /g2c-relay listening on https:/, timeoutMs: 40_000 },
    ),
  );
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(processes.map((p) => p.stop()));
  await target?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('relay over TLS', () => {
  it('serves the API, agents and forward over HTTPS/WSS with a private CA', async () => {
    expect((await httpsJson('/healthz')).body).toEqual({ status: 'ok' });
    const secrets = JSON.parse(await readFile(join(root, 'data', 'credentials.json'), 'utf8'));
    const authorization = `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}`;
    const created = await httpsJson('/elements/api-v2/tunnels', {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'tls' }),
    });
    expect(created.status).toBe(200);
    await writeFile(join(root, 'token'), String(created.body.token), { mode: 0o600 });

    processes.push(
      await startProcess(
        'agent',
        agentBin,
        [
          '--relay',
          `wss://127.0.0.1:${port}`,
          '--token-file',
          join(root, 'token'),
          '--ca',
          join(root, 'cert.pem'),
          '--allow',
          `127.0.0.1:${target.port}`,
        ],
        { ready: /connected to the relay/ },
      ),
    );
    const forwardPort = await freePort();
    await writeFile(join(root, 'creds.json'), JSON.stringify(secrets), { mode: 0o600 });
    processes.push(
      await startProcess(
        'forward',
        relayBin,
        [
          'forward',
          '--relay',
          `https://127.0.0.1:${port}`,
          '--tunnel',
          'tls',
          '--to',
          `127.0.0.1:${target.port}`,
          '--listen',
          `127.0.0.1:${forwardPort}`,
          '--credentials',
          join(root, 'creds.json'),
          '--ca',
          join(root, 'cert.pem'),
        ],
        { ready: /forwarding/ },
      ),
    );
    const url = `postgres://${target.user}:${encodeURIComponent(target.password)}@127.0.0.1:${forwardPort}/postgres`;
    let result: { stdout: string } | undefined;
    for (let i = 0; i < 50 && !result; i++) {
      result = await run('psql', [url, '-Atc', 'select 40 + 2']).catch(async () => {
        await sleep(100);
        return undefined;
      });
    }
    expect(result?.stdout.trim()).toBe('42');
  });

  it('forward without the CA refuses to start, saying why', async () => {
    const secretsFile = join(root, 'creds.json');
    const failed = await run(process.execPath, [
      relayBin,
      'forward',
      '--relay',
      `https://127.0.0.1:${port}`,
      '--tunnel',
      'tls',
      '--to',
      '127.0.0.1:5432',
      '--listen',
      '127.0.0.1:0',
      '--credentials',
      secretsFile,
    ]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toMatch(/cannot reach the relay.*(certificate|self-signed)/i);
  });
});
