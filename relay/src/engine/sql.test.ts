import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import { planList } from './plan.js';
import type { ColumnInfo, TableInfo } from './schema.js';
import { buildDeleteSql, buildGetSql, buildInsertSql, buildListSql, buildUpdateSql } from './sql.js';
import { parseRowBody } from './values.js';

function column(name: string, type: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, type, nativeType: type, nullable: true, hasDefault: false, readOnly: false, isArray: false, ...extra };
}

export const people: TableInfo = {
  schema: 'public',
  name: 'people',
  kind: 'table',
  primaryKey: ['id'],
  columns: [
    column('id', 'int4', { nullable: false, hasDefault: true }),
    column('name', 'text', { nullable: false }),
    column('age', 'int4'),
    column('data', 'bytea'),
    column('doc', 'json'),
    column('Odd "Col"', 'text'),
    column('pt', 'point'),
    column('total', 'int8', { readOnly: true }),
  ],
};

const SELECT =
  'SELECT row_to_json(p.*)::text AS "row", ARRAY[t."id"::text] AS "cursor" FROM "public"."people" AS t ' +
  'CROSS JOIN LATERAL (SELECT t."id" AS "id", t."name" AS "name", t."age" AS "age", ' +
  `translate(encode(t."data", 'base64'), E'\\n', '') AS "data", t."doc" AS "doc", t."Odd ""Col""" AS "Odd ""Col""", ` +
  't."pt" AS "pt", t."total" AS "total") AS p';

const list = (where: string) => buildListSql(planList(people, { where }));

describe('buildListSql: where -> exact SQL and parameters, for every operator', () => {
  const table: Array<[string, string, unknown[]]> = [
    ["name = 'x'", 't."name" = $1', ['x']],
    ["name != 'x'", 't."name" <> $1', ['x']],
    ["name <> 'x'", 't."name" <> $1', ['x']],
    ['age < 1', 't."age" < $1', ['1']],
    ['age <= 1', 't."age" <= $1', ['1']],
    ['age > 9007199254740993', 't."age" > $1', ['9007199254740993']],
    ['age >= -1.50', 't."age" >= $1', ['-1.50']],
    ['age = true', 't."age" = $1', ['true']],
    ["name LIKE 'a%'", 't."name" LIKE $1', ['a%']],
    ["name NOT LIKE 'a%'", 't."name" NOT LIKE $1', ['a%']],
    ["name ILIKE 'a%'", 't."name" ILIKE $1', ['a%']],
    ["name NOT ILIKE 'a%'", 't."name" NOT ILIKE $1', ['a%']],
    ["age LIKE '3%'", 't."age"::text LIKE $1', ['3%']],
    ["age IN (1, 2, '3')", 't."age" IN ($1, $2, $3)', ['1', '2', '3']],
    ['age NOT IN (1)', 't."age" NOT IN ($1)', ['1']],
    ['age IS NULL', 't."age" IS NULL', []],
    ['age IS NOT NULL', 't."age" IS NOT NULL', []],
    ["data = 'AAE='", `t."data" = decode($1, 'base64')`, ['AAE=']],
    ["data IN ('AAE=', '')", `t."data" IN (decode($1, 'base64'), decode($2, 'base64'))`, ['AAE=', '']],
    ["data LIKE 'AA%'", `translate(encode(t."data", 'base64'), E'\\n', '') LIKE $1`, ['AA%']],
    [`doc = '{"a":1}'`, 't."doc"::jsonb = $1::jsonb', ['{"a":1}']],
    [`doc IN ('1', '2')`, 't."doc"::jsonb IN ($1::jsonb, $2::jsonb)', ['1', '2']],
    ['"Odd ""Col""" = \'y\'', 't."Odd ""Col""" = $1', ['y']],
    ["pt = '(1,2)'", 't."pt"::text = $1', ['(1,2)']],
    ["pt IN ('(1,2)')", 't."pt"::text IN ($1)', ['(1,2)']],
    ['total = 5', 't."total" = $1', ['5']],
    ["NOT name = 'x'", 'NOT t."name" = $1', ['x']],
    ["name = 'a' AND age = 1", '(t."name" = $1 AND t."age" = $2)', ['a', '1']],
    ["name = 'a' OR age = 1", '(t."name" = $1 OR t."age" = $2)', ['a', '1']],
    [
      "NOT (name = 'a' OR (age > 1 AND age < 9)) AND age IS NOT NULL",
      '(NOT (t."name" = $1 OR (t."age" > $2 AND t."age" < $3)) AND t."age" IS NOT NULL)',
      ['a', '1', '9'],
    ],
    ["name = '''; DROP TABLE people; --'", 't."name" = $1', ["'; DROP TABLE people; --"]],
    ["NAME = 'x'", 't."name" = $1', ['x']],
  ];
  it.each(table)('%s', (where, condition, values) => {
    expect(list(where)).toEqual({
      text: `${SELECT} WHERE ${condition} ORDER BY t."id" LIMIT $${values.length + 1}`,
      values: [...values, 51],
    });
  });

  it('without where: the whole table in key order, one row more than the page', () => {
    expect(buildListSql(planList(people, {}))).toEqual({ text: `${SELECT} ORDER BY t."id" LIMIT $1`, values: [51] });
  });

  it('fields, orderBy, pageSize and page', () => {
    const plan = planList(people, { fields: 'name,id', orderBy: 'age desc, name', pageSize: '10', page: '3' });
    expect(buildListSql(plan)).toEqual({
      text:
        'SELECT row_to_json(p.*)::text AS "row", ARRAY[t."age"::text, t."name"::text, t."id"::text] AS "cursor" ' +
        'FROM "public"."people" AS t CROSS JOIN LATERAL (SELECT t."name" AS "name", t."id" AS "id") AS p ' +
        'ORDER BY t."age" DESC, t."name", t."id" LIMIT $1 OFFSET $2',
      values: [11, 20],
    });
  });

  it('stripNulls leaves null fields out at the top level only', () => {
    const plan = planList(people, { fields: 'id' }, { stripNulls: true });
    expect(buildListSql(plan).text).toBe(
      `SELECT coalesce((SELECT json_object_agg(e.key, e.value) FROM json_each(row_to_json(p.*)) AS e WHERE json_typeof(e.value) <> 'null'), '{}')::text AS "row", ` +
        'ARRAY[t."id"::text] AS "cursor" FROM "public"."people" AS t CROSS JOIN LATERAL (SELECT t."id" AS "id") AS p ORDER BY t."id" LIMIT $1',
    );
  });

  it('a table without a primary key pages by offset and returns no cursor', () => {
    const nokey: TableInfo = { ...people, primaryKey: [], name: 'no"key' };
    const plan = planList(nokey, { fields: 'name', orderBy: 'name' });
    expect(plan.paging).toBe('offset');
    expect(buildListSql(plan)).toEqual({
      text:
        'SELECT row_to_json(p.*)::text AS "row" FROM "public"."no""key" AS t CROSS JOIN LATERAL (SELECT t."name" AS "name") AS p ' +
        'ORDER BY t."name", t."id", t."age", t."data", t."Odd ""Col""", t."total" LIMIT $1',
      values: [51],
    });
  });
});

