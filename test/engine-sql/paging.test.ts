// Page walks on a real PostgreSQL: keyset tokens (with NULLs, mixed directions, concurrent
// inserts) and the offset fallback for tables without a primary key and views.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishList } from '../../relay/src/engine/paging.js';
import { type ListQuery, planList } from '../../relay/src/engine/plan.js';
import type { TableInfo } from '../../relay/src/engine/schema.js';
import { buildListSql } from '../../relay/src/engine/sql.js';
import { type EngineDatabase, startEngineDatabase } from './database.js';

let db: EngineDatabase;
let walk: TableInfo;
beforeAll(async () => {
  db = await startEngineDatabase();
  // 600 rows; grp and name repeat and are NULL now and then, so ties and NULLs are everywhere.
  await db.client.query(`
    CREATE TABLE "Engine Sql".walk (id serial PRIMARY KEY, grp int, name text, at timestamptz, score float8);
    INSERT INTO "Engine Sql".walk (grp, name, at, score)
    SELECT CASE WHEN g % 11 = 0 THEN NULL ELSE g % 7 END,
           CASE WHEN g % 13 = 0 THEN NULL ELSE 'n' || (g % 5) END,
           timestamptz '2024-01-01 00:00:00.000001+00' + (g % 17) * interval '1.000001 second',
           (g % 9) / 3.0
    FROM generate_series(1, 600) g;`);
  const { introspect } = await import('../../relay/src/engine/schema-cache.js');
  walk = (await introspect(db.client, 'Engine Sql', (n) => n === 'walk'))[0] as TableInfo;
}, 120_000); // room for a slow start on a loaded machine; the server itself gives up after 60 s
afterAll(() => db?.stop());

const PAGE_BOUND = 1000; // no walk in this file needs more pages

/** Follows nextPage tokens from the first page to the last; returns the ids in order. */
async function walkAll(
  table: TableInfo,
  query: ListQuery,
  between?: (page: number) => Promise<void>,
): Promise<number[]> {
  const ids: number[] = [];
  let nextPage: string | undefined;
  for (let page = 0; page < PAGE_BOUND; page++) {
    const plan = planList(table, { ...query, nextPage });
    const result = finishList(plan, await db.listRows(buildListSql(plan)));
    const rows = JSON.parse(result.body) as Array<Record<string, number>>;
    expect(rows.length).toBe(result.returnedCount);
    ids.push(...rows.map((r) => r.id ?? r.n ?? Number.NaN));
    if (!result.nextPageToken) {
      return ids;
    }
    expect(rows.length).toBe(plan.pageSize);
    nextPage = result.nextPageToken;
    await between?.(page);
  }
  throw new Error('walk did not end');
}

async function expected(orderBy: string, where = 'true'): Promise<number[]> {
  const { rows } = await db.client.query(`SELECT id FROM "Engine Sql".walk WHERE ${where} ORDER BY ${orderBy}`);
  return rows.map((r: { id: number }) => r.id);
}

