// The injection corpus against every input of the pipeline (where, fields, orderBy, pageSize,
// page, nextPage, ids, body keys and values). Each attempt must be refused with a 400/405
// before any SQL exists, or run as SQL whose text holds none of the attacker's characters
// (values only as $n parameters) and which fails, if at all, only on a value (SQLSTATE 22xxx).
// A canary table, the other tables and the catalogue must be untouched afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishList } from '../../relay/src/engine/paging.js';
import { planList } from '../../relay/src/engine/plan.js';
import {
  buildDeleteSql,
  buildGetSql,
  buildInsertSql,
  buildListSql,
  buildUpdateSql,
  type SqlQuery,
} from '../../relay/src/engine/sql.js';
import { parseRowBody } from '../../relay/src/engine/values.js';
import { ApiError } from '../../relay/src/errors.js';
import { type EngineDatabase, startEngineDatabase } from './database.js';

export const CORPUS: string[] = [
  "'; DROP TABLE canary; --",
  "' OR '1'='1",
  "x' OR 1=1 --",
  '1; DELETE FROM canary',
  '1 OR 1=1',
  '1) OR (1=1',
  "'||(SELECT secret FROM canary)||'",
  "x' UNION SELECT secret, secret FROM canary --",
  '$$; DROP TABLE canary; $$',
  '$tag$; DELETE FROM canary; $tag$',
  '$1',
  "\\'; DROP TABLE canary; --",
  "\\\\'; UPDATE canary SET secret = 'owned'; --",
  "E'\\x27; DROP TABLE canary; --'",
  "U&'\\0027; DROP TABLE canary; --'",
  '/* */ DROP TABLE canary',
  '*/ DROP TABLE canary /*',
  '-- comment',
  '"; DROP TABLE canary; --',
  'a"b',
  '"a""b"',
  '`; DROP TABLE canary; --`',
  'id; SELECT pg_sleep(5)',
  '1)); SELECT pg_sleep(5); --',
  "COPY canary TO PROGRAM 'rm -rf /'",
  ';',
  "'",
  '"',
  '\\',
  '＇ OR １＝１ --', // fullwidth quote and digits
  'ʼ; DROP TABLE canary; --', // modifier letter apostrophe
  '’; DROP TABLE canary; --', // right single quotation mark
  '\u202e; DROP TABLE canary; --', // right-to-left override
  '\ufeff; DROP TABLE canary', // byte order mark
  'x\u0000y',
  '\ud800', // lone surrogate
  "😀'; DROP TABLE canary; --",
  "name = 'a'; DROP TABLE canary",
  '" OR "1"="1',
  '0x27',
  '%27%3B%20DROP%20TABLE%20canary',
  'null',
  '',
];

let db: EngineDatabase;
let before: { canary: string; people: string; relations: number };

async function snapshot() {
  const canary = await db.client.query('SELECT json_agg(c ORDER BY id)::text AS j FROM "Engine Sql".canary c');
  const people = await db.client.query('SELECT json_agg(p ORDER BY id)::text AS j FROM "Engine Sql".people p');
  const relations = await db.client.query('SELECT count(*)::int AS n FROM pg_class');
  return {
    canary: canary.rows[0].j as string,
    people: people.rows[0].j as string,
    relations: relations.rows[0].n as number,
  };
}

beforeAll(async () => {
  db = await startEngineDatabase();
  await db.client.query("SET statement_timeout = '5s'");
  before = await snapshot();
  expect(before.canary).toContain('tweet');
}, 120_000); // room for a slow start on a loaded machine; the server itself gives up after 60 s
afterAll(() => db?.stop());

const stats = { refused: 0, ran: 0, valueErrors: 0 };

/** Builds (and, when built, runs) one attempt; asserts it was refused or stayed a parameter. */
async function attempt(payload: string, build: () => SqlQuery): Promise<void> {
  let query: SqlQuery;
  try {
    query = build();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    expect([400, 405]).toContain(err.status);
    stats.refused++;
    return;
  }
  // Only our own SQL in the text: no statement separators, comments or dollar quotes,
  // and none of the payload when it is long enough to be recognisable.
  expect(query.text).not.toMatch(/;|--|\/\*|\$\$|\$tag\$/);
  if (payload.length >= 4 && /[^A-Za-z0-9 ]/.test(payload))
    expect(query.text.includes(payload), query.text).toBe(false);
  try {
    await db.run(query);
    stats.ran++;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    // A value the column type cannot read (22P02 invalid text, 22021 bad encoding, ...);
    // never a syntax (42601) or name (42xxx) error, which would mean the text reached the parser.
    expect(code, `${(err as Error).message} <- ${JSON.stringify(payload)}`).toMatch(/^22/);
    stats.valueErrors++;
  }
}