describe('buildListSql: keyset conditions', () => {
  const withCursor = (orderBy: string, after: (string | null)[]) => {
    const plan = planList(people, { fields: 'id', orderBy });
    plan.after = after;
    const { text, values } = buildListSql(plan);
    return { condition: /WHERE (.*) ORDER BY/.exec(text)?.[1], values };
  };

  it('one non-null key: a plain comparison', () => {
    expect(withCursor('', ['7'])).toEqual({ condition: 't."id" > $1', values: ['7', 51] });
    expect(withCursor('id desc', ['7'])).toEqual({ condition: 't."id" < $1', values: ['7', 51] });
  });

  it('non-null keys in one direction: a row comparison', () => {
    expect(withCursor('name', ['b', '7'])).toEqual({
      condition: '(t."name", t."id") > ($1, $2)',
      values: ['b', '7', 51],
    });
  });

  it('mixed directions: one term per key', () => {
    expect(withCursor('name desc', ['b', '7'])).toEqual({
      condition: '(t."name" < $1 OR (t."name" = $1 AND t."id" > $2))',
      values: ['b', '7', 51],
    });
  });

  it('a nullable key: NULLs sort last ascending, first descending', () => {
    expect(withCursor('age', ['30', '7'])).toEqual({
      condition: '((t."age" > $1 OR t."age" IS NULL) OR (t."age" = $1 AND t."id" > $2))',
      values: ['30', '7', 51],
    });
    expect(withCursor('age', [null, '7'])).toEqual({
      condition: '((t."age" IS NULL AND t."id" > $1))',
      values: ['7', 51],
    });
    expect(withCursor('age desc', ['30', '7'])).toEqual({
      condition: '(t."age" < $1 OR (t."age" = $1 AND t."id" > $2))',
      values: ['30', '7', 51],
    });
    expect(withCursor('age desc', [null, '7'])).toEqual({
      condition: '(t."age" IS NOT NULL OR (t."age" IS NULL AND t."id" > $1))',
      values: ['7', 51],
    });
  });

  it('comes after the where parameters', () => {
    const plan = planList(people, { where: 'age > 3', fields: 'id' });
    plan.after = ['9'];
    expect(buildListSql(plan)).toMatchObject({ values: ['3', '9', 51] });
    expect(buildListSql(plan).text).toContain('WHERE t."age" > $1 AND t."id" > $2 ORDER BY t."id" LIMIT $3');
  });
});

