import { parseOptions } from '@g2c/cli';
import { describe, expect, it } from 'vitest';
import { agentOptions, buildAgentConfig, connectUrlOf } from './config.js';

const build = (argv: string[], env: NodeJS.ProcessEnv = {}, files: Record<string, string> = {}) =>
  buildAgentConfig(parseOptions(agentOptions, argv, env).values, (p) => {
    if (p in files) return files[p]!;
    throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  });

const minimal = ['--relay', 'wss://relay.example.com', '--token', 'T', '--allow', 'db:5432'];

describe('agent configuration', () => {
  it('maps relay URLs onto the agent endpoint', () => {
    expect(connectUrlOf('wss://relay.example.com')).toBe('wss://relay.example.com/agent/v1/connect');
    expect(connectUrlOf('https://relay.example.com/')).toBe('wss://relay.example.com/agent/v1/connect');
    expect(connectUrlOf('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/agent/v1/connect');
    expect(connectUrlOf('https://example.com/g2c/')).toBe('wss://example.com/g2c/agent/v1/connect');
    expect(() => connectUrlOf('ftp://x')).toThrow(/--relay/);
    expect(() => connectUrlOf('relay.example.com')).toThrow(/--relay: not a URL/);
  });

  it('builds a config with the defaults of DESIGN 4.3', () => {
    const config = build(minimal);
    expect(config).toMatchObject({
      connectUrl: 'wss://relay.example.com/agent/v1/connect',
      token: 'T',
      keepaliveIntervalMs: 10_000,
      keepaliveTimeoutMs: 25_000,
      drainTimeoutMs: 30_000,
      backoff: { baseMs: 500, capMs: 30_000, resetAfterMs: 60_000 },
    });
    expect(config.allowlist.allows('db', 5432)).toBe(true);
  });

  it('requires a relay, a token and at least one --allow, naming the option', () => {
    expect(() => build(['--token', 'T', '--allow', 'db:5432'])).toThrow(/^--relay: required/);
    expect(() => build(['--relay', 'ws://r', '--allow', 'db:5432'])).toThrow(/^--token: required/);
    expect(() => build(['--relay', 'ws://r', '--token', 'T'])).toThrow(/^--allow: required/);
    expect(() => build([...minimal, '--allow', 'nope'])).toThrow(/^--allow: allow entry "nope"/);
  });

  it('reads the token from a file or G2C_TOKEN, never both flags', () => {
    const args = ['--relay', 'ws://r', '--allow', 'db:5432'];
    expect(build([...args, '--token-file', '/t'], {}, { '/t': 'abc\n' }).token).toBe('abc');
    expect(build(args, { G2C_TOKEN: 'fromenv' }).token).toBe('fromenv');
    expect(() => build([...args, '--token-file', '/missing'])).toThrow(/^--token-file: cannot read \/missing: ENOENT/);
    expect(() => build([...args, '--token-file', '/t'], {}, { '/t': '\n' })).toThrow(/^--token-file: .* is empty/);
    expect(() => build([...args, '--token', 'T', '--token-file', '/t'], {}, { '/t': 'x' })).toThrow(/not both/);
  });

  it('allows are repeatable and comma-separated, from flags, env or file', () => {
    const config = build(['--relay', 'ws://r', '--token', 'T', '--allow', 'a:1,b:*', '--allow', '10.0.0.0/8:5432']);
    expect(config.allowlist.entries.map((e) => e.text)).toEqual(['a:1', 'b:*', '10.0.0.0/8:5432']);
    expect(build(['--relay', 'ws://r', '--token', 'T'], { G2C_ALLOW: 'x:1,y:2' }).allowlist.entries).toHaveLength(2);
  });

  it('checks --ca, --health-listen, durations and the log level', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n';
    expect(build([...minimal, '--ca', '/ca.pem'], {}, { '/ca.pem': pem }).ca).toBe(pem);
    expect(() => build([...minimal, '--ca', '/ca.pem'], {}, { '/ca.pem': 'junk' })).toThrow(/^--ca: .*no PEM/);
    expect(build([...minimal, '--health-listen', '127.0.0.1:9101']).healthListen).toEqual({
      host: '127.0.0.1',
      port: 9101,
    });
    expect(build([...minimal, '--health-listen', '[::1]:9101']).healthListen).toEqual({ host: '::1', port: 9101 });
    expect(() => build([...minimal, '--health-listen', '9101'])).toThrow(/^--health-listen/);
    expect(build([...minimal, '--keepalive-interval', '500ms']).keepaliveIntervalMs).toBe(500);
    expect(() => build([...minimal, '--keepalive-timeout', '0'])).toThrow(/^--keepalive-timeout/);
    expect(() => build([...minimal, '--log-level', 'loud'])).toThrow(/^--log-level/);
  });
});
