// Session configuration: every limit of the multiplexer, with its default, in one place.
// `verifyConfig` runs once when a session is created; a bad value fails there, not later.
import { MuxError } from './errors.js';
import { INITIAL_WINDOW, MAX_WINDOW_FIELD } from './frame.js';

export interface MuxConfig {
  /**
   * Interval between keepalive pings, in ms (default 10 s, DESIGN 4.3). 0 disables them;
   * pings sent by `ping()` and by the window tuner still count towards the timeout below.
   */
  keepaliveIntervalMs: number;
  /**
   * A ping without an answer for this long (ms) ends the session with
   * `ERR_KEEPALIVE_TIMEOUT` (default 25 s). A black-holed link is therefore detected
   * within `keepaliveIntervalMs + keepaliveTimeoutMs`. 0 disables the check.
   */
  keepaliveTimeoutMs: number;
  /**
   * Streams opened by the peer while nobody listens to the session's 'stream' event are
   * held, up to this many; beyond it new streams are refused with RST (default 256, as
   * HashiCorp's AcceptBacklog).
   */
  acceptBacklog: number;
  /**
   * Concurrent streams in this session, both directions together (default 1024). The
   * peer's stream beyond it is refused with RST; a local `open()` beyond it throws
   * `ERR_STREAM_REFUSED`. The session lives on either way.
   */
  maxStreams: number;
  /**
   * Receive window a new stream starts with, in bytes (default and minimum 256 KiB: the
   * spec's initial window; a larger value is announced in the SYN/ACK window update).
   */
  initialWindow: number;
  /**
   * Largest receive window the auto-tuner may grow a stream to (default 16 MiB). This is
   * also the most memory one stream's unread data can take, and the largest data frame
   * accepted from the peer.
   */
  maxWindow: number;
  /**
   * Receive window the auto-tuner may add over all streams of the session together, beyond
   * their initial windows (default 64 MiB). Bounds what fast readers that suddenly stop can
   * make the peer buffer here: streams x initialWindow + this.
   */
  maxSessionWindowGrowth: number;
  /**
   * Largest data frame payload this side sends (default 64 KiB). Smaller frames interleave
   * concurrent streams more fairly; each costs a 12-byte header.
   */
  maxFrameSize: number;
  /** High-water mark of each stream's readable and writable buffers (default 64 KiB). */
  streamHighWaterMark: number;
  /**
   * Bytes of control frames (window updates, ping answers) allowed to queue in the
   * transport while it refuses data; beyond this the session stops reading the transport
   * until it drains, so that a peer that sends but never reads cannot grow our memory
   * (default 1 MiB).
   */
  maxControlBacklog: number;
}

export const DEFAULT_CONFIG: Readonly<MuxConfig> = Object.freeze({
  keepaliveIntervalMs: 10_000,
  keepaliveTimeoutMs: 25_000,
  acceptBacklog: 256,
  maxStreams: 1024,
  initialWindow: INITIAL_WINDOW,
  maxWindow: 16 * 1024 * 1024,
  maxSessionWindowGrowth: 64 * 1024 * 1024,
  maxFrameSize: 64 * 1024,
  streamHighWaterMark: 64 * 1024,
  maxControlBacklog: 1024 * 1024,
});

const INTEGER_KEYS = Object.keys(DEFAULT_CONFIG) as (keyof MuxConfig)[];

/** Defaults merged with `options`, checked. Throws `ERR_INVALID_CONFIG` naming the option. */
export function verifyConfig(options: Partial<MuxConfig> = {}): MuxConfig {
  const config: MuxConfig = { ...DEFAULT_CONFIG };
  for (const key of INTEGER_KEYS) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw invalid(key, `must be a non-negative integer, got ${String(value)}`);
    }
    config[key] = value;
  }
  if (config.initialWindow < INITIAL_WINDOW) {
    throw invalid('initialWindow', `must be at least ${INITIAL_WINDOW} (the yamux initial window)`);
  }
  if (config.maxWindow < config.initialWindow || config.maxWindow > MAX_WINDOW_FIELD) {
    throw invalid('maxWindow', `must lie between initialWindow (${config.initialWindow}) and ${MAX_WINDOW_FIELD}`);
  }
  if (config.maxFrameSize < 1024 || config.maxFrameSize > config.maxWindow) {
    throw invalid('maxFrameSize', 'must lie between 1024 and maxWindow');
  }
  if (config.maxStreams < 1) throw invalid('maxStreams', 'must be at least 1');
  if (config.streamHighWaterMark < 1) throw invalid('streamHighWaterMark', 'must be at least 1');
  return config;
}

function invalid(key: keyof MuxConfig, why: string): MuxError {
  return new MuxError('ERR_INVALID_CONFIG', `mux option ${key} ${why}`);
}
