// Tunnels: a name inside an organization and the jti of its one valid token. Every read
// takes the organization id, so another organization's tunnel is simply not found.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';

export interface Tunnel {
  id: string;
  orgId: string;
  name: string;
  tokenJti: string;
  createdAt: Date;
}

interface Row {
  id: string;
  org_id: string;
  name: string;
  token_jti: string;
  created_at: Date;
}

const COLUMNS = 'id, org_id, name, token_jti, created_at';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What a tunnel name may be (checked at creation by the tunnels API; used in URLs and CLIs). */
export const TUNNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function toTunnel(row: Row): Tunnel {
  return { id: row.id, orgId: row.org_id, name: row.name, tokenJti: row.token_jti, createdAt: row.created_at };
}

export class TunnelNameTakenError extends Error {
  readonly code = 'ERR_TUNNEL_NAME_TAKEN';
}

export class TunnelStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Inserts a tunnel whose token jti is `jti`; a name already used in the organization throws TunnelNameTakenError. */
  async create(orgId: string, name: string, jti: string): Promise<Tunnel> {
    try {
      const { rows } = await this.pool.query<Row>(
        `insert into tunnels (id, org_id, name, token_jti) values ($1, $2, $3, $4) returning ${COLUMNS}`,
        [randomUUID(), orgId, name, jti],
      );
      return toTunnel(rows[0]!);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new TunnelNameTakenError(`a tunnel named "${name}" already exists in this organization`);
      }
      throw err;
    }
  }

  async count(orgId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('select count(*)::int as n from tunnels where org_id = $1', [
      orgId,
    ]);
    return rows[0]!.n;
  }

  async list(orgId: string): Promise<Tunnel[]> {
    const { rows } = await this.pool.query<Row>(
      `select ${COLUMNS} from tunnels where org_id = $1 order by created_at, id`,
      [orgId],
    );
    return rows.map(toTunnel);
  }

  /** By id, or by name within the organization (ids are UUIDs; anything else is a name). */
  async find(orgId: string, idOrName: string): Promise<Tunnel | undefined> {
    const byId = UUID.test(idOrName);
    // No tunnel can have any other name; such input (a NUL byte, say, which PostgreSQL refuses
    // in text) must be "not found", never a database error.
    if (!byId && !TUNNEL_NAME.test(idOrName)) return undefined;
    const { rows } = await this.pool.query<Row>(
      `select ${COLUMNS} from tunnels where org_id = $1 and ${byId ? 'id = $2::uuid' : 'name = $2'}`,
      [orgId, idOrName],
    );
    return rows[0] && toTunnel(rows[0]);
  }

  /** Any organization: for token verification, which then checks the org claim. */
  async get(id: string): Promise<Tunnel | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await this.pool.query<Row>(`select ${COLUMNS} from tunnels where id = $1`, [id]);
    return rows[0] && toTunnel(rows[0]);
  }

  /** Replaces the valid jti; false when the tunnel no longer exists. */
  async setJti(id: string, jti: string): Promise<boolean> {
    const result = await this.pool.query('update tunnels set token_jti = $2 where id = $1', [id, jti]);
    return result.rowCount === 1;
  }

  /** Number of element instances using the tunnel (0 while the engine's table does not exist). */
  async instancesUsing(id: string): Promise<number> {
    const { rows } = await this.pool.query<{ exists: boolean }>(
      `select to_regclass('instances') is not null as exists`,
    );
    if (!rows[0]!.exists) return 0;
    const used = await this.pool.query<{ n: number }>('select count(*)::int as n from instances where tunnel_id = $1', [
      id,
    ]);
    return used.rows[0]!.n;
  }

  async delete(orgId: string, id: string): Promise<boolean> {
    const result = await this.pool.query('delete from tunnels where org_id = $1 and id = $2', [orgId, id]);
    return result.rowCount === 1;
  }
}
