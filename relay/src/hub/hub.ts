// The tunnel hub: the relay's side of every agent connection. It accepts agents on
// AGENT_PATH (upgrade.ts: token checked before the upgrade), keeps one mux session per agent
// (registry.ts: presence, keepalive, removal), and opens streams to targets through them
// (open-stream.ts). Everything above it (engine pools, forward) sees only
// `openStream(tunnelId, host, port)` and the pg socket of pg-socket.ts.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode, KEEPALIVE_INTERVAL_MS, KEEPALIVE_TIMEOUT_MS, OPEN_TIMEOUT_MS, SUBPROTOCOL } from '@g2c/tunnel';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { openStream } from './open-stream.js';
import { FailureRateLimiter } from './rate-limit.js';
import { Registry } from './registry.js';
import { handleAgentUpgrade, rejectUpgrade } from './upgrade.js';

/** What the hub needs of the token service (relay/src/auth/tokens.ts). */
export interface HubTokens {
  /** Throws an error whose `.code` is token_missing | token_invalid | token_revoked. */
  verify(token: string | undefined): Promise<{ tunnelId: string; orgId: string; jti: string }>;
}

/** What the hub needs of the presence store (relay/src/store/presence.ts). */
export interface HubPresence {
  agentConnected(p: {
    sessionId: string;
    tunnelId: string;
    nodeId: string;
    version?: string;
    hostname?: string;
    remoteAddress?: string;
    connectedAt: Date;
  }): Promise<void>;
  agentSeen(sessionId: string): Promise<void>;
  agentDisconnected(sessionId: string): Promise<void>;
  clearNode(nodeId: string): Promise<number>;
}

export interface HubOptions {
  /** Verifies agent tokens before any upgrade. */
  tokens: HubTokens;
  /** Presence rows; without it the hub keeps its state in memory only (tests). */
  presence?: HubPresence;
  logger: Logger;
  /** This relay process's id in presence rows (default: a random UUID per process). */
  nodeId?: string;
  /** Ping every agent this often (default 10 s, KEEPALIVE_INTERVAL_MS). */
  keepaliveIntervalMs?: number;
  /** An agent that does not answer a ping for this long is dropped (default 25 s). */
  keepaliveTimeoutMs?: number;
  /** Wait this long for the agent's answer to a stream open (default 15 s, OPEN_TIMEOUT_MS). */
  openTimeoutMs?: number;
  /** Failed upgrades allowed per remote address per window before 429 (default 10 per 60 s). */
  rateLimit?: { failures: number; windowMs: number };
  /** How often presence `last_seen` is refreshed for each session (default 30 s). */
  presenceRefreshMs?: number;
  /**
   * The relay sits behind a proxy: take agents' addresses (rate limit, status, presence) from
   * the first X-Forwarded-For entry. Without it every agent behind the proxy shares the
   * proxy's address, and one agent with a bad token could rate-limit them all. Default false.
   */
  trustProxy?: boolean;
  /**
   * Agent sessions one tunnel may hold on this relay (default 32). Beyond it an upgrade gets
   * 429 too_many_agents, so that a leaked token cannot pile up sessions; stale sessions count
   * until keepalive removes them, hence the margin over the few replicas a tunnel needs.
   */
  maxAgentsPerTunnel?: number;
  /** close() waits at most this long for upgrades whose token check is still running (default 5 s). */
  closeWaitMs?: number;
}

export interface AgentStatus {
  id: string;
  version: string;
  hostname: string;
  remoteAddress: string;
  connectedAt: string;
  activeStreams: number;
  bytesIn: number;
  bytesOut: number;
}

export interface TunnelStatus {
  status: 'online' | 'offline';
  agents: AgentStatus[];
}

const DEFAULT_RATE_LIMIT = { failures: 10, windowMs: 60_000 };

export class Hub {
  readonly nodeId: string;
  private readonly log: Logger;
  private readonly registry: Registry;
  private readonly limiter: FailureRateLimiter;
  private readonly wss: WebSocketServer;
  private readonly openTimeoutMs: number;
  private readonly upgrades = new Set<Promise<void>>();
  private closed = false;

