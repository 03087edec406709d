// One connection attempt to the relay: the WebSocket upgrade with the token, the G2C-Agent
// header and the subprotocol, TLS always verified (--ca adds roots), optionally through an
// HTTP proxy, and the relay's refusals (401/426/429/503 with their JSON code) turned into
// ConnectErrors on which the lifecycle (agent.ts) decides to retry or to stop.
import type { Duplex } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { AGENT_HEADER, AGENT_VERSION, formatAgentHeader, SUBPROTOCOL, websocketDuplex } from '@g2c/tunnel';
import WebSocket from 'ws';
import type { AgentConfig } from './config.js';
import { proxyAgent } from './proxy.js';

/** Why the connection attempt failed, as told by the relay or the network. */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  constructor(
    message: string,
    /** The relay's JSON `code` (token_revoked, token_invalid, ...) or a network error code. */
    readonly code: string,
    /** HTTP status of a refused upgrade. */
    readonly status?: number,
    /** Seconds from a Retry-After header. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/** True when no plaintext intermediary can see the WebSocket frames (TLS, or loopback). */
export function maskingUseless(connectUrl: string): boolean {
  const url = new URL(connectUrl);
  if (url.protocol === 'wss:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * One connection attempt: resolves with an open WebSocket that speaks our subprotocol and
 * its duplex, created in the tick of 'open' so that no early frame of the relay is lost.
 * Rejects with a ConnectError; aborting the signal abandons the attempt.
 */
export function connectToRelay(
  config: AgentConfig,
  identity: { token: string; hostname: string },
  signal: AbortSignal,
): Promise<{ ws: WebSocket; duplex: Duplex }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(config.connectUrl, [SUBPROTOCOL], {
      headers: {
        Authorization: `Bearer ${identity.token}`,
        [AGENT_HEADER]: formatAgentHeader(AGENT_VERSION, identity.hostname),
      },
      // TLS is always verified: rejectUnauthorized is explicit so that
      // NODE_TLS_REJECT_UNAUTHORIZED cannot turn it off; --ca adds to the public roots.
      rejectUnauthorized: true,
      ca: config.ca ? [...rootCertificates, config.ca] : undefined,
      handshakeTimeout: 15_000,
      perMessageDeflate: false,
      followRedirects: false,
      // Masking protects plaintext intermediaries (proxies) from crafted payloads. Inside
      // TLS, or on loopback, there is no such intermediary: an all-zero mask, which ws skips
      // on both ends (profiled: masking and unmasking took a quarter of the agent's CPU and
      // a sixth of the relay's on bulk reads). Plain ws:// over a network keeps random masks.
      generateMask:
        maskingUseless(config.connectUrl) && (!config.proxy || config.connectUrl.startsWith('wss:'))
          ? (mask: Buffer) => mask.fill(0)
          : undefined,
      agent: config.proxy ? proxyAgent(config.proxy, config.connectUrl.startsWith('wss:')) : undefined,
      maxPayload: 64 * 1024 * 1024,
    });
    let settled = false;
    const fail = (err: ConnectError) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      reject(err);
    };
    ws.once('unexpected-response', (req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 8192) chunks.push(c);
      });
      res.on('error', () => {});
      const done = () => {
        let code = `http_${res.statusCode}`;
        let message = `the relay answered HTTP ${res.statusCode} to the upgrade`;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown; message?: unknown };
          if (typeof body.code === 'string') code = body.code;
          if (typeof body.message === 'string') message = `${body.message} (HTTP ${res.statusCode}, ${code})`;
        } catch {
          // Not our relay, or a proxy in the way: keep the status.
        }
        if (res.statusCode === 426) message += ': this agent and the relay speak different protocol versions';
        const retryAfter = Number(res.headers['retry-after']);
        req.destroy();
        fail(new ConnectError(message, code, res.statusCode, Number.isFinite(retryAfter) ? retryAfter : undefined));
      };
      res.once('end', done);
      res.once('close', done);
    });
    const onAbort = () => fail(new ConnectError('connection attempt abandoned', 'aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    ws.once('error', (err: NodeJS.ErrnoException) => {
      fail(new ConnectError(`${err.message}`, err.code ?? 'connect_failed'));
    });
    ws.once('open', () => {
      if (ws.protocol !== SUBPROTOCOL) {
        fail(new ConnectError(`the relay did not accept subprotocol ${SUBPROTOCOL}`, 'bad_subprotocol'));
        return;
      }
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners('error');
      ws.removeAllListeners('unexpected-response');
      resolve({ ws, duplex: websocketDuplex(ws) });
    });
  });
}
