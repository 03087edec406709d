// Tunnel tokens (DESIGN 4.5): EdDSA (Ed25519) JWTs signed by the relay, claims iss (this
// installation's issuer), sub (tunnel id), org, jti, iat, and `kid` in the header. The store
// keeps only each tunnel's current jti, so rotating or deleting a tunnel revokes every older
// token at once. The signing key pair is generated at first start and kept in the store with
// its private half encrypted under the master key.
//
// verify() failure codes, on which the agent branches:
//   token_missing  no token was presented
//   token_invalid  not a JWT, not signed by a key of this relay, wrong issuer or claims
//   token_revoked  well signed by this relay, but rotated away or its tunnel deleted:
//                  retrying cannot help, so the agent stops.
import { randomUUID } from 'node:crypto';
import {
  type CryptoKey,
  decodeProtectedHeader,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { Store } from '../store/db.js';
import type { MasterKey } from './crypto.js';

const ALGORITHM = 'EdDSA';
/** What a kid of ours can look like (UUIDs; room for other printable ids of a later rotation). */
const KID_SHAPE = /^[A-Za-z0-9._:-]{1,128}$/;

export type TokenErrorCode = 'token_missing' | 'token_invalid' | 'token_revoked';

export class TokenError extends Error {
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface VerifiedToken {
  tunnelId: string;
  orgId: string;
  jti: string;
}

export class TokenService {
  readonly #store: Store;
  readonly #signingKid: string;
  readonly #signingKey: CryptoKey;
  /** Public keys by kid; filled from the store on first sight of a kid. */
  readonly #publicKeys = new Map<string, CryptoKey>();
  readonly issuer: string;

  private constructor(store: Store, issuer: string, kid: string, key: CryptoKey) {
    this.#store = store;
    this.issuer = issuer;
    this.#signingKid = kid;
    this.#signingKey = key;
  }

  /** Loads (or, on a fresh store, generates) the issuer and the signing key. */
  static async create(store: Store, masterKey: MasterKey): Promise<TokenService> {
    const issuer = await store.settings.getOrCreate('token_issuer', () => `urn:g2c:relay:${randomUUID()}`);
    const stored = await store.signingKeys.ensureCurrent(async () => {
      const pair = await generateKeyPair(ALGORITHM, { crv: 'Ed25519', extractable: true });
      const kid = randomUUID();
      return {
        kid,
        algorithm: ALGORITHM,
        publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg: ALGORITHM },
        privateKeyEnc: masterKey.encrypt(await exportPKCS8(pair.privateKey)),
      };
    });
    const privateKey = await importPKCS8(masterKey.decrypt(stored.privateKeyEnc), ALGORITHM);
    return new TokenService(store, issuer, stored.kid, privateKey);
  }

  /** A new token for the tunnel; its jti becomes the only valid one (older tokens are revoked). */
  async issue(tunnel: { id: string; orgId: string }): Promise<string> {
    const jti = randomUUID();
    if (!(await this.#store.tunnels.setJti(tunnel.id, jti))) {
      throw new TokenError('token_revoked', `tunnel ${tunnel.id} does not exist`);
    }
    return new SignJWT({ org: tunnel.orgId })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.#signingKid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(tunnel.id)
      .setJti(jti)
      .setIssuedAt()
      .sign(this.#signingKey);
  }

  async verify(token: string | undefined | null): Promise<VerifiedToken> {
    if (!token?.trim()) {
      throw new TokenError('token_missing', 'no tunnel token: send Authorization: Bearer <tunnel token>');
    }
    const invalid = (why: string) => new TokenError('token_invalid', `the tunnel token is not valid: ${why}`);
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== ALGORITHM) throw invalid(`algorithm ${String(header.alg)} is not accepted`);
      kid = header.kid;
    } catch (err) {
      if (err instanceof TokenError) throw err;
      throw invalid('it is not a JWT');
    }
    if (!kid) throw invalid('it names no signing key');
    // Our kids are UUIDs. Anything else is not ours, and must not reach the store: a NUL byte,
    // say, is a database error (503, uncounted by the upgrade rate limit) instead of a 401.
    if (typeof kid !== 'string' || !KID_SHAPE.test(kid)) throw invalid('it was not signed by this relay');
    const key = await this.#publicKey(kid);
    if (!key) throw invalid('it was not signed by this relay');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, { issuer: this.issuer, algorithms: [ALGORITHM] }));
    } catch (err) {
      throw invalid(
        (err as { code?: string }).code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? 'wrong issuer' : 'bad signature',
      );
    }
    const { sub, org, jti } = payload;
    if (typeof sub !== 'string' || typeof org !== 'string' || typeof jti !== 'string') {
      throw invalid('claims sub, org and jti are required');
    }
    const tunnel = await this.#store.tunnels.get(sub);
    if (!tunnel) throw new TokenError('token_revoked', 'the tunnel of this token was deleted');
    if (tunnel.orgId !== org) throw invalid('organization mismatch');
    if (tunnel.tokenJti !== jti) {
      throw new TokenError('token_revoked', 'this token was replaced by a newer one (rotated): use the new token');
    }
    return { tunnelId: tunnel.id, orgId: tunnel.orgId, jti };
  }

  async #publicKey(kid: string): Promise<CryptoKey | undefined> {
    const cached = this.#publicKeys.get(kid);
    if (cached) return cached;
    const stored = await this.#store.signingKeys.get(kid);
    if (!stored) return undefined;
    const key = (await importJWK(stored.publicJwk, ALGORITHM)) as CryptoKey;
    this.#publicKeys.set(kid, key);
    return key;
  }
}
