// Shared set-up of the tunnel end-to-end tests: the relay's tunnel side running in the test
// process (the real Hub, the real TokenService over a real store in the test PostgreSQL, a
// real HTTP server on loopback) and real g2c-agent processes connecting to it. Keeping the hub
// in-process lets the tests use pg exactly as the engine does (tunnelSocketFactory) and look
// at the hub's counters; the agent is always the real binary.
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Session } from '@g2c/mux';
import {
  AGENT_PATH,
  encodeOpenHeader,
  parseOpenRequest,
  readOpenHeader,
  SUBPROTOCOL,
  websocketDuplex,
} from '@g2c/tunnel';
import pg from 'pg';
import { pino } from 'pino';
import WebSocket from 'ws';
import { MasterKey } from '../../relay/src/auth/crypto.js';
import { TokenService } from '../../relay/src/auth/tokens.js';
import { Hub, type HubOptions } from '../../relay/src/hub/hub.js';
import { tunnelSocketFactory } from '../../relay/src/hub/pg-socket.js';
import { createStore, type Store } from '../../relay/src/store/db.js';
import { migrate } from '../../relay/src/store/migrations.js';
import type { TestPostgres } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, startProcess } from '../helpers/processes.js';

export interface TestRelay {
  hub: Hub;
  store: Store;
  tokens: TokenService;
  url: string;
  orgId: string;
  /** Creates a tunnel and writes its token to a 0600 file in `dir`. */
  createTunnel(name: string): Promise<{ id: string; token: string; tokenFile: string }>;
  /** pg connection settings for `database` on `target` through the tunnel. */
  pgConfig(tunnelId: string, database?: string, extra?: pg.ClientConfig): pg.ClientConfig;
  close(): Promise<void>;
}

let relays = 0;

export async function startTestRelay(
  target: TestPostgres,
  dir: string,
  hubOptions: Partial<HubOptions> = {},
  /** Serve HTTPS/WSS with this PEM certificate and key. */
  tls?: { cert: string; key: string },
): Promise<TestRelay> {
  const storeDb = `relay_store_${process.pid}_${relays++}`;
  await target.createDatabase(storeDb);
  const pool = new pg.Pool({ connectionString: target.url(storeDb), max: 5 });
  const store = createStore(pool);
  await migrate(pool);
  const tokens = await TokenService.create(store, MasterKey.generate());
  const org = await store.orgs.create(`e2e-${process.pid}`);
  const logger = pino({ level: process.env.G2C_TEST_VERBOSE ? 'debug' : 'silent' });
  const hub = new Hub({ tokens, presence: store.presence, logger, nodeId: 'e2e', ...hubOptions });
  const notFound = (_req: unknown, res: { writeHead(n: number): { end(): void } }) => res.writeHead(404).end();
  const server: Server = tls ? createHttpsServer(tls, notFound) : createServer(notFound);
  server.on('upgrade', (req, socket, head) => {
    if (req.url === AGENT_PATH) hub.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let n = 0;
  return {
    hub,
    store,
    tokens,
    url,
    orgId: org.organization.id,
    createTunnel: async (name) => {
      const tunnel = await store.tunnels.create(org.organization.id, name, 'unissued');
      const token = await tokens.issue(tunnel);
      const tokenFile = join(dir, `token-${name}-${n++}`);
      await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
      return { id: tunnel.id, token, tokenFile };
    },
    pgConfig: (tunnelId, database = 'postgres', extra = {}) => ({
      host: '127.0.0.1',
      port: target.port,
      user: target.user,
      password: target.password,
      database,
      stream: tunnelSocketFactory(hub, tunnelId),
      ...extra,
    }),
    close: async () => {
      await hub.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await store.close();
    },
  };
}

export interface AgentOptions {
  allow: string[];
  /** Extra flags (e.g. short keepalive settings). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Wait until the agent says it is connected (default true). */
  waitConnected?: boolean;
}

export async function startAgent(
  name: string,
  relayUrl: string,
  tokenFile: string,
  options: AgentOptions,
): Promise<RunningProcess> {
  const args = ['--relay', relayUrl, '--token-file', tokenFile, ...options.allow.flatMap((a) => ['--allow', a])];
  return startProcess(name, agentBin, [...args, ...(options.args ?? [])], {
    env: options.env,
    ready: options.waitConnected === false ? undefined : /connected to the relay/,
  });
}

/** Polls until `check` holds; throws after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not true after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * A protocol-level agent in the test process (real WebSocket, real upgrade and token, real
 * mux session, answers opens by dialing 127.0.0.1), for what the binary cannot do quickly:
 * hundreds of reconnects in a row (the binary backs off, by design).
 */
export async function connectMiniAgent(relayUrl: string, token: string): Promise<{ ws: WebSocket; session: Session }> {
  const ws = new WebSocket(`${relayUrl.replace(/^http/, 'ws')}${AGENT_PATH}`, [SUBPROTOCOL], {
    headers: { authorization: `Bearer ${token}`, 'g2c-agent': '0.0.0-test; host=mini' },
  });
  const duplex = await new Promise<Duplex>((resolve, reject) => {
    ws.once('open', () => resolve(websocketDuplex(ws)));
    ws.once('error', reject);
  });
  const session = new Session(duplex, { client: false });
  session.on('error', () => {});
  session.on('stream', async (stream: Duplex) => {
    stream.on('error', () => {});
    try {
      const request = parseOpenRequest(await readOpenHeader(stream));
      const socket = tcpConnect({ host: '127.0.0.1', port: request.port, allowHalfOpen: true });
      socket.on('error', () => stream.destroy());
      socket.once('connect', () => {
        stream.write(encodeOpenHeader({ ok: true }));
        stream.pipe(socket);
        socket.pipe(stream);
      });
    } catch {
      stream.destroy();
    }
  });
  return { ws, session };
}
