// The tunnel's error catalogue. These codes cross the wire (the agent's answer to an open)
// and reach users (the relay maps them to HTTP statuses), so they never change meaning.

/** Why a stream could not reach its target, as the agent or the relay reports it. */
export type TunnelErrorCode =
  /** The target is not in the agent's allowlist. */
  | 'not_allowed'
  /** The target host answered with a TCP reset: nothing listens on that port. */
  | 'connect_refused'
  /** No answer from the target within the agent's dial timeout. */
  | 'connect_timeout'
  /** The agent could not resolve the target name. */
  | 'dns_failed'
  /** No route to the target (network or host unreachable) or another dial failure. */
  | 'unreachable'
  /** No agent of the tunnel is connected (or every agent failed the open). */
  | 'tunnel_offline'
  /** The peer broke the stream-open protocol (bad header, no answer in time). */
  | 'protocol_error';

export const TUNNEL_ERROR_CODES: readonly TunnelErrorCode[] = [
  'not_allowed',
  'connect_refused',
  'connect_timeout',
  'dns_failed',
  'unreachable',
  'tunnel_offline',
  'protocol_error',
];

export function isTunnelErrorCode(code: unknown): code is TunnelErrorCode {
  return typeof code === 'string' && (TUNNEL_ERROR_CODES as readonly string[]).includes(code);
}

export class TunnelError extends Error {
  override readonly name = 'TunnelError';
  constructor(
    readonly code: TunnelErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The WebSocket under a tunnel closed or failed; `closeCode` is the WebSocket close code. */
export class WebSocketClosedError extends Error {
  override readonly name = 'WebSocketClosedError';
  readonly code = 'ERR_WS_CLOSED';
  constructor(
    readonly closeCode: number,
    readonly reason: string,
  ) {
    super(`the tunnel's WebSocket closed (code ${closeCode}${reason ? `: ${reason}` : ''})`);
  }
}

/** The stream-open header was malformed; the stream is reset. */
export class OpenHeaderError extends Error {
  override readonly name = 'OpenHeaderError';
  readonly code = 'ERR_OPEN_HEADER';
}
