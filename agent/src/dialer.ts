// One stream from the relay, end to end on the agent's side: read the open header, check the
// target against the allowlist, resolve and dial it with a timeout, answer ok or a coded
// refusal, then carry bytes both ways. FIN and RST map to TCP half-close and reset in both
// directions; pipe() keeps memory to the mux window plus one socket high-water mark.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  encodeOpenHeader,
  OPEN_TIMEOUT_MS,
  type OpenReply,
  type OpenRequest,
  parseOpenRequest,
  readOpenHeader,
  TunnelError,
  type TunnelErrorCode,
} from '@g2c/tunnel';
import type { Logger } from 'pino';
import type { Allowlist } from './allowlist.js';

export interface DialerOptions {
  allowlist: Allowlist;
  /** TCP connect timeout per target (all of its addresses together). */
  dialTimeoutMs: number;
  /** How long the relay has to send the open header (default OPEN_TIMEOUT_MS). */
  headerTimeoutMs?: number;
  logger: Logger;
  /** Name resolution (default: the system resolver, so private DNS names work). */
  lookup?: (host: string) => Promise<{ address: string; family: number }[]>;
}

const systemLookup = (host: string) => dnsLookup(host, { all: true, verbatim: true });

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ENODATA', 'ESERVFAIL', 'EAI_FAIL', 'EAI_NONAME']);

function dialError(err: NodeJS.ErrnoException, target: string): TunnelError {
  switch (err.code) {
    case 'ECONNREFUSED':
      return new TunnelError('connect_refused', `${target} refused the connection: nothing listens on that port`);
    case 'ETIMEDOUT':
      return new TunnelError('connect_timeout', `${target} did not answer in time`);
    default:
      return new TunnelError('unreachable', `${target} is unreachable from the agent (${err.code ?? err.message})`);
  }
}

/** Connects to one address; rejects with the socket error or ETIMEDOUT. */
function connectOnce(address: string, port: number, timeoutMs: number, abort: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: address, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const onAbort = () => {
      clearTimeout(timer);
      socket.destroy();
      reject(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
    };
    abort.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      abort.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/** Resolves and dials the target; every address in turn within one overall timeout. */
export async function dial(
  request: OpenRequest,
  options: Pick<DialerOptions, 'dialTimeoutMs' | 'lookup'>,
  abort: AbortSignal,
): Promise<Socket> {
  const host = request.host.startsWith('[') ? request.host.slice(1, -1) : request.host;
  const target = `${request.host}:${request.port}`;
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await (options.lookup ?? systemLookup)(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      throw new TunnelError(
        DNS_CODES.has(code) ? 'dns_failed' : 'unreachable',
        `the agent cannot resolve ${host} (${code || (err as Error).message})`,
      );
    }
    if (addresses.length === 0) throw new TunnelError('dns_failed', `the agent cannot resolve ${host} (no address)`);
  }
  const deadline = Date.now() + options.dialTimeoutMs;
  let last: NodeJS.ErrnoException | undefined;
  for (const { address } of addresses) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    try {
      return await connectOnce(address, request.port, left, abort);
    } catch (err) {
      last = err as NodeJS.ErrnoException;
      if (last.code === 'ABORT_ERR') throw last;
    }
  }
  throw dialError(last ?? Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }), target);
}

/** Carries bytes between a tunnel stream and a TCP socket until both directions are done. */
export function splice(
  stream: Duplex,
  socket: Socket,
  onClosed?: (info: { bytesIn: number; bytesOut: number }) => void,
): void {
  stream.pipe(socket); // relay FIN -> TCP FIN
  socket.pipe(stream); // target FIN -> stream FIN
  stream.on('error', () => {
    // An RST from the relay (or a dead session) resets the TCP connection.
    if (!socket.destroyed) socket.resetAndDestroy();
  });
  socket.on('error', (err) => {
    // A reset or failed target resets the stream.
    if (!stream.destroyed) stream.destroy(err);
  });
  stream.on('close', () => {
    if (!socket.destroyed && !socket.writableEnded) socket.resetAndDestroy();
  });
  socket.on('close', () => {
    // Both halves closed cleanly: the stream's FIN is already queued (writableEnded).
    if (!stream.destroyed && !stream.writableEnded) stream.destroy();
    onClosed?.({ bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten });
  });
}

/**
 * Serves one stream opened by the relay. Resolves once the stream is spliced or refused;
 * never throws (failures are answered on the stream or reset it, and logged).
 */
export async function serveStream(stream: Duplex, options: DialerOptions): Promise<void> {
  const log = options.logger;
  stream.on('error', () => {}); // errors are handled where they matter; never uncaught
  let request: OpenRequest;
  try {
    request = parseOpenRequest(await readOpenHeader(stream, { timeoutMs: options.headerTimeoutMs ?? OPEN_TIMEOUT_MS }));
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'bad stream open from the relay: stream reset');
    stream.destroy(err as Error);
    return;
  }
  const target = `${request.host}:${request.port}`;
  const refuse = (code: TunnelErrorCode, message: string) => {
    const reply: OpenReply = { ok: false, code, message };
    stream.end(encodeOpenHeader(reply));
    stream.resume(); // discard anything the relay sent anyway, so the stream can close
  };

  const entry = options.allowlist.match(request.host, request.port);
  if (!entry) {
    log.warn({ target }, 'stream refused: target not in the allowlist');
    refuse(
      'not_allowed',
      `the agent does not allow ${target}: add --allow ${target} (or a matching entry) to the agent`,
    );
    return;
  }

  const abort = new AbortController();
  const onGone = () => abort.abort();
  stream.once('close', onGone);
  let socket: Socket;
  const started = Date.now();
  try {
    socket = await dial(request, options, abort.signal);
  } catch (err) {
    stream.off('close', onGone);
    if ((err as { code?: string }).code === 'ABORT_ERR') {
      log.debug({ target }, 'relay gave up on the stream while dialing');
      return;
    }
    const e = err as TunnelError;
    log.warn({ target, code: e.code, err: e.message }, 'stream refused: dial failed');
    refuse(e.code, e.message);
    return;
  }
  stream.off('close', onGone);
  if (stream.destroyed) {
    socket.destroy();
    return;
  }
  socket.setKeepAlive(true, 30_000);
  log.debug({ target, allowedBy: entry.text, ms: Date.now() - started }, 'stream connected');
  stream.write(encodeOpenHeader({ ok: true } satisfies OpenReply));
  const opened = Date.now();
  splice(stream, socket, ({ bytesIn, bytesOut }) =>
    log.debug({ target, bytesFromTarget: bytesIn, bytesToTarget: bytesOut, ms: Date.now() - opened }, 'stream closed'),
  );
}
