// The demo's stack, started in order with each step printed: the private database, the relay,
// the platform credentials, a tunnel, the agent, and a ground2cloud instance. What a second
// start can reuse (tunnel, instance, tokens, the private database's port) is kept in
// <data-dir>/demo.json; the servers keep their own data beside it.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@g2c/relay';
import { ApiClient } from './api.js';
import { type Child, startChild, waitUntil } from './children.js';
import { heading, step } from './print.js';
import { type PrivateDatabase, startPrivateDatabase } from './private-db.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const relayBin = join(root, 'relay/bin/g2c-relay.js');
const agentBin = join(root, 'agent/bin/g2c-agent.js');
const crmSql = join(root, 'test/fixtures/crm.sql');

/** What a second start reuses, beside the servers' own data. */
interface State {
  privatePort?: number;
  tunnelId?: string;
  instanceId?: string;
  elementToken?: string;
}

export interface Running {
  db?: PrivateDatabase;
  relay?: Child;
  agent?: Child;
}

export interface Ready {
  base: string;
  platform: ApiClient;
  element: ApiClient;
  db: PrivateDatabase;
  tunnelName: string;
  instanceId: string;
}

export async function startStack(dataDir: string, port: number, running: Running): Promise<Ready> {
  heading('starting');
  const statePath = join(dataDir, 'demo.json');
  const state: State = existsSync(statePath) ? JSON.parse(await readFile(statePath, 'utf8')) : {};
  const save = () => writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  const logs = join(dataDir, 'logs');
  await mkdir(logs, { recursive: true });

  const db = await step(
    'private database (embedded PostgreSQL with the CRM)',
    async () => {
      const wanted = state.privatePort && (await isFree(state.privatePort)) ? state.privatePort : undefined;
      running.db = await startPrivateDatabase(join(dataDir, 'private-db'), crmSql, wanted);
      return running.db;
    },
    (d) => `127.0.0.1:${d.server.port}, database ${d.database}, ${d.seeded ? 'seeded now' : 'reused'}`,
  );
  state.privatePort = db.server.port;
  await save();

  const relayPort = port === 0 || !(await isFree(port)) ? await freePort() : port;
  const base = `http://127.0.0.1:${relayPort}`;
  await step(
    'relay (embedded store)',
    async () => {
      running.relay = startChild(
        'relay',
        relayBin,
        ['serve', '--listen', `127.0.0.1:${relayPort}`, '--data-dir', join(dataDir, 'relay'), '--public-url', base],
        join(logs, 'relay.log'),
      );
      await waitUntil(running.relay, 'the relay answers /readyz', async () =>
        (await fetch(`${base}/readyz`)).ok ? true : undefined,
      );
    },
    () =>
      `${base}${relayPort !== port && port !== 0 ? ` (port ${port} was taken)` : ''}, log ${join(logs, 'relay.log')}`,
  );

  const platform = await step(
    'platform credentials (organization default, user admin)',
    async () => {
      const file = join(dataDir, 'relay', 'credentials.json');
      const credentials = await waitUntil(running.relay!, `${file} exists`, async () =>
        existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, string>) : undefined,
      );
      return new ApiClient(
        `${base}/elements/api-v2`,
        `User ${credentials.userSecret}, Organization ${credentials.organizationSecret}`,
      );
    },
    () => `from ${join(dataDir, 'relay', 'credentials.json')}`,
  );

  const tokenFile = join(dataDir, 'agent', 'token');
  const tunnelName = 'demo';
  const tunnel = await step(
    `tunnel "${tunnelName}"`,
    async () => {
      if (state.tunnelId && existsSync(tokenFile)) {
        const found = await platform.call('GET', `/tunnels/${state.tunnelId}`);
        if (found.status === 200) return { id: state.tunnelId, reused: true };
      }
      // A tunnel of that name left by a start whose state was lost: its token is gone; replace it.
      const list = await platform.expect(200, 'GET', '/tunnels');
      for (const t of list.body as Array<{ id: string; name: string }>) {
        if (t.name === tunnelName) await platform.expect([200, 204], 'DELETE', `/tunnels/${t.id}`).catch(() => {});
      }
      const created = await platform.expect(200, 'POST', '/tunnels', { name: tunnelName });
      const { id, token } = created.body as { id: string; token: string };
      await mkdir(dirname(tokenFile), { recursive: true, mode: 0o700 });
      await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
      state.tunnelId = id;
      state.instanceId = undefined;
      await save();
      return { id, reused: false };
    },
    (t) => `${t.id}, ${t.reused ? 'reused' : 'created'}; token in ${tokenFile}`,
  );

  const target = `127.0.0.1:${db.server.port}`;
  await step(
    `agent (allowed to reach only ${target})`,
    async () => {
      running.agent = startChild(
        'agent',
        agentBin,
        ['--relay', base.replace(/^http/, 'ws'), '--token-file', tokenFile, '--allow', target, '--drain-timeout', '2s'],
        join(logs, 'agent.log'),
      );
      await waitUntil(running.agent, 'the tunnel is online', async () => {
        const { body } = await platform.expect(200, 'GET', `/tunnels/${tunnel.id}`);
        return (body as { status: string }).status === 'online' ? true : undefined;
      });
    },
    () => `dialled out to ${base.replace(/^http/, 'ws')}; log ${join(logs, 'agent.log')}`,
  );

  const configuration = {
    'db.host': target,
    'db.name': db.database,
    username: db.user,
    password: db.password,
    'connection.type': 'ground2cloud',
    'ground2cloud.tunnel': tunnel.id,
  };
  const instance = await step(
    'ground2cloud instance "crm"',
    async () => {
      if (state.instanceId && state.elementToken) {
        const found = await platform.call('GET', `/instances/${state.instanceId}`);
        if (found.status === 200) {
          // The private database may have moved to another port since the last start.
          await platform.expect(200, 'PATCH', `/instances/${state.instanceId}`, { configuration });
          return { id: state.instanceId, token: state.elementToken, reused: true };
        }
      }
      const created = await platform.expect(200, 'POST', '/instances', {
        element: { key: 'postgresql' },
        name: 'crm',
        tags: ['demo'],
        configuration,
      });
      const { id, token } = created.body as { id: string; token: string };
      state.instanceId = String(id);
      state.elementToken = token;
      await save();
      return { id: String(id), token, reused: false };
    },
    (i) => `${i.id}, ${i.reused ? 'reused' : 'created'}; db.host ${target} as the agent sees it`,
  );

  return {
    base,
    platform,
    element: platform.with(`${platform.authorization}, Element ${instance.token}`),
    db,
    tunnelName,
    instanceId: instance.id,
  };
}

export async function stopEverything(running: Running): Promise<void> {
  // Agent first (it drains in 2 s), then the relay, then the database they both used.
  await running.agent?.stop().catch(() => {});
  await running.relay?.stop().catch(() => {});
  await running.db?.server.stop().catch(() => {});
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}
