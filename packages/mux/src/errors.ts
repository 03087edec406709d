// The multiplexer's error catalogue. Callers branch on `code`, never on the message; the
// codes are stable. Every message says what happened and, where the caller can act, what to do.

export type MuxErrorCode =
  /** The peer reset the stream (yamux RST) after it had been accepted. */
  | 'ERR_STREAM_RESET'
  /** The peer refused a new stream (RST before any ACK: backlog or stream limit, GoAway), or
   *  this session's own `maxStreams` is reached. Nothing was delivered: retrying elsewhere is safe. */
  | 'ERR_STREAM_REFUSED'
  /** The peer did not answer a ping within `keepaliveTimeoutMs`: the link is presumed dead. */
  | 'ERR_KEEPALIVE_TIMEOUT'
  /** The session is closed or closing, or it ended while this stream was still open. */
  | 'ERR_SESSION_CLOSED'
  /** The peer sent GoAway: it accepts no new streams (or it ended the session with an error code). */
  | 'ERR_REMOTE_GOAWAY'
  /** The peer broke the yamux protocol (malformed or oversize frame, window exceeded, ...). */
  | 'ERR_PROTOCOL'
  /** Every stream id of this session has been used (2^31 streams); open a new session. */
  | 'ERR_STREAMS_EXHAUSTED'
  /** A configuration value is out of range (see config.ts). */
  | 'ERR_INVALID_CONFIG';

export class MuxError extends Error {
  override readonly name = 'MuxError';
  constructor(
    readonly code: MuxErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isMuxError(err: unknown, code?: MuxErrorCode): err is MuxError {
  return err instanceof MuxError && (code === undefined || err.code === code);
}
