// Every common type goes in through buildInsertSql and comes back through buildGetSql and
// buildListSql with the same JSON text, on a real PostgreSQL.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishList } from '../../relay/src/engine/paging.js';
import { planList } from '../../relay/src/engine/plan.js';
import {
  buildDeleteSql,
  buildGetSql,
  buildInsertSql,
  buildListSql,
  buildUpdateSql,
} from '../../relay/src/engine/sql.js';
import { parseRowBody } from '../../relay/src/engine/values.js';
import { type EngineDatabase, jsonFields, startEngineDatabase } from './database.js';

let db: EngineDatabase;
beforeAll(async () => {
  db = await startEngineDatabase();
}, 120_000); // room for a slow start on a loaded machine; the server itself gives up after 60 s
afterAll(() => db?.stop());

const longBytes = randomBytes(300).toString('base64');

// Field -> the exact JSON text sent and expected back (PostgreSQL's canonical output forms).
const VALUES: Record<string, string> = {
  i2: '-32768',
  i4: '2147483647',
  i8: '9007199254740993',
  num: '123456789012345678901234567890.0123456789',
  f8: '0.30000000000000004',
  b: 'true',
  t: JSON.stringify('it\'s "quoted" \\ back\nslash ☃ 😀 \'; DROP TABLE canary; --'),
  vc: '"short"',
  d: '"2024-02-29"',
  tm: '"23:59:59.999999"',
  ts: '"2024-02-29T23:59:59.123456"',
  tstz: '"2024-02-29T23:59:59.123456+00:00"',
  iv: '"1 year 2 mons 3 days 04:05:06.789"',
  u: '"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"',
  j: '{ "b" : 1,  "a" : [1, 2.50, 1e400, 12345678901234567890] }',
  jb: '{"a": [1, 2.50, 12345678901234567890], "b": {"c": null}}',
  by: `"${longBytes}"`,
  ta: '["a","b c","\\"q\\"",null,"NULL",""]',
  ia: '[1,-2,3]',
  m: '"happy"',
  ip: '"192.168.0.1/24"',
  pt: '"(1.5,-2)"',
};

function bodyOf(values: Record<string, string>): string {
  return `{${Object.entries(values)
    .map(([k, v]) => `${JSON.stringify(k)}:${v}`)
    .join(',')}}`;
}