const quoted = (s: string, q: string) => `${q}${s.replaceAll(q, q + q)}${q}`;

describe('injection corpus', () => {
  it('where: as a string value, a raw value, a column and a quoted column', async () => {
    const people = db.table('people');
    for (const s of CORPUS) {
      for (const where of [
        `name = ${quoted(s, "'")}`,
        `name LIKE ${quoted(s, "'")}`,
        `name IN ('a', ${quoted(s, "'")})`,
        `age = ${quoted(s, "'")}`,
        `name = ${s}`,
        `${s} = 1`,
        `${quoted(s, '"')} = 1`,
        `${quoted(s, '`')} = 'x'`,
        `name = 'a' ${s}`,
        `(${s})`,
      ]) {
        await attempt(s, () => buildListSql(planList(people, { where })));
      }
    }
  });

  it('a string value finds exactly the rows that hold it, nothing more', async () => {
    const people = db.table('people');
    for (const s of CORPUS) {
      if (s.includes('\u0000') || s === '\ud800') continue;
      const plan = planList(people, { where: `name = ${quoted(s, "'")} OR email = ${quoted(s, "'")}` });
      expect(finishList(plan, await db.listRows(buildListSql(plan))).returnedCount, s).toBe(0);
    }
    const plan = planList(people, { where: "name = 'O''Brien'" });
    expect(finishList(plan, await db.listRows(buildListSql(plan))).returnedCount).toBe(1);
  });

  it('fields, orderBy, pageSize, page and nextPage', async () => {
    const people = db.table('people');
    for (const s of CORPUS) {
      for (const query of [
        { fields: s },
        { fields: `id,${s}` },
        { fields: quoted(s, '"') },
        { orderBy: s },
        { orderBy: `name ${s}` },
        { orderBy: quoted(s, '`') },
        { pageSize: s },
        { pageSize: `10${s}` },
        { page: s },
        { nextPage: s },
        { nextPage: `${Buffer.from(JSON.stringify({ v: 1, k: [s] })).toString('base64url')}.AAAAAAAAAAAAAAAAAAAAAA` },
      ]) {
        await attempt(s, () => buildListSql(planList(people, query)));
      }
    }
  });

  it('ids of by-id routes, on an integer and on a text key', async () => {
    const people = db.table('people');
    const odd = db.table('Odd "Name" Table');
    for (const s of CORPUS) {
      await attempt(s, () => buildGetSql(people, s));
      await attempt(s, () => buildGetSql(odd, s));
      await attempt(s, () => buildDeleteSql(people, s));
      await attempt(s, () => buildDeleteSql(odd, s));
      await attempt(s, () => buildUpdateSql(people, s, parseRowBody('{"age": 1}')));
    }
  });

  it('body keys are refused; body values are stored and returned exactly', async () => {
    const odd = db.table('Odd "Name" Table');
    for (const s of CORPUS) {
      await attempt(s, () => buildInsertSql(odd, parseRowBody(JSON.stringify({ [s]: 1 }))));
      await attempt(s, () => buildInsertSql(odd, parseRowBody(`{"Key": "k", ${s}}`)));
    }
    let i = 0;
    for (const s of CORPUS) {
      if (s.includes('\u0000') || s === '\ud800') continue; // PostgreSQL text cannot hold them (22xxx above)
      const key = `key ${i++}`;
      const body = JSON.stringify({ Key: key, 'First Name': s, 'say "hi"': s });
      const [row] = await db.run(buildInsertSql(odd, parseRowBody(body)));
      expect(JSON.parse(row?.row as string)).toEqual({ Key: key, 'First Name': s, 'say "hi"': s, camelCase: null });
      const [got] = await db.run(buildGetSql(odd, key));
      expect(got?.row).toBe(row?.row);
    }
  });

  it('left the canary, the other tables and the catalogue untouched', async () => {
    console.log(`injection corpus: ${CORPUS.length} payloads, ${JSON.stringify(stats)}`);
    expect(await snapshot()).toEqual(before);
    // The corpus was really exercised both ways.
    expect(stats.refused).toBeGreaterThan(500);
    expect(stats.ran).toBeGreaterThan(100);
  });
});
