// Reaching the relay through an HTTP proxy (`--proxy http://[user:pass@]host:port`): the
// WebSocket's TCP connection is an HTTP CONNECT tunnel through the proxy; for wss:// the TLS
// session runs inside it, end to end with the relay and verified as always (the proxy sees
// only ciphertext). Used as the `agent` of ws's HTTP request.
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';

/** Largest CONNECT answer header accepted from the proxy. */
const MAX_PROXY_HEADER = 16 * 1024;

export class ProxyError extends Error {
  override readonly name = 'ProxyError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ProxyTarget {
  host: string;
  port: number;
  /** `Proxy-Authorization` value, from the URL's user and password. */
  authorization?: string;
}

/** Parses --proxy; returns undefined for a malformed value (the caller names the option). */
export function parseProxyUrl(text: string): ProxyTarget | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' || !url.hostname || url.pathname.replace(/\/$/, '') || url.search) return undefined;
  const authorization =
    url.username || url.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
      : undefined;
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80), authorization };
}

/** The proxy URL without its password, for logs. */
export function redactProxyUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(invalid)';
  }
}

/** Opens a CONNECT tunnel to host:port through the proxy; resolves with the raw socket. */
export function connectThroughProxy(
  proxy: ProxyTarget,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: proxy.host, port: proxy.port, noDelay: true });
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const timer = setTimeout(
      () => fail(new ProxyError('proxy_timeout', `the proxy did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    let received = Buffer.alloc(0);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.destroy();
      reject(err);
    };
    socket.once('error', (err) => fail(new ProxyError('proxy_unreachable', `cannot reach the proxy: ${err.message}`)));
    socket.once('connect', () => {
      const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
      if (proxy.authorization) lines.push(`Proxy-Authorization: ${proxy.authorization}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > MAX_PROXY_HEADER) fail(new ProxyError('proxy_refused', 'the proxy answer is too long'));
        return;
      }
      socket.off('data', onData);
      const status = /^HTTP\/1\.[01] (\d{3})([^\r\n]*)/.exec(received.subarray(0, end).toString('latin1'));
      if (!status || status[1] !== '200') {
        const what = status ? `${status[1]}${status[2]}` : 'a malformed answer';
        fail(new ProxyError('proxy_refused', `the proxy refused CONNECT ${target}: ${what}`));
        return;
      }
      clearTimeout(timer);
      socket.removeAllListeners('error');
      const rest = received.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

type Callback = (err: Error | null, socket?: Duplex) => void;

/** An http(s) Agent whose connections are CONNECT tunnels through `proxy`. */
export function proxyAgent(proxy: ProxyTarget, secure: boolean, timeoutMs = 15_000): HttpAgent {
  const create = (options: ConnectionOptions & { host?: string; port?: number | string }, callback: Callback) => {
    const host = options.host ?? 'localhost';
    const port = Number(options.port ?? (secure ? 443 : 80));
    connectThroughProxy(proxy, host, port, timeoutMs).then(
      (socket) => {
        if (!secure) {
          callback(null, socket);
          return;
        }
        // TLS end to end with the relay, with the request's own verification options.
        const tls = tlsConnect({ ...options, socket, servername: options.servername ?? host });
        callback(null, tls);
      },
      (err: Error) => callback(err),
    );
    return undefined;
  };
  const agent = secure ? new HttpsAgent({ keepAlive: false }) : new HttpAgent({ keepAlive: false });
  (agent as unknown as { createConnection: typeof create }).createConnection = create;
  return agent;
}
