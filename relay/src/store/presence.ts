// Agent presence (DESIGN 5.1): one row per agent session, written by the relay node that holds
// it, so that later several relays can find each other's agents. The hub calls these; a
// failing write is logged by the caller and never breaks a session.
import type pg from 'pg';

export interface AgentPresence {
  sessionId: string;
  tunnelId: string;
  nodeId: string;
  version?: string;
  hostname?: string;
  remoteAddress?: string;
  connectedAt: Date;
}

export interface PresenceRow extends AgentPresence {
  lastSeen: Date;
}

export class PresenceStore {
  constructor(private readonly pool: pg.Pool) {}

  async agentConnected(p: AgentPresence): Promise<void> {
    await this.pool.query(
      `insert into agent_presence
         (session_id, tunnel_id, node_id, version, hostname, remote_address, connected_at, last_seen)
       values ($1, $2, $3, $4, $5, $6, $7, now())
       on conflict (session_id) do update set last_seen = now()`,
      [
        p.sessionId,
        p.tunnelId,
        p.nodeId,
        p.version ?? null,
        p.hostname ?? null,
        p.remoteAddress ?? null,
        p.connectedAt,
      ],
    );
  }

  async agentSeen(sessionId: string): Promise<void> {
    await this.pool.query('update agent_presence set last_seen = now() where session_id = $1', [sessionId]);
  }

  async agentDisconnected(sessionId: string): Promise<void> {
    await this.pool.query('delete from agent_presence where session_id = $1', [sessionId]);
  }

  /** Removes every row of a node: at start (rows a crash left behind) and at shutdown. Returns how many. */
  async clearNode(nodeId: string): Promise<number> {
    const result = await this.pool.query('delete from agent_presence where node_id = $1', [nodeId]);
    return result.rowCount ?? 0;
  }

  /**
   * Removes rows not refreshed for `olderThanMs` (the hub refreshes its rows every 30 s): rows of
   * relays that died and never came back under the same node id (a container replaced, say).
   */
  async clearStale(olderThanMs: number): Promise<number> {
    const result = await this.pool.query(
      `delete from agent_presence where last_seen < now() - make_interval(secs => $1::double precision / 1000)`,
      [olderThanMs],
    );
    return result.rowCount ?? 0;
  }

  async listTunnel(tunnelId: string): Promise<PresenceRow[]> {
    const { rows } = await this.pool.query(
      `select session_id, tunnel_id, node_id, version, hostname, remote_address, connected_at, last_seen
         from agent_presence where tunnel_id = $1 order by connected_at`,
      [tunnelId],
    );
    return rows.map((r) => ({
      sessionId: r.session_id,
      tunnelId: r.tunnel_id,
      nodeId: r.node_id,
      version: r.version ?? undefined,
      hostname: r.hostname ?? undefined,
      remoteAddress: r.remote_address ?? undefined,
      connectedAt: r.connected_at,
      lastSeen: r.last_seen,
    }));
  }

  async count(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('select count(*)::int as n from agent_presence');
    return rows[0]!.n;
  }
}
