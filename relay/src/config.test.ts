import { describe, expect, it } from 'vitest';
import { parseListen, serveConfig } from './config.js';

const base = { listen: '0.0.0.0:8080', 'data-dir': '/tmp/x', 'log-level': 'info' };

describe('relay config', () => {
  it('parses listen addresses', () => {
    expect(parseListen('listen', '127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('listen', ':0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListen('listen', '[::1]:443')).toEqual({ host: '::1', port: 443 });
    for (const bad of ['8080', 'host', 'h:70000', 'h:-1', '[::1]']) {
      expect(() => parseListen('listen', bad), bad).toThrow(/^--listen: expected HOST:PORT/);
    }
  });

  it('validates once at boot, naming the option', () => {
    expect(() => serveConfig({ ...base, 'log-level': 'loud' }, {})).toThrow(/^--log-level/);
    expect(() => serveConfig({ ...base, 'tls-key': '/k' }, {})).toThrow(/^--tls-cert/);
    expect(() => serveConfig({ ...base, 'tls-cert': '/nonexistent', 'tls-key': '/nonexistent' }, {})).toThrow(
      /^--tls-cert: cannot read/,
    );
    expect(() => serveConfig({ ...base, 'database-url': 'mysql://x' }, {})).toThrow(/^--database-url/);
    expect(() => serveConfig({ ...base, 'public-url': 'nope' }, {})).toThrow(/^--public-url/);
    // A database URL (or a DSN given by mistake) may hold a password: never repeated.
    const dsn = 'host=db user=relay password=hunter2-secret';
    expect(() => serveConfig({ ...base, 'database-url': dsn }, {})).toThrow(/^--database-url: expected a URL/);
    expect(() => serveConfig({ ...base, 'database-url': dsn }, {})).not.toThrow(/hunter2/);
    expect(() => serveConfig({ ...base, 'database-url': 'mysql://u:hunter2@x/db' }, {})).not.toThrow(/hunter2/);
  });

  it('reads the master key from the environment and derives a stable node id', () => {
    const config = serveConfig(base, { G2C_MASTER_KEY: ' abc= ' });
    expect(config.masterKey).toBe('abc=');
    expect(config.nodeId).toMatch(/:8080$/);
    expect(serveConfig(base, {}).masterKey).toBeUndefined();
    expect(serveConfig({ ...base, 'node-id': 'relay-a' }, {}).nodeId).toBe('relay-a');
    expect(config.trustProxy).toBe(false);
  });
});
