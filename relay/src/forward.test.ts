import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forwardUrl, maskingUseless, readSecretsFile } from './forward.js';

describe('forward client', () => {
  it('maps the relay base URL to the forward endpoint, keeping a path prefix', () => {
    const to = { host: 'db.internal', port: 5432 };
    expect(forwardUrl('http://relay:8080', 'plant', to).href).toBe(
      'ws://relay:8080/elements/api-v2/tunnels/plant/forward?host=db.internal&port=5432',
    );
    expect(forwardUrl('https://example.com/g2c/', 'a b', to).href).toBe(
      'wss://example.com/g2c/elements/api-v2/tunnels/a%20b/forward?host=db.internal&port=5432',
    );
    expect(forwardUrl('wss://example.com', 't', { host: '::1', port: 1 }).searchParams.get('host')).toBe('::1');
  });

  it('masks WebSocket frames only where a plaintext intermediary could exist', () => {
    expect(maskingUseless(new URL('wss://relay.example.com'))).toBe(true);
    expect(maskingUseless(new URL('ws://127.0.0.1:8080'))).toBe(true);
    expect(maskingUseless(new URL('ws://[::1]:8080'))).toBe(true);
    expect(maskingUseless(new URL('ws://relay.example.com'))).toBe(false);
    expect(maskingUseless(new URL('ws://10.0.0.5'))).toBe(false);
  });

  it('reads the credentials.json format and names a bad file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'g2c-fwd-'));
    try {
      const good = join(dir, 'good.json');
      await writeFile(good, JSON.stringify({ organizationSecret: 'o', userSecret: 'u' }));
      expect(await readSecretsFile(good)).toEqual({ organizationSecret: 'o', userSecret: 'u' });
      const bad = join(dir, 'bad.json');
      await writeFile(bad, '{"user": 1}');
      await expect(readSecretsFile(bad)).rejects.toThrow(/bad\.json must hold/);
      await expect(readSecretsFile(join(dir, 'none.json'))).rejects.toThrow(/cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