describe('every common type round-trips exactly', () => {
  let id: string;

  it('POST returns what it stored, field by field, with defaults and generated values', async () => {
    const table = db.table('every_type');
    const rows = await db.run(buildInsertSql(table, parseRowBody(bodyOf(VALUES))));
    expect(rows).toHaveLength(1);
    const fields = await jsonFields(db, rows[0]?.row as string);
    for (const [k, v] of Object.entries(VALUES)) expect(fields[k], k).toBe(v);
    expect(fields.doubled).toBe('18014398509481986');
    expect(fields.created).toMatch(/^"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00"$/);
    id = fields.id as string;
    // The raw row text carries the digits too: nothing between PostgreSQL and the client rounds.
    expect(rows[0]?.row).toContain('"i8":9007199254740993');
    expect(rows[0]?.row).toContain('"num":123456789012345678901234567890.0123456789');
  });

  it('GET by id and a list return the same text', async () => {
    const table = db.table('every_type');
    const [got] = await db.run(buildGetSql(table, id));
    const fields = await jsonFields(db, got?.row as string);
    for (const [k, v] of Object.entries(VALUES)) expect(fields[k], k).toBe(v);
    const plan = planList(table, { where: `id = ${id}` });
    const page = finishList(plan, await db.listRows(buildListSql(plan)));
    expect(page.returnedCount).toBe(1);
    expect(page.body).toBe(`[${got?.row}]`);
  });

  it('the stored values are the ones sent (checked in SQL, not through the engine)', async () => {
    const { rows } = await db.client.query(
      `SELECT i8::text, num::text, by = decode($2, 'base64') AS by_ok, j::text, m::text, ta, ia
       FROM "Engine Sql".every_type WHERE id = $1`,
      [id, longBytes],
    );
    expect(rows[0]).toEqual({
      i8: '9007199254740993',
      num: '123456789012345678901234567890.0123456789',
      by_ok: true,
      j: VALUES.j,
      m: 'happy',
      ta: ['a', 'b c', '"q"', null, 'NULL', ''],
      ia: [1, -2, 3],
    });
  });

  it('where finds the row by each of its values, written as in JSON (bytea in base64)', async () => {
    const table = db.table('every_type');
    const wheres = [
      'i2 = -32768',
      'i4 = 2147483647',
      'i8 = 9007199254740993',
      'i8 <> 9007199254740992',
      'num = 123456789012345678901234567890.0123456789',
      'f8 = 0.30000000000000004',
      'b = true',
      "t LIKE 'it''s%'",
      "vc = 'short'",
      "d = '2024-02-29'",
      "tm = '23:59:59.999999'",
      "ts = '2024-02-29T23:59:59.123456'",
      "tstz = '2024-02-29T23:59:59.123456Z'",
      "iv = '1 year 2 mons 3 days 04:05:06.789'",
      "u = 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
      `j = '{"a": [1, 2.50, 1e400, 12345678901234567890], "b": 1}'`,
      `jb = '{"b": {"c": null}, "a": [1, 2.5, 12345678901234567890]}'`,
      `by = '${longBytes}'`,
      `by LIKE '${longBytes.slice(0, 10)}%'`,
      `ta = '{a,"b c","\\"q\\"",NULL,"NULL",""}'`,
      "ia = '{1,-2,3}'",
      "m IN ('happy', 'sad')",
      "m > 'ok'",
      "ip = '192.168.0.1/24'",
      "ip ILIKE '192.168.%'",
      "pt = '(1.5,-2)'",
      "pt IN ('(0,0)', '(1.5,-2)')",
      'doubled = 18014398509481986',
    ];
    for (const where of wheres) {
      const plan = planList(table, { where });
      const rows = await db.run(buildListSql(plan));
      expect(rows.length, where).toBe(1);
    }
  });

  it('PATCH changes only the given fields and keeps the exact values', async () => {
    const table = db.table('every_type');
    const [row] = await db.run(
      buildUpdateSql(table, id, parseRowBody('{"i8": -4611686018427387904, "by": "", "j": null, "ia": []}')),
    );
    const fields = await jsonFields(db, row?.row as string);
    expect(fields.i8).toBe('-4611686018427387904');
    expect(fields.by).toBe('""');
    expect(fields.j).toBe('null');
    expect(fields.ia).toBe('[]');
    expect(fields.num).toBe(VALUES.num);
    expect(fields.doubled).toBe('-9223372036854775808');
  });

  it('POST with an empty body stores the defaults', async () => {
    const [row] = await db.run(buildInsertSql(db.table('every_type'), parseRowBody('{}')));
    const fields = await jsonFields(db, row?.row as string);
    expect(fields.i8).toBe('null');
    expect(Number(fields.id)).toBeGreaterThan(Number(id));
  });

  it('non-finite and extreme numbers round-trip', async () => {
    const table = db.table('every_type');
    const sent = { f8: '"NaN"', num: '-0.0000000001', i4: '-2147483648' };
    const [row] = await db.run(buildInsertSql(table, parseRowBody(bodyOf(sent))));
    const fields = await jsonFields(db, row?.row as string);
    expect([fields.f8, fields.num, fields.i4]).toEqual(['"NaN"', '-0.0000000001', '-2147483648']);
    const [inf] = await db.run(buildInsertSql(table, parseRowBody('{"f8": "-Infinity", "i8": "4611686018427387903"}')));
    expect((await jsonFields(db, inf?.row as string)).i8).toBe('4611686018427387903');
    expect((await jsonFields(db, inf?.row as string)).f8).toBe('"-Infinity"');
  });

  it('stripNulls leaves null fields out of the row, but not nulls inside json values', async () => {
    const table = db.table('every_type');
    const [row] = await db.run(buildGetSql(table, id, { stripNulls: true }));
    const fields = await jsonFields(db, row?.row as string);
    expect(fields).not.toHaveProperty('j');
    expect(fields.jb).toBe('{"a": [1, 2.50, 12345678901234567890], "b": {"c": null}}');
    expect(fields.i8).toBe('-4611686018427387904');
    const plan = planList(table, { where: `id = ${id}` }, { stripNulls: true });
    const [listed] = await db.run(buildListSql(plan));
    expect(listed?.row).toBe(row?.row);
  });

  it('DELETE returns the row once, then nothing', async () => {
    const table = db.table('every_type');
    expect(await db.run(buildDeleteSql(table, id))).toHaveLength(1);
    expect(await db.run(buildDeleteSql(table, id))).toHaveLength(0);
    expect(await db.run(buildGetSql(table, id))).toHaveLength(0);
  });
});

