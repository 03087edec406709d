import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMasterKey, MasterKey, MasterKeyError, randomSecret, sha256 } from './crypto.js';

describe('MasterKey', () => {
  it('round-trips text and uses a fresh IV every time', () => {
    const key = MasterKey.generate();
    const a = key.encrypt('pässword');
    const b = key.encrypt('pässword');
    expect(a).not.toBe(b);
    expect(a).not.toContain('pässword');
    expect(key.decrypt(a)).toBe('pässword');
    expect(key.decrypt(key.encrypt(''))).toBe('');
  });

  it('rejects a ciphertext made under another key or altered', () => {
    const key = MasterKey.generate();
    const text = key.encrypt('secret');
    expect(() => MasterKey.generate().decrypt(text)).toThrow(MasterKeyError);
    const raw = Buffer.from(text.slice(3), 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => key.decrypt(`v1:${raw.toString('base64')}`)).toThrow(/cannot decrypt/);
    expect(() => key.decrypt('garbage')).toThrow(MasterKeyError);
  });

  it('accepts only the base64 of 32 bytes', () => {
    const good = MasterKey.generate().toBase64();
    expect(MasterKey.fromBase64(good).toBase64()).toBe(good);
    expect(() => MasterKey.fromBase64(Buffer.alloc(16).toString('base64'))).toThrow(/32 random bytes/);
    expect(() => MasterKey.fromBase64('not base64 !')).toThrow(MasterKeyError);
    expect(JSON.stringify({ k: MasterKey.fromBase64(good) })).not.toContain(good);
  });
});

describe('loadMasterKey', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'g2c-key-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('generates master.key (0600) in embedded mode and reads it back on the next start', async () => {
    const first = await loadMasterKey({ dataDir: dir, externalStore: false });
    expect(first.source).toContain('generated');
    const info = await stat(join(dir, 'master.key'));
    expect(info.mode & 0o777).toBe(0o600);
    const second = await loadMasterKey({ dataDir: dir, externalStore: false });
    expect(second.key.toBase64()).toBe(first.key.toBase64());
    expect(second.key.decrypt(first.key.encrypt('x'))).toBe('x');
  });

  it('prefers G2C_MASTER_KEY and writes no file', async () => {
    const env = MasterKey.generate().toBase64();
    const { key, source } = await loadMasterKey({ env, dataDir: dir, externalStore: true });
    expect(key.toBase64()).toBe(env);
    expect(source).toBe('G2C_MASTER_KEY');
    await expect(stat(join(dir, 'master.key'))).rejects.toThrow();
  });

  it('refuses an external store without a key', async () => {
    await expect(loadMasterKey({ dataDir: dir, externalStore: true })).rejects.toThrow(/G2C_MASTER_KEY is required/);
  });

  it('names the file when master.key is corrupt', async () => {
    await writeFile(join(dir, 'master.key'), 'short\n');
    await expect(loadMasterKey({ dataDir: dir, externalStore: false })).rejects.toThrow(/master\.key/);
    expect(await readFile(join(dir, 'master.key'), 'utf8')).toBe('short\n');
  });
});

describe('secrets', () => {
  it('are 256-bit random values hashed with SHA-256', () => {
    const s = randomSecret();
    expect(Buffer.from(s, 'base64url')).toHaveLength(32);
    expect(randomSecret()).not.toBe(s);
    expect(sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
