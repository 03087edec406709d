// The agent endpoint's door (DESIGN 4.1): an HTTP upgrade on AGENT_PATH is answered here
// before any WebSocket exists. In order: rate limit per remote address (429), WebSocket
// upgrade and subprotocol (400/426), then the token (401 with {code,message}). Only a caller
// that passed all of them gets a WebSocket; a failed one costs a short HTTP answer on the raw
// socket and nothing else (no WebSocket, no session, no presence row).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseAgentHeader, SUBPROTOCOL } from '@g2c/tunnel';
import type { Logger } from 'pino';
import type { WebSocket, WebSocketServer } from 'ws';
import type { FailureRateLimiter } from './rate-limit.js';

export interface VerifiedAgent {
  tunnelId: string;
  orgId: string;
  jti: string;
  version: string;
  hostname: string;
  remoteAddress: string;
}

export interface UpgradeContext {
  tokens: { verify(token: string | undefined): Promise<{ tunnelId: string; orgId: string; jti: string }> };
  limiter: FailureRateLimiter;
  /** Take the caller's address from X-Forwarded-For (the relay sits behind a proxy). */
  trustProxy?: boolean;
  /** A `noServer` WebSocketServer that accepts only SUBPROTOCOL. */
  wss: WebSocketServer;
  logger: Logger;
  /** Whether one more agent session of this tunnel may be accepted (a limit per tunnel). */
  admit(tunnelId: string): boolean;
  /**
   * Called with the accepted WebSocket; `socket` is the raw connection (byte counters) and
   * `token` the bearer token it presented (for a re-check, never to be kept or logged).
   */
  onAgent(ws: WebSocket, agent: VerifiedAgent, socket: Duplex, token: string): void;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

/** Writes a JSON error response on the raw socket and closes it. */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed) return;
  const requestId = randomUUID();
  const body = JSON.stringify({ requestId, message, code });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `elements-request-id: ${requestId}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // A caller that does not read its answer must not hold the socket open.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : '';
}

/**
 * The caller's address; behind a trusted proxy the last X-Forwarded-For entry, which is the
 * one that proxy appended. Earlier entries come from the caller and can say anything: taking
 * the first one would let a caller dodge the failure rate limit with a new address per try,
 * or get an agent's own address rate-limited.
 */
export function remoteAddressOf(req: IncomingMessage, trustProxy = false): string {
  let address = req.socket.remoteAddress ?? 'unknown';
  const forwarded = req.headers['x-forwarded-for'];
  if (trustProxy && typeof forwarded === 'string') {
    const last = forwarded.split(',').at(-1)!.trim();
    if (last) address = last.slice(0, 64);
  }
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

export async function handleAgentUpgrade(
  ctx: UpgradeContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const remoteAddress = remoteAddressOf(req, ctx.trustProxy);
  const log = ctx.logger.child({ remoteAddress });
  socket.on('error', () => {}); // a caller that goes away mid-answer is not our error

  const retryAfter = ctx.limiter.retryAfter(remoteAddress);
  if (retryAfter > 0) {
    rejectUpgrade(
      socket,
      429,
      'rate_limited',
      `too many failed agent connections from ${remoteAddress}: retry in ${retryAfter} s`,
      { 'Retry-After': String(retryAfter) },
    );
    return;
  }

  if (req.method !== 'GET' || req.headers.upgrade?.toLowerCase() !== 'websocket') {
    ctx.limiter.fail(remoteAddress);
    rejectUpgrade(socket, 400, 'bad_request', 'the agent endpoint takes only a WebSocket upgrade (GET)');
    return;
  }
  const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  if (!protocols.includes(SUBPROTOCOL)) {
    ctx.limiter.fail(remoteAddress);
    log.warn({ protocols }, 'agent refused: unsupported protocol version');
    rejectUpgrade(
      socket,
      426,
      'unsupported_protocol',
      `this relay speaks WebSocket subprotocol ${SUBPROTOCOL}; upgrade the agent (or the relay) so that both match`,
      { Upgrade: 'websocket', 'Sec-WebSocket-Protocol': SUBPROTOCOL },
    );
    return;
  }

  let verified: { tunnelId: string; orgId: string; jti: string };
  const token = bearerToken(req);
  try {
    verified = await ctx.tokens.verify(token);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'token_missing' || e.code === 'token_invalid' || e.code === 'token_revoked') {
      ctx.limiter.fail(remoteAddress);
      log.warn({ code: e.code }, `agent refused: ${e.message}`);
      rejectUpgrade(socket, 401, e.code, e.message);
    } else {
      log.error({ err: e.message }, 'agent token check failed (store unavailable?)');
      rejectUpgrade(socket, 503, 'unavailable', 'the relay cannot check tokens right now; the agent will retry', {
        'Retry-After': '5',
      });
    }
    return;
  }
  if (socket.destroyed) return;
  ctx.limiter.succeed(remoteAddress);
  if (!ctx.admit(verified.tunnelId)) {
    log.warn({ tunnelId: verified.tunnelId }, 'agent refused: too many agent sessions on this tunnel');
    rejectUpgrade(
      socket,
      429,
      'too_many_agents',
      'this tunnel already has the maximum number of agent sessions; stale ones expire within the keepalive timeout',
      { 'Retry-After': '10' },
    );
    return;
  }
  const { version, hostname } = parseAgentHeader(req.headers['g2c-agent'] as string | undefined);
  ctx.wss.handleUpgrade(req, socket, head, (ws) => {
    ctx.onAgent(ws, { ...verified, version, hostname, remoteAddress }, socket, token ?? '');
  });
}
