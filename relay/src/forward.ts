// `g2c-relay forward`: a local TCP port that reaches a private host:port through a tunnel.
// Each accepted connection becomes one WebSocket to the relay's forward endpoint
// (`/elements/api-v2/tunnels/{id|name}/forward?host=&port=`), which carries it as one stream
// through the tunnel's agent. psql, pgbench or any TCP client can then use the local port.
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, WebSocketClosedError } from '@g2c/tunnel';
import WebSocket from 'ws';
import type { ListenAddress } from './config.js';
import type { Logger } from './logger.js';

export interface ForwardSecrets {
  userSecret: string;
  organizationSecret: string;
}

export interface ForwardOptions {
  /** Relay base URL: http(s) or ws(s). */
  relay: string;
  /** Tunnel id or name. */
  tunnel: string;
  /** Target as the agent dials it. */
  to: { host: string; port: number };
  listen: ListenAddress;
  secrets: ForwardSecrets;
  /** Extra CA certificates (PEM) trusted for a wss:// relay. */
  ca?: Buffer;
  logger: Logger;
}

export interface RunningForward {
  /** The local address actually listened on. */
  address: ListenAddress;
  /** Connections being forwarded now. */
  readonly active: number;
  close(): Promise<void>;
}

export class ForwardError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Reads `{"organizationSecret","userSecret"}` (the relay's credentials.json format). */
export async function readSecretsFile(file: string): Promise<ForwardSecrets> {
  let parsed: Partial<ForwardSecrets>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ForwardError('credentials_unreadable', `cannot read ${file}: ${(err as Error).message}`);
  }
  if (typeof parsed?.userSecret !== 'string' || typeof parsed.organizationSecret !== 'string') {
    throw new ForwardError(
      'credentials_unreadable',
      `${file} must hold {"organizationSecret": "...", "userSecret": "..."}`,
    );
  }
  return { userSecret: parsed.userSecret, organizationSecret: parsed.organizationSecret };
}

/** `http(s)://` or `ws(s)://` base -> the forward endpoint's ws(s) URL. */
export function forwardUrl(relay: string, tunnel: string, to: { host: string; port: number }): URL {
  const url = new URL(relay);
  url.protocol = url.protocol.replace(/^http/, 'ws');
  const base = url.pathname.replace(/\/+$/, '');
  url.pathname = `${base}/elements/api-v2/tunnels/${encodeURIComponent(tunnel)}/forward`;
  url.search = new URLSearchParams({ host: to.host, port: String(to.port) }).toString();
  return url;
}

/**
 * WebSocket masking protects plaintext intermediaries (proxies) from crafted payloads; inside
 * TLS or on loopback there is none, and an all-zero mask lets ws skip masking on both ends.
 */
