// Each CEQL operator, run through the engine on a real PostgreSQL, selects the same rows as
// the equivalent hand-written SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishList } from '../../relay/src/engine/paging.js';
import { planList } from '../../relay/src/engine/plan.js';
import { buildListSql } from '../../relay/src/engine/sql.js';
import { type EngineDatabase, startEngineDatabase } from './database.js';

let db: EngineDatabase;
beforeAll(async () => {
  db = await startEngineDatabase();
}, 120_000); // room for a slow start on a loaded machine; the server itself gives up after 60 s
afterAll(() => db?.stop());

// people: 1 Jon Doe 35 a jon@ | 2 Jane Roe 28 b NULL | 3 O'Brien 30 c ob@ | 4 back\slash NULL a bs@
//         5 Ünïcode ☃ 41 NULL u@ | 6 %under_score% 22 b us@
const CASES: Array<[string, string]> = [
  ["name = 'Jon Doe'", "name = 'Jon Doe'"],
  ["name != 'Jon Doe'", "name <> 'Jon Doe'"],
  ["name <> 'Jon Doe'", "name <> 'Jon Doe'"],
  ['age < 30', 'age < 30'],
  ['age <= 30', 'age <= 30'],
  ['age > 30', 'age > 30'],
  ['age >= 30', 'age >= 30'],
  ["name LIKE 'J%'", "name LIKE 'J%'"],
  ["name NOT LIKE 'J%'", "name NOT LIKE 'J%'"],
  ["name ILIKE 'j%'", "name ILIKE 'j%'"],
  ["name NOT ILIKE 'j%'", "name NOT ILIKE 'j%'"],
  ["name LIKE '\\%%'", "name LIKE '\\%%'"],
  ["name LIKE '%\\_%'", "name LIKE '%\\_%'"],
  ["name LIKE 'back\\\\slash'", "name LIKE 'back\\\\slash'"],
  ["name LIKE '%☃'", "name LIKE '%☃'"],
  ["name ILIKE 'ünï%'", "name ILIKE 'ünï%'"],
  ["age LIKE '3%'", "age::text LIKE '3%'"],
  ["status IN ('a', 'b')", "status IN ('a', 'b')"],
  ["status NOT IN ('a', 'b')", "status NOT IN ('a', 'b')"],
  ['age IN (30, 35, 99)', 'age IN (30, 35, 99)'],
  ['email IS NULL', 'email IS NULL'],
  ['email IS NOT NULL', 'email IS NOT NULL'],
  ["NOT status = 'a'", "NOT status = 'a'"],
  [
    "name = 'Jon Doe' AND (age >= 30 OR status IN ('a','b')) AND email IS NOT NULL",
    "name = 'Jon Doe' AND (age >= 30 OR status IN ('a','b')) AND email IS NOT NULL",
  ],
  ["age > 25 AND status = 'b' OR age IS NULL", "age > 25 AND status = 'b' OR age IS NULL"],
  ["NOT (age > 25 OR status = 'b')", "NOT (age > 25 OR status = 'b')"],
  ["name = 'O''Brien'", "name = 'O''Brien'"],
  ['id = 3', 'id = 3'],
  ["id = '3'", 'id = 3'],
  ["AGE >= 30 and Status = 'a'", "age >= 30 AND status = 'a'"],
];

describe('where on a real PostgreSQL', () => {
  it.each(CASES)('%s', async (where, sql) => {
    const plan = planList(db.table('people'), { where, fields: 'id' });
    const page = finishList(plan, await db.listRows(buildListSql(plan)));
    const got = (JSON.parse(page.body) as Array<{ id: number }>).map((r) => r.id);
    const { rows } = await db.client.query(`SELECT id FROM "Engine Sql".people WHERE ${sql} ORDER BY id`);
    expect(got).toEqual(rows.map((r: { id: number }) => r.id));
  });

  it('a value the column cannot read fails with a 22xxx error (the relay answers 400 invalid_value)', async () => {
    for (const where of ["age = 'x'", 'age = 1.5', "id IN ('1', 'two')", 'age = 99999999999']) {
      const plan = planList(db.table('people'), { where });
      await expect(db.run(buildListSql(plan)), where).rejects.toMatchObject({ code: expect.stringMatching(/^22/) });
    }
  });
});
