// The compose stack's `setup` job (docker/setup.mjs) against the real relay and agent, without
// Docker (CI has no engine): the relay on an external store with a master key, as in compose;
// the agent started once setup has written its token file, as compose's agent entrypoint does.
// setup must create the tunnel and the ground2cloud instance, prove a call through the tunnel,
// print the curl to paste, and be safe to run again.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@g2c/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, relayBin, startProcess } from '../helpers/processes.js';

const setupScript = fileURLToPath(new URL('../../docker/setup.mjs', import.meta.url));

describe('compose setup job (docker/setup.mjs)', () => {
  let dir: string;
  let store: TestPostgres;
  let privateDb: TestPostgres;
  let relay: RunningProcess;
  let agent: RunningProcess | undefined;
  let agents = 0;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'g2c-compose-setup-'));
    await chmod(dir, 0o711);
    [store, privateDb] = await Promise.all([startTestPostgres(), startTestPostgres()]);
    // What docker/private-db/ does at the database's first start: the CRM and the `app` role.
    await privateDb.createDatabase('crm');
    await privateDb.query(
      `create role app login password 'crm-app-test';
       grant usage on schema public to app;
       alter default privileges in schema public grant select, insert, update, delete on tables to app;
       alter default privileges in schema public grant usage, select on sequences to app;`,
      'crm',
    );
    await privateDb.loadFixture('crm.sql', 'crm');
    await store.createDatabase('g2c');
    const port = await freePort();
    relay = await startProcess(
      'relay',
      relayBin,
      ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'relay')],
      {
        env: { G2C_DATABASE_URL: store.url('g2c'), G2C_MASTER_KEY: randomBytes(32).toString('base64') },
        ready: /g2c-relay listening/,
        timeoutMs: 40_000,
      },
    );
    env = {
      G2C_RELAY_URL: `http://127.0.0.1:${port}`,
      G2C_PUBLIC_URL: `http://127.0.0.1:${port}`,
      G2C_CREDENTIALS_FILE: join(dir, 'relay', 'credentials.json'),
      G2C_TOKEN_FILE: join(dir, 'agent-token', 'token'),
      G2C_SETUP_DIR: join(dir, 'setup'),
      CRM_DB_HOST: `127.0.0.1:${privateDb.port}`,
      CRM_DB_NAME: 'crm',
      CRM_APP_PASSWORD: 'crm-app-test',
    };
  });

  afterAll(async () => {
    await agent?.stop();
    await relay?.stop();
    await Promise.allSettled([store?.stop(), privateDb?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Runs setup. Meanwhile, like compose's agent (it waits for the token file, and its restart
   * policy starts it again whenever it exits), an agent runs whenever the token file exists.
   */
  async function runSetup(): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [setupScript], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const kill = setTimeout(() => child.kill('SIGKILL'), 50_000);
    try {
      for (let i = 0; i < 500 && child.exitCode === null; i++) {
        if (existsSync(env.G2C_TOKEN_FILE!) && (!agent || agent.child.exitCode !== null)) {
          agents += 1;
          agent = await startProcess('agent', agentBin, [
            '--relay',
            env.G2C_RELAY_URL!.replace('http', 'ws'),
            '--token-file',
            env.G2C_TOKEN_FILE!,
            '--allow',
            env.CRM_DB_HOST!,
          ]);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      return { code: await exited, out };
    } finally {
      clearTimeout(kill);
    }
  }

  it('creates the tunnel, hands the token over, creates the instance and proves it', async () => {
    const { code, out } = await runSetup();
    expect(code, out).toBe(0);
    expect(out).toMatch(/created tunnel onprem \(\S+\); token written to/);
    expect(out).toMatch(/created ground2cloud instance crm/);
    expect(out).toMatch(
      /GET \/contacts\?pageSize=3 through the tunnel -> 3 rows:\n {2}1 {2}Alan Turing <contact1@example\.com>/,
    );
    expect(out).toMatch(/export G2C_AUTH='User \S+, Organization \S+, Element \S+'/);
    // The token file is private to the agent's user.
    const { mode } = await stat(env.G2C_TOKEN_FILE!);
    expect(mode & 0o777).toBe(0o600);
    expect((await readFile(env.G2C_TOKEN_FILE!, 'utf8')).trim()).toMatch(/^ey/);

    // The printed curl works as written.
    const auth = /export G2C_AUTH='([^']+)'/.exec(out)![1]!;
    const url = /curl -s -H "Authorization: \$G2C_AUTH" '([^']+)'/.exec(out)![1]!;
    const response = await fetch(url, { headers: { authorization: auth } });
    expect(response.status).toBe(200);
    const rows = (await response.json()) as Array<{ status: string }>;
    expect(rows.length).toBe(5);
    expect(rows.every((r) => r.status === 'customer')).toBe(true);
  });

  it('runs again harmlessly: reuses the tunnel, its token and the instance', async () => {
    const token = await readFile(env.G2C_TOKEN_FILE!, 'utf8');
    const { code, out } = await runSetup();
    expect(code, out).toBe(0);
    expect(out).toMatch(/tunnel onprem \(\S+\) and its token already exist/);
    expect(out).toMatch(/instance crm \(\S+\) already exists/);
    expect(out).toMatch(/-> 3 rows/);
    expect(await readFile(env.G2C_TOKEN_FILE!, 'utf8')).toBe(token);
  });

  it('rotates the token when the token file was lost, and the agent goes on with the new one', async () => {
    const old = await readFile(env.G2C_TOKEN_FILE!, 'utf8');
    await rm(env.G2C_TOKEN_FILE!);
    const { code, out } = await runSetup();
    expect(code, out).toBe(0);
    expect(out).toMatch(/tunnel onprem exists; rotated its token into/);
    expect(await readFile(env.G2C_TOKEN_FILE!, 'utf8')).not.toBe(old);
    // The agent re-reads its token file when it reconnects; one that raced ahead with the old
    // token exits (code 3) and compose's restart policy starts it again.
    expect(agents).toBeLessThanOrEqual(2);
    expect(out).toMatch(/-> 3 rows/);
  });
});
