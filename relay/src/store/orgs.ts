// Organizations and their users. Secrets are random 256-bit values; only their SHA-256
// hashes are stored, so a lookup is by hash and a lost secret cannot be recovered.
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { randomSecret, sha256 } from '../auth/crypto.js';

export interface Organization {
  id: string;
  name: string;
  createdAt: Date;
}

export interface NewOrganization {
  organization: Organization;
  userId: string;
  /** Shown once, to whoever created the organization. */
  organizationSecret: string;
  userSecret: string;
}

export class OrgStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Creates an organization with one user (`admin` by default) and returns their secrets. */
  async create(name: string, userName = 'admin'): Promise<NewOrganization> {
    const organizationSecret = randomSecret();
    const userSecret = randomSecret();
    const orgId = randomUUID();
    const userId = randomUUID();
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query<{ created_at: Date }>(
        'insert into organizations (id, name, secret_hash) values ($1, $2, $3) returning created_at',
        [orgId, name, sha256(organizationSecret)],
      );
      await client.query('insert into users (id, org_id, name, secret_hash) values ($1, $2, $3, $4)', [
        userId,
        orgId,
        userName,
        sha256(userSecret),
      ]);
      await client.query('commit');
      return {
        organization: { id: orgId, name, createdAt: rows[0]!.created_at },
        userId,
        organizationSecret,
        userSecret,
      };
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async count(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('select count(*)::int as n from organizations');
    return rows[0]!.n;
  }

  /** The (org, user) pair both secrets belong to, or undefined when either is wrong or they do not match. */
  async authenticate(orgSecret: string, userSecret: string): Promise<{ orgId: string; userId: string } | undefined> {
    const { rows } = await this.pool.query<{ org_id: string; user_id: string }>(
      `select o.id as org_id, u.id as user_id
         from organizations o join users u on u.org_id = o.id
        where o.secret_hash = $1 and u.secret_hash = $2`,
      [sha256(orgSecret), sha256(userSecret)],
    );
    const row = rows[0];
    return row && { orgId: row.org_id, userId: row.user_id };
  }
}
