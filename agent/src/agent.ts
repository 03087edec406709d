// The agent's lifecycle: dial the relay, hold one mux session (the agent is the yamux server:
// it accepts streams and never opens one), serve each stream through the dialer, and when
// the connection is lost reconnect with exponential backoff and full jitter, forever. The only
// reasons to stop: the relay says the token is revoked, or drain() (SIGTERM).
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import type { Duplex } from 'node:stream';
import { Session } from '@g2c/mux';
import { AGENT_VERSION, CloseCode } from '@g2c/tunnel';
import type { Logger } from 'pino';
import type WebSocket from 'ws';
import type { AgentConfig } from './config.js';
import { serveStream } from './dialer.js';
import { type ConnectError, connectToRelay } from './relay-connection.js';

/** What the health endpoint shows. */
export interface AgentState {
  /** A session with the relay is up. */
  connected: boolean;
  /** The relay base URL. */
  relay: string;
  /** ISO time the current session started (null while disconnected). */
  since: string | null;
  /** Streams being served now. */
  activeStreams: number;
  /** Sessions established after the first one. */
  reconnects: number;
  /** Last connection failure or session loss, for humans (null if none yet). */
  lastError: string | null;
  /** SIGTERM received: no new streams, waiting for the open ones. */
  draining: boolean;
  version: string;
}

export type StopReason = 'revoked' | 'drained';

/** Full jitter: a uniform delay between 0 and min(cap, base * 2^attempt). */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30)));
}

/** Longest Retry-After honoured: a bigger one (or a broken proxy's) must not park the agent for hours. */
export const MAX_RETRY_AFTER_S = 300;

/** The wait before the next attempt: the backoff, or the relay's Retry-After when longer (capped). */
export function retryDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  retryAfterS: number | undefined,
  random = Math.random,
): number {
  const asked = Number.isFinite(retryAfterS) ? Math.min(Math.max(retryAfterS!, 0), MAX_RETRY_AFTER_S) : 0;
  return Math.max(backoffDelay(attempt, baseMs, capMs, random), asked * 1000);
}

export interface AgentDeps {
  logger: Logger;
  hostname?: string;
  random?: () => number;
}

