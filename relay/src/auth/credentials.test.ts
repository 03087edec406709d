import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { parseAuthorization } from './credentials.js';

describe('parseAuthorization', () => {
  it('reads User and Organization in any order, keywords in any case', () => {
    expect(parseAuthorization('User u1, Organization o1')).toEqual({ user: 'u1', organization: 'o1' });
    expect(parseAuthorization('organization o1,user u1')).toEqual({ user: 'u1', organization: 'o1' });
    expect(parseAuthorization('  ORGANIZATION o1 ,  Element e1 , uSeR u1 ')).toEqual({
      user: 'u1',
      organization: 'o1',
      element: 'e1',
    });
  });

  it('answers 401 unauthorized for missing, incomplete, unknown or repeated parts', () => {
    for (const header of [
      undefined,
      '',
      'Bearer abc',
      'User u1',
      'Organization o1',
      'User u1, Organization o1, Colour blue',
      'User u1, User u2, Organization o1',
      'User, Organization o1',
      'User u1 extra, Organization o1',
    ]) {
      let error: unknown;
      try {
        parseAuthorization(header);
      } catch (err) {
        error = err;
      }
      expect(error, String(header)).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(401);
      expect((error as ApiError).code).toBe('unauthorized');
    }
  });

  it('never echoes a secret in its message', () => {
    try {
      parseAuthorization('User sup3rsecret, User again');
    } catch (err) {
      expect((err as Error).message).not.toContain('sup3rsecret');
    }
  });
});
