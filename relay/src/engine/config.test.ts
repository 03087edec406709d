import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { parseConfiguration, parseHostPort, publicConfiguration } from './config.js';

const base = { 'db.host': 'db.internal', 'db.name': 'crm', username: 'app', password: 'pw' };

function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('parseHostPort', () => {
  it.each([
    ['db.internal', 'db.internal', 5432],
    ['db.internal:6543', 'db.internal', 6543],
    ['10.0.0.5:5432', '10.0.0.5', 5432],
    ['[fd00::5]:5433', 'fd00::5', 5433],
    ['[fd00::5]', 'fd00::5', 5432],
    ['fd00::5', 'fd00::5', 5432],
    [' host:1 ', 'host', 1],
  ])('%s', (text, host, port) => {
    expect(parseHostPort(text)).toEqual({ host, port });
  });

  it.each(['', 'a b', 'host:0', 'host:65536', 'host:', 'http://x', '[::1', 'x:y'])('refuses %j', (text) => {
    expect(parseHostPort(text)).toBeUndefined();
  });
});

describe('parseConfiguration', () => {
  it('applies the defaults', () => {
    expect(parseConfiguration(base)).toEqual({
      host: 'db.internal',
      port: 5432,
      database: 'crm',
      username: 'app',
      password: 'pw',
      connectionType: 'direct',
      tunnel: undefined,
      schema: 'public',
      tableNames: undefined,
      ssl: 'disable',
      sslCa: undefined,
      poolMax: 10,
      statementTimeoutMs: 30_000,
      poolTimeoutMs: 10_000,
      filterResponseNulls: false,
    });
  });

  it('reads every key, numbers and booleans also as strings', () => {
    const config = parseConfiguration({
      ...base,
      'connection.type': 'ground2cloud',
      'ground2cloud.tunnel': 'plant',
      'db.schema': 'sales',
      'db.table.names': ' contacts , data_* ',
      'db.ssl': 'verify-full',
      'db.ssl.ca': 'PEM',
      'pool.max': '3',
      'statement.timeout.ms': 0,
      'pool.timeout.ms': 250,
      'filter.response.nulls': 'true',
    });
    expect(config).toMatchObject({
      connectionType: 'ground2cloud',
      tunnel: 'plant',
      schema: 'sales',
      tableNames: ['contacts', 'data_*'],
      ssl: 'verify-full',
      sslCa: 'PEM',
      poolMax: 3,
      statementTimeoutMs: 0,
      poolTimeoutMs: 250,
      filterResponseNulls: true,
    });
  });

  it.each([
    ['db.host', { 'db.host': undefined }, 'is required'],
    ['password', { password: '' }, 'is required'],
    ['username', { username: 5 }, 'must be a string'],
    ['db.host', { 'db.host': 'a:b:c:zz' }, 'host:port'],
    ['ground2cloud.tunnel', { 'connection.type': 'ground2cloud' }, 'is required'],
    ['pool.max', { 'pool.max': 1.5 }, 'integer'],
    ['pool.max', { 'pool.max': '-1' }, 'integer'],
    ['db.table.names', { 'db.table.names': ' , ' }, 'at least one'],
    ['db.ssl', { 'db.ssl': 'prefer' }, 'disable, require or verify-full'],
    ['nope', { nope: 1 }, 'not a known key'],
  ])('names %s when it is wrong', (key, overrides, text) => {
    const err = errorOf(() => parseConfiguration({ ...base, ...overrides }));
    expect(err.code).toBe('invalid_configuration');
    expect(err.status).toBe(400);
    expect(err.message).toContain(`"${key}"`);
    expect(err.message).toContain(text);
  });

  it('never puts the password in a message', () => {
    const err = errorOf(() => parseConfiguration({ ...base, password: 'hunter2', 'pool.max': 'x' }));
    expect(err.message).not.toContain('hunter2');
  });

  it('merges over a previous configuration (PATCH)', () => {
    expect(parseConfiguration({ 'db.name': 'other' }, base)).toMatchObject({ database: 'other', password: 'pw' });
  });

  it('publicConfiguration drops the password only', () => {
    expect(publicConfiguration(base)).toEqual({ 'db.host': 'db.internal', 'db.name': 'crm', username: 'app' });
  });
});
