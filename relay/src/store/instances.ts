// The `instances` table (migration 002): every read and write is scoped to an organization, so
// another organization's instance is simply not found. The password is encrypted with the
// master key here and nowhere else; the element token is stored as its SHA-256 only.
import { randomUUID } from 'node:crypto';
import { type MasterKey, randomSecret, sha256 } from '../auth/crypto.js';

export interface StoreQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

interface Row {
  id: string;
  org_id: string;
  name: string;
  element_key: string;
  tags: string[];
  configuration: Record<string, unknown>;
  password_enc: string;
  tunnel_id: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface InstanceRecord {
  id: string;
  orgId: string;
  name: string;
  elementKey: string;
  tags: string[];
  /** Configuration keys without the password. */
  configuration: Record<string, unknown>;
  /** Decrypted password (never serialise a record as is). */
  password: string;
  tunnelId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What a caller gives to create or change an instance: a record without its ids and times. */
export type InstanceInput = Omit<InstanceRecord, 'id' | 'orgId' | 'createdAt' | 'updatedAt'>;

const COLUMNS = 'id, org_id, name, element_key, tags, configuration, password_enc, tunnel_id, created_at, updated_at';

export class InstanceStore {
  constructor(
    private readonly db: StoreQueryable,
    private readonly key: Pick<MasterKey, 'encrypt' | 'decrypt'>,
  ) {}

  private toRecord(row: Row): InstanceRecord {
    return {
      id: row.id,
      orgId: row.org_id,
      name: row.name,
      elementKey: row.element_key,
      tags: row.tags,
      configuration: row.configuration,
      password: this.key.decrypt(row.password_enc),
      tunnelId: row.tunnel_id,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }

  /** Creates an instance; returns it with its element token (the only time the token exists in clear). */
  async create(orgId: string, input: InstanceInput): Promise<{ record: InstanceRecord; token: string }> {
    const token = randomSecret();
    const { rows } = await this.db.query(
      `insert into instances (id, org_id, name, element_key, tags, configuration, password_enc, tunnel_id, token_hash)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning ${COLUMNS}`,
      [
        randomUUID(),
        orgId,
        input.name,
        input.elementKey,
        input.tags,
        JSON.stringify(input.configuration),
        this.key.encrypt(input.password),
        input.tunnelId,
        sha256(token),
      ],
    );
    return { record: this.toRecord(rows[0] as Row), token };
  }

  async list(orgId: string): Promise<InstanceRecord[]> {
    const { rows } = await this.db.query(`select ${COLUMNS} from instances where org_id = $1 order by created_at, id`, [
      orgId,
    ]);
    return (rows as Row[]).map((r) => this.toRecord(r));
  }

  async get(orgId: string, id: string): Promise<InstanceRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await this.db.query(`select ${COLUMNS} from instances where org_id = $1 and id = $2`, [orgId, id]);
    return rows[0] ? this.toRecord(rows[0] as Row) : undefined;
  }

  /** Any organization's: for the engine's runtimes, whose callers check the organization themselves. */
  async getById(id: string): Promise<InstanceRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await this.db.query(`select ${COLUMNS} from instances where id = $1`, [id]);
    return rows[0] ? this.toRecord(rows[0] as Row) : undefined;
  }

  async update(orgId: string, id: string, input: InstanceInput): Promise<InstanceRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await this.db.query(
      `update instances set name = $3, element_key = $4, tags = $5, configuration = $6, password_enc = $7,
              tunnel_id = $8, updated_at = clock_timestamp()
       where org_id = $1 and id = $2 returning ${COLUMNS}`,
      [
        orgId,
        id,
        input.name,
        input.elementKey,
        input.tags,
        JSON.stringify(input.configuration),
        this.key.encrypt(input.password),
        input.tunnelId,
      ],
    );
    return rows[0] ? this.toRecord(rows[0] as Row) : undefined;
  }

  async delete(orgId: string, id: string): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rowCount } = await this.db.query('delete from instances where org_id = $1 and id = $2', [orgId, id]);
    return (rowCount ?? 0) > 0;
  }

  /** The instance an element token belongs to (credentials.ts's `Element` check). */
  async byTokenHash(tokenHash: string): Promise<{ id: string; orgId: string } | undefined> {
    const { rows } = await this.db.query('select id, org_id from instances where token_hash = $1', [tokenHash]);
    const row = rows[0] as Pick<Row, 'id' | 'org_id'> | undefined;
    return row ? { id: row.id, orgId: row.org_id } : undefined;
  }

  /** How many instances use a tunnel (DELETE /tunnels/{id} answers 409 while any do). */
  async countByTunnel(tunnelId: string): Promise<number> {
    const { rows } = await this.db.query('select count(*)::int as n from instances where tunnel_id = $1', [tunnelId]);
    return (rows[0] as { n: number }).n;
  }
}

function isUuid(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
}
