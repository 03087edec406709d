// The forward endpoint (DESIGN 5.3): `GET /elements/api-v2/tunnels/{id}/forward?host=&port=`
// upgraded to a WebSocket that carries one raw TCP stream through the tunnel; `g2c-relay
// forward` opens one per accepted connection. Authenticated with User + Organization secrets.
//
// The tunnel stream is opened BEFORE the upgrade is accepted, so that every failure (bad
// credentials, unknown tunnel, agent offline, target refused or not allowed) reaches the
// client as an HTTP status with the JSON error body and its stable code.

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { WebSocketServer } from 'ws';
import { API_BASE, type AppDeps, REQUEST_ID_HEADER, toApiError } from '../app.js';
import { authenticate } from '../auth/credentials.js';
import { ApiError, ERRORS, type ErrorCode } from '../errors.js';
import { bridgeWebSocket, type WebSocketBridge } from '../forward.js';

export const FORWARD_PATH = /^\/elements\/api-v2\/tunnels\/([^/]+)\/forward$/;

/** Writes an HTTP error with the JSON body on a socket that was never upgraded, then closes it. */
export function rejectUpgrade(socket: Duplex, error: ApiError, requestId: string): void {
  const body = JSON.stringify(error.toBody(requestId));
  const headers = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `${REQUEST_ID_HEADER}: ${requestId}`,
    ...Object.entries(error.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    'Connection: close',
  ];
  if (socket.writable) socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

function parseTarget(url: URL): { host: string; port: number } {
  const host = url.searchParams.get('host') ?? '';
  const portText = url.searchParams.get('port') ?? '';
  const port = Number(portText);
  if (!host) throw new ApiError('invalid_parameter', 'host: the target host is required');
  if (host.length > 255) throw new ApiError('invalid_parameter', 'host: at most 255 characters');
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw new ApiError('invalid_parameter', 'port: a TCP port between 1 and 65535 is required');
  }
  return { host, port };
}

/** An error from hub.openStream as an API error (the agent's code, or tunnel_offline). */
function openError(err: unknown, tunnelName: string): ApiError {
  const code = (err as { code?: string }).code;
  const message = (err as Error).message;
  if (code === 'tunnel_offline') {
    return new ApiError(
      'tunnel_offline',
      `tunnel "${tunnelName}" has no agent connected: start g2c-agent with its token`,
      undefined,
      { headers: { 'Retry-After': '5' } },
    );
  }
  if (code && code in ERRORS && ERRORS[code as ErrorCode] === 502) return new ApiError(code as ErrorCode, message);
  return new ApiError('bad_gateway', `the tunnel could not open the stream: ${message}`);
}

export class ForwardEndpoint {
  readonly #deps: AppDeps;
  readonly #wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  readonly #open = new Set<WebSocketBridge>();

  constructor(deps: AppDeps) {
    this.#deps = deps;
  }

  get activeCount(): number {
    return this.#open.size;
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const requestId = randomUUID();
    const log = this.#deps.logger.child({ requestId });
    socket.on('error', () => {});
    this.#accept(req, socket, head, requestId).catch((err) => {
      const error = toApiError(err);
      if (error.code === 'internal_error') log.error({ err }, 'forward failed');
      else log.info({ code: error.code, status: error.status }, `forward refused: ${error.message}`);
      rejectUpgrade(socket, error, requestId);
    });
  }

  async #accept(req: IncomingMessage, socket: Duplex, head: Buffer, requestId: string): Promise<void> {
    const { store, hub, logger } = this.#deps;
    const url = new URL(req.url ?? '/', 'http://relay');
    const match = FORWARD_PATH.exec(url.pathname);
    if (!match) throw new ApiError('not_found', `no such route: GET ${url.pathname}`);
    const { orgId } = await authenticate(req, store);
    let idOrName: string;
    try {
      idOrName = decodeURIComponent(match[1]!);
    } catch {
      throw new ApiError('not_found', `no tunnel "${match[1]}" in this organization (malformed percent-encoding)`);
    }
    const tunnel = await store.tunnels.find(orgId, idOrName);
    if (!tunnel) throw new ApiError('not_found', `no tunnel "${idOrName}" in this organization`);
    const { host, port } = parseTarget(url);

    let stream: Duplex;
    try {
      stream = await hub.openStream(tunnel.id, host, port);
    } catch (err) {
      throw openError(err, tunnel.name);
    }
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const log = logger.child({ requestId, tunnelId: tunnel.id, target: `${host}:${port}` });
      const started = Date.now();
      const bridge = bridgeWebSocket(ws, stream, (err) => {
        this.#open.delete(bridge);
        log.info({ ms: Date.now() - started, error: err?.message }, 'forward closed');
      });
      this.#open.add(bridge);
      log.info('forward opened');
    });
  }

  /** Cuts every forwarded connection (shutdown). */
  close(): void {
    for (const bridge of this.#open) bridge.destroy();
    this.#open.clear();
    this.#wss.close();
  }
}

/** A plain GET (no upgrade) on the forward path explains itself instead of 404. */
export function forwardRoutes(app: FastifyInstance, _deps: AppDeps): void {
  app.get(`${API_BASE}/tunnels/:id/forward`, async () => {
    throw new ApiError(
      'bad_request',
      'this endpoint is a WebSocket: use g2c-relay forward (or send Connection: Upgrade, Upgrade: websocket)',
      undefined,
      { status: 426 },
    );
  });
}
