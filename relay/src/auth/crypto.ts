// Secrets at rest (DESIGN 4.5, 5.1): the master key and what it encrypts (AES-256-GCM),
// SHA-256 hashes of the org/user secrets and element tokens, random 256-bit secrets.
//
// Master key rules: G2C_MASTER_KEY (base64 of 32 bytes) wins. Without it, the embedded mode
// keeps a generated key in <data-dir>/master.key (0600); an external store without a key is
// a start-up error, since every relay sharing that store must decrypt what the others wrote.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Ciphertext format version; a later key rotation can add `v2:<kid>:...`. */
const PREFIX = 'v1:';

export class MasterKeyError extends Error {
  readonly code = 'ERR_MASTER_KEY';
}

export class MasterKey {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) {
      throw new MasterKeyError(`the master key must be ${KEY_BYTES} bytes, got ${key.length}`);
    }
    this.#key = Buffer.from(key);
  }

  static fromBase64(text: string, origin = 'G2C_MASTER_KEY'): MasterKey {
    const trimmed = text.trim();
    const key = Buffer.from(trimmed, 'base64');
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) || key.length !== KEY_BYTES) {
      throw new MasterKeyError(
        `${origin} must be the base64 of ${KEY_BYTES} random bytes (for example: openssl rand -base64 32)`,
      );
    }
    return new MasterKey(key);
  }

  static generate(): MasterKey {
    return new MasterKey(randomBytes(KEY_BYTES));
  }

  toBase64(): string {
    return this.#key.toString('base64');
  }

  /** `v1:` + base64(iv | tag | ciphertext). A fresh IV per call. */
  encrypt(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** Throws MasterKeyError when the text was not produced under this key or was altered. */
  decrypt(text: string): string {
    if (!text.startsWith(PREFIX)) throw new MasterKeyError('unknown ciphertext format');
    const raw = Buffer.from(text.slice(PREFIX.length), 'base64');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new MasterKeyError('ciphertext too short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new MasterKeyError(
        'cannot decrypt a stored secret with this master key: was G2C_MASTER_KEY or master.key changed?',
      );
    }
  }

  /** Never print the key by accident. */
  toJSON(): string {
    return '[master key]';
  }
}

/**
 * Resolves the master key by the rules above. `env` is G2C_MASTER_KEY's value if set.
 * Returns where it came from, for the start-up log (never the key).
 */
export async function loadMasterKey(options: {
  env?: string;
  dataDir: string;
  externalStore: boolean;
}): Promise<{ key: MasterKey; source: string }> {
  if (options.env) return { key: MasterKey.fromBase64(options.env), source: 'G2C_MASTER_KEY' };
  if (options.externalStore) {
    throw new MasterKeyError(
      'G2C_MASTER_KEY is required with --database-url: every relay sharing the store must use the same key ' +
        '(create one with: openssl rand -base64 32)',
    );
  }
  const file = join(options.dataDir, 'master.key');
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) return { key: MasterKey.fromBase64(text, file), source: file };
  const key = MasterKey.generate();
  // wx: two processes racing on a fresh data dir must not overwrite each other's key.
  try {
    await writeFile(file, `${key.toBase64()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      return { key: MasterKey.fromBase64(await readFile(file, 'utf8'), file), source: file };
    }
    throw err;
  }
  await chmod(file, 0o600);
  return { key, source: `${file} (generated)` };
}

/** Hex SHA-256: how org/user secrets and element tokens are stored. */
export function sha256(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** A random 256-bit secret, base64url (43 characters). */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url');
}