const ROW =
  'SELECT row_to_json(p.*)::text AS "row" FROM w AS t CROSS JOIN LATERAL (SELECT t."id" AS "id", t."name" AS "name", ' +
  `t."age" AS "age", translate(encode(t."data", 'base64'), E'\\n', '') AS "data", t."doc" AS "doc", ` +
  't."Odd ""Col""" AS "Odd ""Col""", t."pt" AS "pt", t."total" AS "total") AS p';

describe('by-id and write statements', () => {
  it('get by id', () => {
    expect(buildGetSql(people, '42')).toEqual({
      text: `${ROW.replace('FROM w AS t', 'FROM "public"."people" AS t')} WHERE t."id" = $1`,
      values: ['42'],
    });
  });

  it('insert: only the given columns, values parsed by PostgreSQL from the JSON text', () => {
    const body = '{"name": "Ann", "data": "AAE=", "Odd \\"Col\\"": null}';
    expect(buildInsertSql(people, parseRowBody(body))).toEqual({
      text:
        'WITH w AS (INSERT INTO "public"."people" ("name", "data", "Odd ""Col""") ' +
        `SELECT r."name", decode(r."data", 'base64'), r."Odd ""Col""" ` +
        'FROM json_to_record($1::json) AS r("name" text, "data" text, "Odd ""Col""" text) RETURNING *) ' +
        ROW,
      values: [body],
    });
  });

  it('insert of an empty object: the defaults', () => {
    expect(buildInsertSql(people, parseRowBody('{}'))).toEqual({
      text: `WITH w AS (INSERT INTO "public"."people" DEFAULT VALUES RETURNING *) ${ROW}`,
      values: [],
    });
  });

  it('update: only the given columns', () => {
    const body = '{"age": 9007199254740993, "data": null}';
    expect(buildUpdateSql(people, '42', parseRowBody(body))).toEqual({
      text:
        `WITH w AS (UPDATE "public"."people" AS t SET "age" = r."age", "data" = decode(r."data", 'base64') ` +
        'FROM json_to_record($1::json) AS r("age" int4, "data" text) WHERE t."id" = $2 RETURNING t.*) ' +
        ROW,
      values: [body, '42'],
    });
  });

  it('delete returns the deleted row', () => {
    expect(buildDeleteSql(people, '42')).toEqual({
      text: `WITH w AS (DELETE FROM "public"."people" AS t WHERE t."id" = $1 RETURNING t.*) ${ROW}`,
      values: ['42'],
    });
  });

  it('a bytea key is given in base64', () => {
    const table: TableInfo = { ...people, primaryKey: ['data'] };
    expect(buildGetSql(table, 'AAE=').text).toMatch(/WHERE t\."data" = decode\(\$1, 'base64'\)$/);
  });

  const refusal = (f: () => unknown): ApiError => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      return err as ApiError;
    }
    throw new Error('accepted');
  };

  it('refuses unknown and read-only fields, and an empty PATCH, with 400', () => {
    const unknown = refusal(() => buildInsertSql(people, parseRowBody('{"nope": 1}')));
    expect([unknown.status, unknown.code, unknown.message]).toEqual([
      400,
      'bad_request',
      '"nope" is not a field of "people" (GET /objects/{name}/metadata lists them).',
    ]);
    // Field names are matched exactly: no case folding in bodies.
    expect(refusal(() => buildInsertSql(people, parseRowBody('{"Name": 1}'))).code).toBe('bad_request');
    expect(refusal(() => buildUpdateSql(people, '1', parseRowBody('{"total": 1}'))).message).toMatch(
      /"total" is read-only/,
    );
    expect(refusal(() => buildUpdateSql(people, '1', parseRowBody('{}'))).message).toMatch(/no field to change/);
  });

  it('refuses by-id statements without a single-column key, and writes to views, with 405', () => {
    const composite: TableInfo = { ...people, primaryKey: ['id', 'name'] };
    for (const f of [
      () => buildGetSql(composite, '1'),
      () => buildUpdateSql(composite, '1', parseRowBody('{"age": 1}')),
      () => buildDeleteSql({ ...people, primaryKey: [] }, '1'),
      () => buildInsertSql({ ...people, kind: 'view', primaryKey: [] }, parseRowBody('{}')),
    ]) {
      const err = refusal(f);
      expect([err.status, err.code]).toEqual([405, 'method_not_allowed']);
    }
    expect(() => buildInsertSql({ ...people, primaryKey: [] }, parseRowBody('{}'))).not.toThrow();
  });
});
