import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { describeConnectFailure, isSchemaMiss, toApiError } from './errors.js';

/** What pg's DatabaseError looks like. */
const pgError = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`pg says ${code}`), { code, severity: 'ERROR', ...extra });
const codeError = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('toApiError', () => {
  it.each([
    ['22P02', 400, 'invalid_value'],
    ['22003', 400, 'invalid_value'],
    ['23502', 400, 'not_null_violation'],
    ['23514', 400, 'check_violation'],
    ['23505', 409, 'unique_violation'],
    ['23503', 409, 'foreign_key_violation'],
    ['23P01', 409, 'conflict'],
    ['57014', 504, 'timeout'],
    ['28P01', 502, 'database_unavailable'],
    ['3D000', 502, 'database_unavailable'],
    ['57P01', 502, 'database_unavailable'],
    ['53300', 502, 'database_unavailable'],
    ['42601', 500, 'internal_error'],
  ])('SQLSTATE %s -> %i %s', (sqlstate, status, code) => {
    const err = toApiError(pgError(sqlstate, { detail: 'Key (x)=(1) already exists.' }));
    expect(err.status).toBe(status);
    expect(err.code).toBe(code);
    expect(err.providerMessage).toContain(`pg says ${sqlstate}`);
  });

  it('names the column of a not-null violation', () => {
    expect(toApiError(pgError('23502', { column: 'email' })).message).toContain('"email"');
  });

  it.each([
    ['not_allowed', 502],
    ['connect_refused', 502],
    ['connect_timeout', 502],
    ['dns_failed', 502],
    ['unreachable', 502],
  ])("keeps the agent's code %s", (code, status) => {
    const err = toApiError(codeError(code, 'agent said no'));
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.providerMessage).toBe('agent said no');
  });

  it('tunnel_offline is a 503 with Retry-After', () => {
    const err = toApiError(codeError('tunnel_offline'));
    expect(err.status).toBe(503);
    expect(err.headers?.['retry-after']).toMatch(/^\d+$/);
  });

  it.each([
    ['ECONNREFUSED', 'connect_refused'],
    ['ENOTFOUND', 'dns_failed'],
    ['EHOSTUNREACH', 'unreachable'],
    ['ETIMEDOUT', 'connect_timeout'],
    ['ECONNRESET', 'database_unavailable'],
  ])('socket error %s -> 502 %s', (code, apiCode) => {
    const err = toApiError(codeError(code));
    expect(err.status).toBe(502);
    expect(err.code).toBe(apiCode);
  });

  it('pool and connection timeouts', () => {
    expect(toApiError(new Error('timeout exceeded when trying to connect'))).toMatchObject({
      status: 504,
      code: 'timeout',
    });
    expect(toApiError(new Error('Connection terminated due to connection timeout'))).toMatchObject({
      status: 502,
      code: 'connect_timeout',
    });
    expect(toApiError(new Error('Connection terminated unexpectedly'))).toMatchObject({
      status: 502,
      code: 'database_unavailable',
    });
  });

  it('anything else is a 500 that keeps its cause', () => {
    const bug = new TypeError('x is undefined');
    const err = toApiError(bug);
    expect(err).toMatchObject({ status: 500, code: 'internal_error' });
    expect(err.cause).toBe(bug);
  });

  it('passes ApiErrors through', () => {
    const err = new ApiError('not_found', 'nope');
    expect(toApiError(err)).toBe(err);
  });
});

describe('isSchemaMiss / describeConnectFailure', () => {
  it('undefined table or column is a schema miss', () => {
    expect(isSchemaMiss(pgError('42P01'))).toBe(true);
    expect(isSchemaMiss(pgError('42703'))).toBe(true);
    expect(isSchemaMiss(pgError('23505'))).toBe(false);
    expect(isSchemaMiss(codeError('42P01'))).toBe(false); // not from the server
  });

  it.each([
    [pgError('28P01'), /authentication failed/],
    [pgError('3D000'), /unknown database/],
    [codeError('tunnel_offline'), /tunnel offline/],
    [codeError('not_allowed'), /not allowed by the agent/],
    [codeError('ECONNREFUSED'), /unreachable: connection refused/],
    [codeError('ENOTFOUND'), /does not resolve/],
  ])('%s', (err, text) => {
    expect(describeConnectFailure(err)).toMatch(text);
  });
});