describe('names with capitals, spaces and quotes', () => {
  it('insert, get, list with where/fields/orderBy, update and delete', async () => {
    const table = db.table('Odd "Name" Table');
    const body = '{"Key": "k\\"1", "First Name": "Ann", "say \\"hi\\"": "hello", "camelCase": 7}';
    const [inserted] = await db.run(buildInsertSql(table, parseRowBody(body)));
    expect(JSON.parse(inserted?.row as string)).toEqual({
      Key: 'k"1',
      'First Name': 'Ann',
      'say "hi"': 'hello',
      camelCase: 7,
    });
    expect(await db.run(buildGetSql(table, 'k"1'))).toHaveLength(1);
    const plan = planList(table, {
      where: '"First Name" = \'Ann\' AND `say "hi"` LIKE \'hel%\' AND camelcase = 7',
      fields: '"say ""hi""", Key',
      orderBy: '`First Name` desc',
    });
    const page = finishList(plan, await db.listRows(buildListSql(plan)));
    expect(JSON.parse(page.body)).toEqual([{ 'say "hi"': 'hello', Key: 'k"1' }]);
    const [updated] = await db.run(buildUpdateSql(table, 'k"1', parseRowBody('{"First Name": null}')));
    expect(JSON.parse(updated?.row as string)['First Name']).toBeNull();
    expect(await db.run(buildDeleteSql(table, 'k"1'))).toHaveLength(1);
  });
});

describe('columns named like the aliases of the generated SQL', () => {
  it('list, get, insert, update, delete and stripNulls all work', async () => {
    const table = db.table('aliases');
    const plan = planList(table, { where: "p LIKE 'p%' AND t >= 1", orderBy: 'row desc' });
    const page = finishList(plan, await db.listRows(buildListSql(plan)));
    expect(JSON.parse(page.body).map((r: { t: number }) => r.t)).toEqual([2, 1]);
    expect(JSON.parse(page.body)[1]).toEqual({
      t: 1,
      p: 'p1',
      w: 'w1',
      r: 'r1',
      e: 'e1',
      row: 'row1',
      cursor: 'cursor1',
      key: 'key1',
      value: null,
    });
    const [stripped] = await db.run(buildGetSql(table, '1', { stripNulls: true }));
    expect(JSON.parse(stripped?.row as string)).toEqual({
      t: 1,
      p: 'p1',
      w: 'w1',
      r: 'r1',
      e: 'e1',
      row: 'row1',
      cursor: 'cursor1',
      key: 'key1',
    });
    const [inserted] = await db.run(buildInsertSql(table, parseRowBody('{"t": 3, "p": "x", "r": "y", "row": "z"}')));
    expect(JSON.parse(inserted?.row as string)).toMatchObject({ t: 3, p: 'x', r: 'y', row: 'z', w: null });
    const [updated] = await db.run(buildUpdateSql(table, '3', parseRowBody('{"w": "u", "e": "v"}')));
    expect(JSON.parse(updated?.row as string)).toMatchObject({ t: 3, p: 'x', w: 'u', e: 'v' });
    expect(await db.run(buildDeleteSql(table, '3'))).toHaveLength(1);
  });
});

describe('bodies are read with the given columns only', () => {
  it('an absent NOT NULL domain column gets its default; given values pass its checks', async () => {
    const table = db.table('with_domain');
    const [row] = await db.run(buildInsertSql(table, parseRowBody('{"label": "x"}')));
    expect(JSON.parse(row?.row as string)).toMatchObject({ n: 1, label: 'x' });
    const id = String(JSON.parse(row?.row as string).id);
    const [updated] = await db.run(buildUpdateSql(table, id, parseRowBody('{"label": "y"}')));
    expect(JSON.parse(updated?.row as string)).toMatchObject({ n: 1, label: 'y' });
    await expect(db.run(buildInsertSql(table, parseRowBody('{"n": 0}')))).rejects.toMatchObject({ code: '23514' });
    await expect(db.run(buildInsertSql(table, parseRowBody('{"n": null}')))).rejects.toMatchObject({ code: '23502' });
    await expect(db.run(buildInsertSql(table, parseRowBody('{"label": "toolong"}')))).rejects.toMatchObject({
      code: '22001',
    });
  });
});
