import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, formatHelp, OptionError, type OptionSpec, parseDuration, parseOptions } from './options.js';

const specs: OptionSpec[] = [
  { name: 'relay', type: 'string', description: 'relay URL', required: true },
  { name: 'allow', type: 'list', description: 'targets' },
  { name: 'keepalive-interval', type: 'duration', default: 10_000, description: 'ping interval' },
  {
    name: 'pool-max',
    type: 'int',
    default: 10,
    description: 'pool',
    validate: (n: number) => (n < 1 ? 'must be at least 1' : undefined),
  },
  { name: 'verbose', type: 'bool', default: false, description: 'chatty' },
];

describe('parseOptions', () => {
  it('reads flags in both forms, repeats list flags and keeps positionals', () => {
    const { values, positionals } = parseOptions(
      specs,
      ['serve', '--relay', 'wss://r', '--allow=db:5432', '--allow', 'a:1,b:2', '--verbose', '--pool-max', '3'],
      {},
    );
    expect(values).toEqual({
      relay: 'wss://r',
      allow: ['db:5432', 'a:1', 'b:2'],
      'keepalive-interval': 10_000,
      'pool-max': 3,
      verbose: true,
    });
    expect(positionals).toEqual(['serve']);
  });

  it('lets flags win over the environment, and the environment over the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'g2c-cli-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ relay: 'from-file', 'pool-max': 7, 'keepalive-interval': '2s' }));
    const env = { G2C_RELAY: 'from-env', G2C_CONFIG: file };
    expect(parseOptions(specs, [], env).values).toMatchObject({
      relay: 'from-env',
      'pool-max': 7,
      'keepalive-interval': 2000,
    });
    expect(parseOptions(specs, ['--relay', 'from-flag'], env).values.relay).toBe('from-flag');
    expect(parseOptions(specs, ['--config', file], {}).values.relay).toBe('from-file');
  });

  it('names the option in every error', () => {
    const bad = (argv: string[], env = {}) => {
      try {
        parseOptions(specs, argv, env);
      } catch (err) {
        expect(err).toBeInstanceOf(OptionError);
        return (err as Error).message;
      }
      throw new Error('expected an OptionError');
    };
    expect(bad([])).toBe('--relay: required (or set G2C_RELAY)');
    expect(bad(['--relay', 'x', '--nope'])).toBe('--nope: unknown option (see --help)');
    expect(bad(['--relay'])).toBe('--relay: missing value');
    expect(bad(['--relay', 'x', '--pool-max', 'ten'])).toMatch(/^--pool-max: expected an integer/);
    expect(bad(['--relay', 'x', '--pool-max', '0'])).toBe('--pool-max: must be at least 1');
    expect(bad(['--relay', 'x'], { G2C_KEEPALIVE_INTERVAL: 'soon' })).toMatch(
      /^--keepalive-interval: expected a duration/,
    );
    expect(bad(['--relay', 'x', '--config', '/nonexistent/c.json'])).toMatch(/^--config: cannot read/);
  });

  it('does not require options when --help is asked', () => {
    expect(parseOptions(specs, ['--help'], {}).help).toBe(true);
  });
});

describe('parseDuration', () => {
  it('takes ms, s, m, h and bare seconds', () => {
    expect([
      parseDuration('250ms'),
      parseDuration('10s'),
      parseDuration('2m'),
      parseDuration('1h'),
      parseDuration('3'),
    ]).toEqual([250, 10_000, 120_000, 3_600_000, 3000]);
    expect(parseDuration('10 parsecs')).toBeUndefined();
  });
});

describe('formatHelp', () => {
  it('lists every option with its variable and default', () => {
    const help = formatHelp('usage: x', specs);
    for (const spec of specs) expect(help).toContain(`--${spec.name}`);
    expect(help).toContain('[G2C_KEEPALIVE_INTERVAL]');
    expect(help).toContain('(default 10s)');
    expect(envName('health-listen')).toBe('G2C_HEALTH_LISTEN');
  });
});
