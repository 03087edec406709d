// Listens (HTTP, or HTTPS with --tls-cert/--tls-key) and closes. WebSocket upgrades bypass
// fastify: AGENT_PATH goes to the hub (which checks the token before accepting), the forward
// path to the forward endpoint, anything else is a JSON 404.
//
// Graceful close, in this order: stop accepting, close the agent sessions (hub) and forwarded
// connections, wait for open requests and close the engine's pools (fastify onClose hooks),
// forget this node's presence rows, then close the store (and stop the embedded PostgreSQL).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AGENT_PATH } from '@g2c/tunnel';
import type { FastifyInstance } from 'fastify';
import { type AppDeps, buildApp } from './app.js';
import { ApiError } from './errors.js';
import type { Hub } from './hub/hub.js';
import { FORWARD_PATH, ForwardEndpoint, rejectUpgrade } from './routes/forward.js';

export interface ServerDeps extends AppDeps {
  hub: Hub;
}

export interface RelayServer {
  app: FastifyInstance;
  /** Base URL actually listened on, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  forward: ForwardEndpoint;
  close(): Promise<void>;
}

/** Resolves with `work`, or rejects once `ms` have passed without it settling. */
async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startServer(deps: ServerDeps): Promise<RelayServer> {
  const { config, logger, hub, store } = deps;
  const app = buildApp(deps);
  const forward = new ForwardEndpoint(deps);
  let closing = false;

  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (closing) {
      rejectUpgrade(
        socket,
        new ApiError('tunnel_offline', 'the relay is shutting down: retry shortly', undefined, {
          headers: { 'Retry-After': '2' },
        }),
        randomUUID(),
      );
    } else if (path === AGENT_PATH) {
      hub.handleUpgrade(req, socket, head);
    } else if (FORWARD_PATH.test(path)) {
      forward.handleUpgrade(req, socket, head);
    } else {
      socket.on('error', () => {});
      rejectUpgrade(socket, new ApiError('not_found', `no WebSocket endpoint at ${path}`), randomUUID());
    }
  });

  await app.listen({ host: config.listen.host, port: config.listen.port });
  const { port } = app.server.address() as AddressInfo;
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host;
  const url = `${config.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      const started = Date.now();
      const appClosed = app.close(); // stops accepting at once, then waits for open requests
      const force = setTimeout(() => {
        logger.warn({ graceMs: config.shutdownGraceMs }, 'shutdown grace period over: cutting open connections');
        app.server.closeAllConnections();
      }, config.shutdownGraceMs);
      force.unref();
      // Each step runs even if an earlier one failed: the store must be closed last in any case.
      const step = async (what: string, work: () => unknown) => {
        try {
          await work();
        } catch (err) {
          logger.warn({ err: (err as Error).message }, `shutdown: ${what} failed`);
        }
      };
      await step('closing agent sessions', () => hub.close());
      await step('closing forwarded connections', () => forward.close());
      await step('closing the HTTP server and pools', () => appClosed);
      clearTimeout(force);
      // The store may be the thing that stopped answering: bound these too (a relay left
      // running is worse than presence rows that the next start clears, or an embedded
      // PostgreSQL that the next start stops).
      await step('clearing presence rows', () =>
        within(config.shutdownGraceMs, store.presence.clearNode(config.nodeId)),
      );
      await step('closing the store', () => within(config.shutdownGraceMs, store.close()));
      logger.info({ ms: Date.now() - started }, 'relay stopped');
    })();
    return closed;
  };

  return { app, url, port, forward, close };
}