export class Agent {
  private readonly config: AgentConfig;
  private readonly log: Logger;
  private readonly hostname: string;
  private readonly random: () => number;
  private connected = false;
  private since: Date | null = null;
  private sessions = 0;
  private lastError: string | null = null;
  private draining = false;
  private readonly streams = new Set<Duplex>();
  private session: Session | undefined;
  private ws: WebSocket | undefined;
  private wakeSleep: (() => void) | undefined;
  /** The connection attempt in progress, abandoned by drain(). */
  private pending: AbortController | undefined;
  private stopped: Promise<StopReason> | undefined;
  private drained: ((reason: StopReason) => void) | undefined;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.log = deps.logger;
    this.hostname = deps.hostname ?? osHostname();
    this.random = deps.random ?? Math.random;
  }

  state(): AgentState {
    return {
      connected: this.connected,
      relay: this.config.relay,
      since: this.since?.toISOString() ?? null,
      activeStreams: this.streams.size,
      reconnects: Math.max(0, this.sessions - 1),
      lastError: this.lastError,
      draining: this.draining,
      version: AGENT_VERSION,
    };
  }

  /** Runs the connect loop; resolves when the agent stops (token revoked, or drained). */
  run(): Promise<StopReason> {
    this.stopped ??= new Promise<StopReason>((resolve) => {
      this.drained = resolve;
      void this.loop().then((reason) => reason && resolve(reason));
    });
    return this.stopped;
  }

  private async loop(): Promise<StopReason | undefined> {
    const { baseMs, capMs, resetAfterMs } = this.config.backoff;
    let attempt = 0;
    while (!this.draining) {
      let connection: { ws: WebSocket; duplex: Duplex };
      try {
        this.pending = new AbortController();
        connection = await connectToRelay(
          this.config,
          { token: this.token(), hostname: this.hostname },
          this.pending.signal,
        );
      } catch (err) {
        const e = err as ConnectError;
        if (this.draining) return undefined;
        this.lastError = e.message;
        if (e.code === 'token_revoked') {
          this.log.error(
            { code: e.code, status: e.status },
            `the relay revoked this agent's token: ${e.message}; stopping (issue a new token for the tunnel and restart the agent with it)`,
          );
          return 'revoked';
        }
        const delay = retryDelay(attempt++, baseMs, capMs, e.retryAfterS, this.random);
        this.log.warn(
          { code: e.code, status: e.status, retryInMs: delay, relay: this.config.relay },
          `cannot connect to the relay: ${e.message}`,
        );
        await this.sleep(delay);
        continue;
      }
      const started = Date.now();
      await this.runSession(connection.ws, connection.duplex);
      if (this.draining) return undefined;
      if (Date.now() - started >= resetAfterMs) attempt = 0;
      const delay = backoffDelay(attempt++, baseMs, capMs, this.random);
      this.log.warn({ retryInMs: delay, lastError: this.lastError }, 'lost the relay session; reconnecting');
      await this.sleep(delay);
    }
    return undefined;
  }

  /**
   * The token for the next attempt: a --token-file is read again each time, so that a rotated
   * token can be put in place without restarting the agent. A file that cannot be read (or is
   * being rewritten) keeps the last good token.
   */
  private token(): string {
    const file = this.config.tokenFile;
    if (!file) return this.config.token;
    try {
      const token = readFileSync(file, 'utf8').trim();
      if (token && !/\s/.test(token)) {
        if (token !== this.config.token) this.log.info({ tokenFile: file }, 'token file changed: using the new token');
        this.config.token = token;
      }
    } catch (err) {
      this.log.warn(
        { tokenFile: file, err: (err as Error).message },
        'cannot read the token file; using the last token',
      );
    }
    return this.config.token;
  }

  /** Holds one session until it ends; resolves after everything of it is gone. */
  private async runSession(ws: WebSocket, duplex: Duplex): Promise<void> {
    const session = new Session(duplex, {
      client: false,
      keepaliveIntervalMs: this.config.keepaliveIntervalMs,
      keepaliveTimeoutMs: this.config.keepaliveTimeoutMs,
    });
    this.ws = ws;
    this.session = session;
    this.sessions++;
    this.connected = true;
    this.since = new Date();
    this.log.info({ relay: this.config.relay, reconnects: this.sessions - 1 }, 'connected to the relay');

    let closeInfo = '';
    ws.on('close', (code: number, reason: Buffer) => {
      closeInfo = `WebSocket closed with ${code}${reason.length ? ` (${reason.toString()})` : ''}`;
      if (code === CloseCode.TOKEN_REVOKED) closeInfo += ': the relay revoked the token';
    });
    session.on('stream', (stream: Duplex) => {
      if (this.draining) {
        stream.destroy();
        return;
      }
      this.streams.add(stream);
      stream.once('close', () => {
        this.streams.delete(stream);
        if (this.draining && this.streams.size === 0) this.wakeDrain?.();
      });
      void serveStream(stream, {
        allowlist: this.config.allowlist,
        dialTimeoutMs: this.config.dialTimeoutMs,
        logger: this.log,
      });
    });
    let sessionError: (Error & { code?: string }) | undefined;
    await new Promise<void>((resolve) => {
      session.on('error', (err: Error) => {
        sessionError = err;
      });
      session.once('close', () => resolve());
      duplex.once('close', () => resolve());
    });
    // Whatever ended first, make sure everything of this session is gone.
    session.destroy();
    duplex.destroy();
    for (const stream of this.streams) stream.destroy();
    this.connected = false;
    this.since = null;
    this.session = undefined;
    this.ws = undefined;
    if (!this.draining) {
      this.lastError =
        sessionError?.code === 'ERR_KEEPALIVE_TIMEOUT'
          ? `the relay stopped answering keepalive pings (${sessionError.message})`
          : closeInfo || sessionError?.message || 'the relay session ended';
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = () => {
        this.wakeSleep = undefined;
        done();
      };
    });
  }

  private wakeDrain: (() => void) | undefined;

  /**
   * Graceful stop (SIGTERM): GoAway so the relay opens nothing new here, let open streams
   * finish for up to drainTimeoutMs, cut the rest, close the session. Resolves when done.
   */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.run(); // make sure stopped exists
    this.wakeSleep?.();
    this.pending?.abort();
    const session = this.session;
    if (session) {
      this.log.info(
        { activeStreams: this.streams.size, drainTimeoutMs: this.config.drainTimeoutMs },
        'draining: no new streams; waiting for open ones',
      );
      session.goAway();
      if (this.streams.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.config.drainTimeoutMs);
          this.wakeDrain = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      const cut = this.streams.size;
      if (cut > 0) this.log.warn({ streams: cut }, 'drain timeout: cutting the streams still open');
      for (const stream of this.streams) stream.destroy();
      // Bounded wait for the relay's side of the close; the timer must not outlive it, or the
      // process lingers for its full length after the drain.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        session.close().catch(() => {}),
        new Promise((r) => {
          timer = setTimeout(r, 2000);
        }),
      ]);
      clearTimeout(timer);
      session.destroy();
      this.ws?.close(CloseCode.GOING_AWAY, 'agent shutting down');
    }
    this.log.info('drained; stopping');
    this.drained?.('drained');
  }
}
