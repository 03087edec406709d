import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

describe('test PostgreSQL harness', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startTestPostgres();
  });
  afterAll(() => db?.stop());

  it('runs a real server that answers queries', async () => {
    const { rows } = await db.query(
      'select 40 + 2 as answer, current_setting($$server_version_num$$)::int >= 170000 as v17',
    );
    expect(rows[0]).toEqual({ answer: 42, v17: true });
  });

  it('stops the server and removes its directory', async () => {
    const other = await startTestPostgres();
    await other.query('create table t (id int)');
    expect(existsSync(other.dir)).toBe(true);
    await other.stop();
    await expect(other.query('select 1')).rejects.toThrow(/ECONNREFUSED/);
    expect(existsSync(other.dir)).toBe(false);
  });
});
