// The relay's token signing keys: public half as a JWK, private half (PKCS#8 PEM) encrypted
// with the master key. The newest key that is not retired signs; every stored key verifies,
// so a key can be rotated by adding one and retiring the old one later.
import type pg from 'pg';

export interface StoredSigningKey {
  kid: string;
  algorithm: string;
  publicJwk: Record<string, unknown>;
  privateKeyEnc: string;
  createdAt: Date;
  retiredAt?: Date;
}

function toKey(r: Record<string, unknown>): StoredSigningKey {
  return {
    kid: r.kid as string,
    algorithm: r.algorithm as string,
    publicJwk: r.public_jwk as Record<string, unknown>,
    privateKeyEnc: r.private_key_enc as string,
    createdAt: r.created_at as Date,
    retiredAt: (r.retired_at as Date | null) ?? undefined,
  };
}

export class SigningKeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async get(kid: string): Promise<StoredSigningKey | undefined> {
    const { rows } = await this.pool.query('select * from signing_keys where kid = $1', [kid]);
    return rows[0] && toKey(rows[0]);
  }

  /** The key that signs: the newest one not retired. */
  async current(): Promise<StoredSigningKey | undefined> {
    const { rows } = await this.pool.query(
      'select * from signing_keys where retired_at is null order by created_at desc, kid limit 1',
    );
    return rows[0] && toKey(rows[0]);
  }

  /**
   * Returns the current key, creating it with `generate` when there is none. A transaction-level
   * advisory lock makes relays that start together agree on one key.
   */
  async ensureCurrent(
    generate: () => Promise<Omit<StoredSigningKey, 'createdAt' | 'retiredAt'>>,
  ): Promise<StoredSigningKey> {
    const existing = await this.current();
    if (existing) return existing;
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      await client.query(`select pg_advisory_xact_lock(hashtext('g2c-relay:signing-key'))`);
      const { rows } = await client.query(
        'select * from signing_keys where retired_at is null order by created_at desc, kid limit 1',
      );
      let key: StoredSigningKey;
      if (rows[0]) key = toKey(rows[0]);
      else {
        const fresh = await generate();
        const inserted = await client.query(
          'insert into signing_keys (kid, algorithm, public_jwk, private_key_enc) values ($1, $2, $3, $4) returning *',
          [fresh.kid, fresh.algorithm, JSON.stringify(fresh.publicJwk), fresh.privateKeyEnc],
        );
        key = toKey(inserted.rows[0]);
      }
      await client.query('commit');
      return key;
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async retire(kid: string): Promise<void> {
    await this.pool.query('update signing_keys set retired_at = now() where kid = $1 and retired_at is null', [kid]);
  }
}
