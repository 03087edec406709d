// Tunnel tokens against a real store: every way a token can be wrong, and the code it gets.
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../../../test/helpers/postgres.js';
import { createLogger } from '../logger.js';
import { createStore, type Store } from '../store/db.js';
import { migrate } from '../store/migrations.js';
import { MasterKey } from './crypto.js';
import { type TokenErrorCode, TokenService } from './tokens.js';

let db: TestPostgres;
let store: Store;
let otherStore: Store;
let tokens: TokenService;
let otherRelay: TokenService;
let orgId: string;
const masterKey = MasterKey.generate();

async function openStore(database: string): Promise<Store> {
  await db.createDatabase(database);
  const pool = new pg.Pool({ connectionString: db.url(database), max: 4 });
  const store = createStore(pool);
  await migrate(pool, createLogger('silent'));
  return store;
}

async function codeOf(token: string | undefined, service = tokens): Promise<TokenErrorCode | 'ok'> {
  try {
    await service.verify(token);
    return 'ok';
  } catch (err) {
    return (err as { code: TokenErrorCode }).code;
  }
}

beforeAll(async () => {
  db = await startTestPostgres();
  store = await openStore('relay_a');
  otherStore = await openStore('relay_b');
  tokens = await TokenService.create(store, masterKey);
  otherRelay = await TokenService.create(otherStore, MasterKey.generate());
  orgId = (await store.orgs.create('default')).organization.id;
});
afterAll(async () => {
  await store?.close();
  await otherStore?.close();
  await db?.stop();
});

describe('TokenService', () => {
  it('issues a token that verifies, with the claims of DESIGN 4.5', async () => {
    const tunnel = await store.tunnels.create(orgId, 't1', 'placeholder');
    const token = await tokens.issue(tunnel);
    const verified = await tokens.verify(token);
    expect(verified).toMatchObject({ tunnelId: tunnel.id, orgId });
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()));
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'JWT' });
    expect(typeof header.kid).toBe('string');
    expect(payload).toMatchObject({ iss: tokens.issuer, sub: tunnel.id, org: orgId, jti: verified.jti });
    expect(typeof payload.iat).toBe('number');
  });

  it('keeps the signing key in the store, private half encrypted, and reuses it after a restart', async () => {
    const { rows } = await store.pool.query('select kid, private_key_enc, public_jwk from signing_keys');
    expect(rows).toHaveLength(1);
    expect(rows[0].private_key_enc).toMatch(/^v1:/);
    expect(rows[0].private_key_enc).not.toContain('PRIVATE KEY');
    expect(rows[0].public_jwk.d).toBeUndefined();
    const tunnel = await store.tunnels.create(orgId, 'restart', 'p');
    const token = await tokens.issue(tunnel);
    const { rows: settings } = await store.pool.query(`select value from relay_settings where key = 'token_issuer'`);
    const restarted = await TokenService.create(store, masterKey);
    expect(restarted.issuer).toBe(tokens.issuer);
    expect(await codeOf(token, restarted)).toBe('ok');
    // Another master key cannot read the private key: the relay refuses to start rather than re-keying.
    await expect(TokenService.create(store, MasterKey.generate())).rejects.toThrow(/master key/);
    expect(settings[0].value).toBe(tokens.issuer);
    expect(await codeOf(token)).toBe('ok');
  });

  it('answers token_missing, token_invalid and token_revoked where each belongs', async () => {
    const tunnel = await store.tunnels.create(orgId, 't2', 'placeholder');
    const old = await tokens.issue(tunnel);
    expect(await codeOf(undefined)).toBe('token_missing');
    expect(await codeOf('')).toBe('token_missing');
    expect(await codeOf('not-a-jwt')).toBe('token_invalid');
    expect(await codeOf('a.b.c')).toBe('token_invalid');

    // Altered payload (signature no longer matches).
    const [h, p, s] = old.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, org: 'x' })).toString('base64url')}.${s}`;
    expect(await codeOf(tampered)).toBe('token_invalid');

    // Forged: same kid and claims, signed by a key the relay never had.
    const { privateKey } = await (await import('jose')).generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const header = JSON.parse(Buffer.from(h!, 'base64url').toString());
    const forged = await new SignJWT(claims).setProtectedHeader(header).sign(privateKey);
    expect(await codeOf(forged)).toBe('token_invalid');

    // A kid that cannot be ours (NUL byte, over-long, not a string): 401, never a store error.
    for (const kid of ['a\u0000b', 'k'.repeat(5000), 42]) {
      const odd = `${Buffer.from(JSON.stringify({ ...header, kid })).toString('base64url')}.${p}.${s}`;
      expect(await codeOf(odd), String(kid).slice(0, 8)).toBe('token_invalid');
    }

    // Another relay (its own issuer and key), even for a tunnel with the same id.
    const foreignOrg = (await otherStore.orgs.create('o')).organization.id;
    const foreign = await otherStore.tunnels.create(foreignOrg, 'f', 'p');
    expect(await codeOf(await otherRelay.issue(foreign))).toBe('token_invalid');

    // Rotated away.
    const fresh = await tokens.issue(tunnel);
    expect(await codeOf(old)).toBe('token_revoked');
    expect(await codeOf(fresh)).toBe('ok');

    // Deleted tunnel.
    await store.tunnels.delete(orgId, tunnel.id);
    expect(await codeOf(fresh)).toBe('token_revoked');
  });
});
