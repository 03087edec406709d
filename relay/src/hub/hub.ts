// The tunnel hub: the relay's side of every agent connection. It accepts agents on
// AGENT_PATH (upgrade.ts: token checked before the upgrade), keeps one mux session per agent
// (registry.ts: presence, keepalive, removal), and opens streams to targets through them
// (open-stream.ts). Everything above it (engine pools, forward) sees only
// `openStream(tunnelId, host, port)` and the pg socket of pg-socket.ts.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';

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

export class Hub {
  constructor(readonly options: HubOptions) {}

  /** Handles an HTTP upgrade on AGENT_PATH: answers 401/426/429 itself or accepts the agent. */
  handleUpgrade(_req: IncomingMessage, socket: Duplex, _head: Buffer): void {
    socket.destroy();
  }

  /**
   * A byte stream to host:port through one of the tunnel's agents, after the agent said ok.
   * Rejects with `.code` = the agent's code (not_allowed, connect_refused, ...) or tunnel_offline.
   */
  async openStream(_tunnelId: string, _host: string, _port: number): Promise<Duplex> {
    throw Object.assign(new Error('no agent is connected to this tunnel'), { code: 'tunnel_offline' });
  }

  /** Live status of a tunnel's agents on this relay. */
  status(_tunnelId: string): TunnelStatus {
    return { status: 'offline', agents: [] };
  }

  /** Closes every session of the tunnel (token rotated, tunnel deleted). */
  disconnectTunnel(_tunnelId: string, _reason: string): void {}

  /** Number of agent sessions held by this relay (all tunnels). */
  get sessionCount(): number {
    return 0;
  }

  /** Closes every session and forgets this node's presence rows. */
  async close(): Promise<void> {}
}
