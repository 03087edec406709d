// The agents this relay holds: one mux session per accepted agent WebSocket, several per
// tunnel. In charge of each session's life: keepalive (the mux pings; a peer that stops
// answering is destroyed with ERR_KEEPALIVE_TIMEOUT), presence rows (connected, seen,
// disconnected, serialised per session so that a fast disconnect cannot leave a row behind),
// and removal: when a session is lost, its open streams fail at once and it leaves every map.
// A new session never waits for, nor replaces, an older one of the same tunnel.
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Session, type Stream } from '@g2c/mux';
import { CloseCode, TunnelError, websocketDuplex } from '@g2c/tunnel';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { HubPresence } from './hub.js';
import type { VerifiedAgent } from './upgrade.js';

export interface RegistryOptions {
  nodeId: string;
  presence?: HubPresence;
  logger: Logger;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  presenceRefreshMs: number;
}

/** One connected agent. */
export class AgentSession {
  readonly id = randomUUID();
  readonly connectedAt = new Date();
  /** Streams this relay opened through the agent and that are not closed yet. */
  readonly streams = new Set<Stream>();
  /** The agent sent GoAway (it is draining): open nothing new on it. */
  draining = false;
  closed = false;
  /** Presence writes for this session, in order. */
  presenceChain: Promise<void> = Promise.resolve();

  constructor(
    readonly agent: VerifiedAgent,
    readonly session: Session,
    readonly ws: WebSocket,
    private readonly socket: Duplex & { bytesRead?: number; bytesWritten?: number },
  ) {}

  get tunnelId(): string {
    return this.agent.tunnelId;
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  /** Bytes received from the agent on the wire (WebSocket framing included). */
  get bytesIn(): number {
    return this.socket.bytesRead ?? 0;
  }

  get bytesOut(): number {
    return this.socket.bytesWritten ?? 0;
  }

  get usable(): boolean {
    return !this.closed && !this.draining && !this.session.destroyed;
  }
}

export class Registry {
  private readonly byTunnel = new Map<string, Set<AgentSession>>();
  private readonly all = new Set<AgentSession>();
  private readonly refreshTimer: NodeJS.Timeout;

  constructor(private readonly options: RegistryOptions) {
    this.refreshTimer = setInterval(() => this.refreshPresence(), options.presenceRefreshMs);
    this.refreshTimer.unref();
  }

  get size(): number {
    return this.all.size;
  }

  /** The tunnel's sessions (usable or not). */
  agents(tunnelId: string): AgentSession[] {
    return [...(this.byTunnel.get(tunnelId) ?? [])];
  }

  /** Takes over an accepted agent WebSocket. */
  add(ws: WebSocket, agent: VerifiedAgent, socket: Duplex): AgentSession {
    const duplex = websocketDuplex(ws);
    const session = new Session(duplex, {
      client: true,
      keepaliveIntervalMs: this.options.keepaliveIntervalMs,
      keepaliveTimeoutMs: this.options.keepaliveTimeoutMs,
    });
    const entry = new AgentSession(agent, session, ws, socket);
    const log = this.options.logger.child({ tunnelId: agent.tunnelId, agentSession: entry.id });
    let lastError: (Error & { code?: string }) | undefined;

    // The agent never opens streams (DESIGN 4.1): refuse any it tries.
    session.on('stream', (stream) => stream.destroy());
    session.on('goaway', () => {
      entry.draining = true;
      log.info({ activeStreams: entry.activeStreams }, 'agent is draining (GoAway): no new streams on it');
    });
    session.on('error', (err: Error & { code?: string }) => {
      lastError = err;
    });
    const reason = () =>
      lastError?.code === 'ERR_KEEPALIVE_TIMEOUT'
        ? 'keepalive timeout: the agent stopped answering pings'
        : lastError
          ? `${lastError.code ?? 'error'}: ${lastError.message}`
          : 'connection closed';
    session.once('close', () => this.remove(entry, reason()));
    duplex.on('error', () => {}); // surfaced through the session
    // The session's own 'error' (say, a keepalive timeout) comes in the same round of
    // callbacks: let it be recorded first, so that the log says why.
    duplex.once('close', () => setImmediate(() => this.remove(entry, reason())));

    let set = this.byTunnel.get(agent.tunnelId);
    if (!set) {
      set = new Set();
      this.byTunnel.set(agent.tunnelId, set);
    }
    set.add(entry);
    this.all.add(entry);
    log.info(
      {
        hostname: agent.hostname,
        version: agent.version,
        remoteAddress: agent.remoteAddress,
        agentsOnTunnel: set.size,
      },
      'agent connected',
    );
    this.presence(entry, (p) =>
      p.agentConnected({
        sessionId: entry.id,
        tunnelId: agent.tunnelId,
        nodeId: this.options.nodeId,
        version: agent.version || undefined,
        hostname: agent.hostname || undefined,
        remoteAddress: agent.remoteAddress,
        connectedAt: entry.connectedAt,
      }),
    );
    return entry;
  }

  /** Removes a session: its streams fail now, its presence row goes. Idempotent. */
  remove(entry: AgentSession, reason: string, closeCode?: number): void {
    if (entry.closed) return;
    entry.closed = true;
    const set = this.byTunnel.get(entry.tunnelId);
    set?.delete(entry);
    if (set?.size === 0) this.byTunnel.delete(entry.tunnelId);
    this.all.delete(entry);
    const lost = new TunnelError('tunnel_offline', `the agent connection was lost (${reason}): retry the request`);
    for (const stream of entry.streams) stream.destroy(lost);
    entry.streams.clear();
    if (closeCode !== undefined && entry.ws.readyState === entry.ws.OPEN) {
      entry.ws.close(closeCode, reason.slice(0, 120));
    }
    entry.session.destroy();
    this.options.logger.info(
      {
        tunnelId: entry.tunnelId,
        agentSession: entry.id,
        reason,
        lifetimeMs: Date.now() - entry.connectedAt.getTime(),
      },
      'agent disconnected',
    );
    this.presence(entry, (p) => p.agentDisconnected(entry.id));
  }

  /** Closes every session of a tunnel (token rotated or tunnel deleted). */
  disconnectTunnel(tunnelId: string, reason: string): number {
    const agents = this.agents(tunnelId);
    for (const entry of agents) this.remove(entry, reason, CloseCode.TOKEN_REVOKED);
    return agents.length;
  }

  /** Closes every session (relay shutdown) and waits for the presence writes. */
  async close(): Promise<void> {
    clearInterval(this.refreshTimer);
    const entries = [...this.all];
    for (const entry of entries) this.remove(entry, 'relay shutting down', CloseCode.GOING_AWAY);
    await Promise.all(entries.map((e) => e.presenceChain));
  }

  private refreshPresence(): void {
    for (const entry of this.all) this.presence(entry, (p) => p.agentSeen(entry.id));
  }

  private presence(entry: AgentSession, write: (p: HubPresence) => Promise<unknown>): void {
    const { presence, logger } = this.options;
    if (!presence) return;
    entry.presenceChain = entry.presenceChain
      .then(() => write(presence))
      .then(
        () => {},
        (err: Error) => logger.warn({ agentSession: entry.id, err: err.message }, 'presence write failed'),
      );
  }
}