  constructor(readonly options: HubOptions) {
    this.nodeId = options.nodeId ?? randomUUID();
    this.log = options.logger.child({ component: 'hub' });
    this.openTimeoutMs = options.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    this.registry = new Registry({
      nodeId: this.nodeId,
      presence: options.presence,
      logger: this.log,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? KEEPALIVE_INTERVAL_MS,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? KEEPALIVE_TIMEOUT_MS,
      presenceRefreshMs: options.presenceRefreshMs ?? 30_000,
    });
    this.limiter = new FailureRateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT);
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  /** Handles an HTTP upgrade on AGENT_PATH: answers 401/426/429 itself or accepts the agent. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.closed) {
      rejectUpgrade(socket, 503, 'unavailable', 'the relay is shutting down; the agent will reconnect');
      return;
    }
    const done = handleAgentUpgrade(
      {
        tokens: this.options.tokens,
        limiter: this.limiter,
        trustProxy: this.options.trustProxy,
        admit: (tunnelId) => this.registry.agents(tunnelId).length < (this.options.maxAgentsPerTunnel ?? 32),
        wss: this.wss,
        logger: this.log,
        onAgent: (ws, agent, raw, token) => {
          if (this.closed) {
            ws.close(CloseCode.GOING_AWAY, 'relay shutting down');
            return;
          }
          const entry = this.registry.add(ws, agent, raw);
          // A rotation (or delete) that committed while this upgrade was between its token
          // check and registry.add found no session to close: check the token once more now
          // that the session is visible to disconnectTunnel, and close it if it was revoked.
          this.options.tokens.verify(token).then(
            (again) => {
              if (again.jti !== agent.jti) this.registry.remove(entry, 'token rotated', CloseCode.TOKEN_REVOKED);
            },
            (err: Error & { code?: string }) => {
              if (err.code === 'token_revoked' || err.code === 'token_invalid') {
                this.registry.remove(entry, `token revoked while connecting: ${err.message}`, CloseCode.TOKEN_REVOKED);
              } else {
                this.log.warn({ err: err.message, agentSession: entry.id }, 'could not re-check the agent token');
              }
            },
          );
        },
      },
      req,
      socket,
      head,
    ).catch((err: Error) => {
      this.log.error({ err: err.message }, 'agent upgrade failed');
      socket.destroy();
    });
    this.upgrades.add(done);
    void done.finally(() => this.upgrades.delete(done));
  }

  /**
   * A byte stream to host:port through one of the tunnel's agents, after the agent said ok.
   * Rejects with `.code` = the agent's code (not_allowed, connect_refused, ...) or tunnel_offline.
   */
  openStream(tunnelId: string, host: string, port: number): Promise<Duplex> {
    return openStream(this.registry, tunnelId, host, port, { openTimeoutMs: this.openTimeoutMs, logger: this.log });
  }

  /** Live status of a tunnel's agents on this relay. */
  status(tunnelId: string): TunnelStatus {
    const agents = this.registry
      .agents(tunnelId)
      .filter((a) => !a.closed)
      .map((a) => ({
        id: a.id,
        version: a.agent.version,
        hostname: a.agent.hostname,
        remoteAddress: a.agent.remoteAddress,
        connectedAt: a.connectedAt.toISOString(),
        activeStreams: a.activeStreams,
        bytesIn: a.bytesIn,
        bytesOut: a.bytesOut,
      }));
    return { status: agents.length > 0 ? 'online' : 'offline', agents };
  }

  /** Closes every session of the tunnel (token rotated, tunnel deleted). */
  disconnectTunnel(tunnelId: string, reason: string): void {
    const n = this.registry.disconnectTunnel(tunnelId, reason);
    if (n > 0) this.log.info({ tunnelId, sessions: n, reason }, 'closed the agent sessions of the tunnel');
  }

  /** Number of agent sessions held by this relay (all tunnels). */
  get sessionCount(): number {
    return this.registry.size;
  }

  /** Closes every session and forgets this node's presence rows. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Every wait below is on the store or on callers (upgrades still checking their token
    // finish and are then turned away; presence writes): a store that does not answer must
    // not hold the shutdown, so each is bounded by closeWaitMs.
    const waitMs = this.options.closeWaitMs ?? 5_000;
    const bounded = async (what: string, work: Promise<unknown>) => {
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([
        work.then(
          () => false,
          () => false,
        ),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), waitMs);
        }),
      ]);
      clearTimeout(timer);
      if (late) this.log.warn({ waitMs }, `shutdown: gave up waiting for ${what}`);
    };
    await bounded('agent upgrades', Promise.allSettled([...this.upgrades]));
    await bounded('presence writes', this.registry.close());
    this.wss.close();
    if (this.options.presence) {
      await bounded(
        'clearing presence rows',
        this.options.presence.clearNode(this.nodeId).catch((err: Error) => {
          this.log.warn({ err: err.message }, 'could not clear presence rows at shutdown');
        }),
      );
    }
  }
}