export function maskingUseless(url: URL): boolean {
  if (url.protocol === 'wss:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function authorization(secrets: ForwardSecrets): string {
  return `User ${secrets.userSecret}, Organization ${secrets.organizationSecret}`;
}

/** GET the tunnel once at start, so that wrong secrets or a wrong tunnel fail now, not at the first client. */
async function checkTunnel(options: ForwardOptions): Promise<{ id: string; name: string; status: string }> {
  const url = new URL(options.relay);
  url.protocol = url.protocol.replace(/^ws/, 'http');
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/elements/api-v2/tunnels/${encodeURIComponent(options.tunnel)}`;
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = send(url, { headers: { authorization: authorization(options.secrets) }, ca: options.ca }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', reject);
    req.end();
  }).catch((err: Error) => {
    throw new ForwardError('relay_unreachable', `cannot reach the relay at ${options.relay}: ${err.message}`);
  });
  let parsed: Record<string, string> = {};
  try {
    parsed = JSON.parse(body);
  } catch {}
  if (status !== 200) {
    throw new ForwardError(
      parsed.code ?? 'relay_error',
      `the relay answered ${status}: ${parsed.message ?? body.slice(0, 200)}`,
    );
  }
  return parsed as unknown as { id: string; name: string; status: string };
}

/** Bytes queued in a WebSocket beyond which the byte stream feeding it is paused. */
const BRIDGE_HIGH_WATER_MARK = 1024 * 1024;
const BINARY = { binary: true } as const;

export interface WebSocketBridge {
  /** Cuts both sides now (the stream is destroyed, the WebSocket terminated). */
  destroy(err?: Error): void;
}

/**
 * Carries one byte stream (a TCP socket, a tunnel stream) over an open WebSocket, one binary
 * message per chunk, until both are done; calls `onDone` once, with the first error if any.
 * This is what websocketDuplex + two pipeline() calls did, without the Duplex in the middle:
 * a small round trip crosses two fewer stream layers per hop (the forward path's cost is CPU
 * per message). Same semantics:
 *   - the stream ends (FIN)        -> WebSocket close 1000 after the queued messages;
 *   - close 1000/1001 from the peer -> the stream is ended (FIN); bytes it sends after that
 *     cannot go anywhere, so they destroy it (RST on a tunnel stream);
 *   - any other close, a WebSocket error, a stream error -> both sides are cut.
 * Back-pressure both ways: the stream is paused while the WebSocket buffers more than
 * BRIDGE_HIGH_WATER_MARK, the WebSocket while the stream's write() says false.
 * Call it in the tick of the WebSocket's 'open' (or of the server's upgrade callback), so that
 * no message is emitted before the bridge listens.
 */
export function bridgeWebSocket(
  ws: WebSocket,
  stream: Duplex,
  onDone: (err?: Error) => void = () => {},
): WebSocketBridge {
  let done = false;
  let wsClosed = false;
  let streamClosed = false;
  let firstError: Error | undefined;
  let waitingForWs = false;

  const finish = () => {
    if (done || !wsClosed || !streamClosed) return;
    done = true;
    onDone(firstError);
  };
  const cut = (err?: Error) => {
    if (err && !firstError) firstError = err;
    if (!stream.destroyed) stream.destroy(err);
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  };
  const resumeStream = () => {
    waitingForWs = false;
    if (!stream.destroyed) stream.resume();
  };

  // stream -> WebSocket
  const onData = (chunk: Buffer) => {
    if (ws.readyState !== WebSocket.OPEN) {
      cut(firstError);
      return;
    }
    if (ws.bufferedAmount + chunk.length < BRIDGE_HIGH_WATER_MARK || waitingForWs) {
      ws.send(chunk, BINARY);
      return;
    }
    // Over the high-water mark: wait until this message has been handed to the socket.
    waitingForWs = true;
    stream.pause();
    ws.send(chunk, BINARY, resumeStream);
  };
  stream.on('data', onData);
  stream.once('end', () => {
    if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.NORMAL);
  });
  stream.on('error', (err: Error) => cut(err));
  stream.once('close', () => {
    streamClosed = true;
    // Destroyed before both directions ended cleanly: the peer must not wait for more.
    if (!(stream.readableEnded && stream.writableFinished) && ws.readyState !== WebSocket.CLOSED) ws.terminate();
    finish();
  });

  // WebSocket -> stream
  ws.binaryType = 'nodebuffer';
  const onMessage = (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      ws.close(CloseCode.PROTOCOL_ERROR, 'text message on a binary tunnel');
      cut(new WebSocketClosedError(CloseCode.PROTOCOL_ERROR, 'text message on a binary tunnel'));
      return;
    }
    if (data.length === 0 || stream.destroyed || stream.writableEnded) return;
    if (!stream.write(data) && !ws.isPaused) {
      ws.pause();
      stream.once('drain', () => ws.resume());
    }
  };
  ws.on('message', onMessage);
  ws.on('error', (err: Error) => cut(err));
  ws.once('close', (code: number, reason: Buffer) => {
    wsClosed = true;
    ws.off('message', onMessage);
    if (code === CloseCode.NORMAL || code === CloseCode.GOING_AWAY) {
      // Bytes the stream sends after this cannot go anywhere: onData cuts it then.
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    } else {
      cut(new WebSocketClosedError(code, reason.toString()));
    }
    finish();
  });
  if (ws.readyState !== WebSocket.OPEN) cut(new WebSocketClosedError(CloseCode.SESSION_LOST, 'socket not open'));

  return { destroy: (err?: Error) => cut(err) };
}

export async function startForward(options: ForwardOptions): Promise<RunningForward> {
  const { logger } = options;
  const tunnel = await checkTunnel(options);
  // The id, not the name: a tunnel renamed or recreated later must not silently change target.
  const url = forwardUrl(options.relay, tunnel.id, options.to);
  const zeroMask = maskingUseless(url);
  const sockets = new Set<Socket>();
  let nextId = 0;

  const onConnection = (socket: Socket) => {
    const id = ++nextId;
    const log = logger.child({ connection: id });
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    const ws = new WebSocket(url, {
      headers: { authorization: authorization(options.secrets) },
      perMessageDeflate: false,
      ca: options.ca,
      handshakeTimeout: 20_000,
      generateMask: zeroMask ? (mask: Buffer) => mask.fill(0) : undefined,
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        let parsed: Record<string, string> = {};
        try {
          parsed = JSON.parse(text);
        } catch {}
        log.warn(
          { status: res.statusCode, code: parsed.code, requestId: parsed.requestId },
          `connection refused by the relay: ${parsed.message ?? text.slice(0, 200)}`,
        );
        socket.destroy();
        ws.terminate();
      });
    });
    ws.on('error', (err) => {
      log.warn({ err: err.message }, 'cannot open the forward WebSocket');
      socket.destroy();
    });
    socket.once('close', () => {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    });
    ws.once('open', () => {
      const started = Date.now();
      log.debug('forwarding');
      bridgeWebSocket(ws, socket, (err) => {
        log.debug({ ms: Date.now() - started, error: err?.message }, 'connection closed');
      });
    });
  };

  const server: Server = createServer({ noDelay: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as { address: string; port: number };
  const listen = { host: address.address, port: address.port };
  logger.info(
    {
      listen: `${listen.host}:${listen.port}`,
      tunnel: tunnel.name,
      tunnelId: tunnel.id,
      to: `${options.to.host}:${options.to.port}`,
      status: tunnel.status,
    },
    `forwarding ${listen.host}:${listen.port} -> tunnel ${tunnel.name} -> ${options.to.host}:${options.to.port}`,
  );
  if (tunnel.status !== 'online') logger.warn('the tunnel has no agent connected yet: connections fail until one is');

  return {
    address: listen,
    get active() {
      return sockets.size;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