describe('keyset walk', () => {
  const orders: Array<[string, string]> = [
    ['', 'id'],
    ['id desc', 'id DESC'],
    ['grp', 'grp, id'],
    ['grp desc', 'grp DESC, id'],
    ['grp, name desc', 'grp, name DESC, id'],
    ['name desc, grp', 'name DESC, grp, id'],
    ['name, grp desc, id desc', 'name, grp DESC, id DESC'],
    ['at desc, score', 'at DESC, score, id'],
  ];
  it.each(orders)('orderBy %j: every row exactly once, in order', async (orderBy, sqlOrder) => {
    expect(await walkAll(walk, { orderBy, pageSize: '7' })).toEqual(await expected(sqlOrder));
  });

  it('with a where, fields and a page size of 1', async () => {
    const ids = await walkAll(walk, {
      where: 'grp IN (1, 2) AND name IS NOT NULL',
      orderBy: 'name',
      fields: 'id',
      pageSize: 1,
    });
    expect(ids).toEqual(await expected('name, id', 'grp IN (1, 2) AND name IS NOT NULL'));
  });

  it('sort values too long for a token: the walk continues by offset and stays exact', async () => {
    await db.client.query(`
      CREATE TABLE "Engine Sql".essays (id int PRIMARY KEY, body text);
      INSERT INTO "Engine Sql".essays SELECT g, repeat(chr(97 + g % 3), 1500 + g % 4) || g FROM generate_series(1, 40) g;`);
    const { introspect } = await import('../../relay/src/engine/schema-cache.js');
    const essays = (await introspect(db.client, 'Engine Sql', (n) => n === 'essays'))[0] as TableInfo;
    const ids = await walkAll(essays, { orderBy: 'body desc', fields: 'id', pageSize: '3' });
    const { rows } = await db.client.query('SELECT id FROM "Engine Sql".essays ORDER BY body DESC, id');
    expect(ids).toEqual(rows.map((r: { id: number }) => r.id));
  });

  it('page=N starts at an offset and its token continues by keyset', async () => {
    const all = await expected('grp DESC, id');
    const plan = planList(walk, { orderBy: 'grp desc', pageSize: '50', page: '3' });
    const page3 = finishList(plan, await db.listRows(buildListSql(plan)));
    expect((JSON.parse(page3.body) as Array<{ id: number }>).map((r) => r.id)).toEqual(all.slice(100, 150));
    const next = planList(walk, { orderBy: 'grp desc', pageSize: '50', nextPage: page3.nextPageToken });
    expect(next.after).toBeDefined();
    const page4 = finishList(next, await db.listRows(buildListSql(next)));
    expect((JSON.parse(page4.body) as Array<{ id: number }>).map((r) => r.id)).toEqual(all.slice(150, 200));
  });

  it('rows inserted during the walk do not move the rows present at the start', async () => {
    const before = await expected('grp, id');
    let inserted = 0;
    const ids = await walkAll(walk, { orderBy: 'grp', pageSize: '25' }, async (page) => {
      // New rows land before, inside and after the current position.
      await db.client.query(
        `INSERT INTO "Engine Sql".walk (grp, name) SELECT g % 9 - 1, 'new' FROM generate_series(1, 10) g WHERE $1::int >= 0`,
        [page],
      );
      inserted += 10;
    });
    expect(inserted).toBeGreaterThan(0);
    const seen = ids.filter((id) => before.includes(id));
    expect(seen).toEqual(before); // every original row once, in order
    expect(new Set(ids).size).toBe(ids.length); // no row twice
  });

  it('10,000 rows walked by token while another connection keeps inserting', async () => {
    await db.client.query(`
      CREATE TABLE "Engine Sql".big (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), k int NOT NULL);
      INSERT INTO "Engine Sql".big (k) SELECT g % 100 FROM generate_series(1, 10000) g;`);
    const { introspect } = await import('../../relay/src/engine/schema-cache.js');
    const big = (await introspect(db.client, 'Engine Sql', (n) => n === 'big'))[0] as TableInfo;
    expect(big.primaryKey).toEqual(['id']);
    const { rows } = await db.client.query('SELECT id FROM "Engine Sql".big ORDER BY k DESC, id');
    const before = rows.map((r: { id: string }) => r.id);

    const pg = await import('pg');
    const writer = new pg.default.Client({ connectionString: db.server.url('postgres') });
    await writer.connect();
    let walking = true;
    let inserts = 0;
    const writing = (async () => {
      for (let i = 0; walking && i < 100_000; i++) {
        await writer.query('INSERT INTO "Engine Sql".big (k) VALUES ($1)', [i % 101]);
        inserts++;
      }
    })();
    const seen: string[] = [];
    try {
      let nextPage: string | undefined;
      for (let page = 0; page < PAGE_BOUND; page++) {
        const plan = planList(big, { orderBy: 'k desc', fields: 'id', pageSize: '100', nextPage });
        const result = finishList(plan, await db.listRows(buildListSql(plan)));
        seen.push(...(JSON.parse(result.body) as Array<{ id: string }>).map((r) => r.id));
        nextPage = result.nextPageToken;
        if (!nextPage) break;
      }
    } finally {
      walking = false;
      await writing;
      await writer.end();
    }
    expect(inserts).toBeGreaterThan(0);
    const original = new Set(before);
    expect(seen.filter((id) => original.has(id))).toEqual(before);
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('offset fallback', () => {
  it('a table without a primary key pages by offset', async () => {
    const nokey = db.table('nokey');
    expect(nokey.primaryKey).toEqual([]);
    const ids = await walkAll(nokey, { orderBy: 'n desc', pageSize: '4' });
    expect(ids).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
  });

  it('a view lists and pages by offset', async () => {
    const adults = db.table('adults');
    expect(adults.kind).toBe('view');
    const ids = await walkAll(adults, { orderBy: 'age', fields: 'id, age', pageSize: '1' });
    const { rows } = await db.client.query('SELECT id FROM "Engine Sql".adults ORDER BY age');
    expect(ids).toEqual(rows.map((r: { id: number }) => r.id));
  });
});
