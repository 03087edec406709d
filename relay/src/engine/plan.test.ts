import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import type { CeqlError } from './ceql/lexer.js';
import { finishList } from './paging.js';
import { DEFAULT_LIST_LIMITS, type ListQuery, planList } from './plan.js';
import type { ColumnInfo, TableInfo } from './schema.js';

function column(name: string, type: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, type, nativeType: type, nullable: true, hasDefault: false, readOnly: false, isArray: false, ...extra };
}

const table: TableInfo = {
  schema: 'public',
  name: 'contacts',
  kind: 'table',
  primaryKey: ['id'],
  columns: [
    column('id', 'int4', { nullable: false }),
    column('name', 'text'),
    column('Name', 'text'),
    column('firstName', 'text'),
    column('First Name', 'text'),
    column('doc', 'json', { nativeType: 'json' }),
  ],
};

function refusal(query: ListQuery, t = table): ApiError {
  try {
    planList(t, query);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('accepted');
}

const names = (q: ListQuery) => planList(table, q).columns.map((c) => c.name);

describe('planList', () => {
  it('defaults: every column, key order, 50 rows, keyset paging', () => {
    const plan = planList(table, {});
    expect(plan.columns).toBe(table.columns);
    expect(plan.order.map((k) => [k.column.name, k.descending])).toEqual([['id', false]]);
    expect([plan.pageSize, plan.offset, plan.paging, plan.filter, plan.after, plan.stripNulls]).toEqual([
      50,
      0,
      'keyset',
      undefined,
      undefined,
      false,
    ]);
  });

  it('refuses a parameter given twice (an array from the query string)', () => {
    const err = refusal({ where: ['a = 1', 'b = 2'] } as unknown as ListQuery);
    expect([err.status, err.code, err.message]).toEqual([
      400,
      'invalid_parameter',
      'where must be given once, as text.',
    ]);
    expect(refusal({ pageSize: ['1', '2'] } as unknown as ListQuery).code).toBe('invalid_parameter');
  });

  it('ignores empty parameters', () => {
    expect(
      planList(table, { where: ' ', fields: '', orderBy: '', pageSize: '', page: '', nextPage: '' }).filter,
    ).toBeUndefined();
  });

  it('fields: exact names first; bare names fall back to a unique case-insensitive match', () => {
    expect(names({ fields: 'name, Name, "First Name", `firstName`, id, name' })).toEqual([
      'name',
      'Name',
      'First Name',
      'firstName',
      'id',
    ]);
    expect(names({ fields: 'FIRSTNAME,ID' })).toEqual(['firstName', 'id']);
    // NAME matches both name and Name: ambiguous, so unknown.
    expect(refusal({ fields: 'NAME' }).message).toMatch(/unknown field "NAME"/);
    // Quoted names never fold.
    expect(refusal({ fields: '"ID"' }).code).toBe('invalid_parameter');
  });

  it('fields: errors point at the position in the parameter', () => {
    const err = refusal({ fields: 'id,,name' }) as CeqlError;
    expect([err.status, err.code, err.position]).toEqual([400, 'invalid_parameter', 3]);
    expect(err.message).toMatch(/^Invalid fields at position 3: expected a field name, found ','/);
    expect((refusal({ fields: 'id name' }) as CeqlError).position).toBe(3);
    expect((refusal({ fields: "id, 'x'" }) as CeqlError).message).toMatch(/expected a field name/);
    expect(refusal({ fields: 'id; DROP TABLE x' }).code).toBe('invalid_parameter');
    expect(refusal({ fields: '"x"";DROP TABLE canary;--"' }).message).toMatch(
      /unknown field "x\\";DROP TABLE canary;--"/,
    );
  });

  it('orderBy: directions, the primary key appended, refusals', () => {
    const order = (orderBy: string) =>
      planList(table, { orderBy }).order.map((k) => `${k.column.name} ${k.descending ? 'desc' : 'asc'}`);
    expect(order('name DESC, "First Name"')).toEqual(['name desc', 'First Name asc', 'id asc']);
    expect(order('id desc')).toEqual(['id desc']);
    expect(order('name asc, id desc')).toEqual(['name asc', 'id desc']);
    expect(refusal({ orderBy: 'doc' }).message).toMatch(/"doc" \(json\) cannot be sorted/);
    expect(refusal({ orderBy: 'name, name desc' }).message).toMatch(/appears twice/);
    expect(refusal({ orderBy: 'name sideways' }).message).toMatch(/expected a comma or the end, found 'sideways'/);
    expect(refusal({ orderBy: 'nope' }).message).toMatch(/^Invalid orderBy at position 0: unknown field "nope"/);
    const many = { ...table, columns: Array.from({ length: 20 }, (_, i) => column(`c${i}`, 'int4')) };
    expect(refusal({ orderBy: many.columns.map((c) => c.name).join(',') }, many).message).toMatch(
      /more than 16 sort fields/,
    );
  });

  it('where: names resolved like fields, unknown ones refused at their position', () => {
    const plan = planList(table, { where: 'firstname = \'a\' AND "Name" IS NULL' });
    expect(plan.filter).toEqual({
      kind: 'and',
      operands: [
        { kind: 'compare', column: table.columns[3], op: '=', value: 'a' },
        { kind: 'isNull', column: table.columns[2], not: false },
      ],
    });
    const err = refusal({ where: "id = 1 AND secret_column = 'x'" }) as CeqlError;
    expect([err.code, err.position]).toEqual(['invalid_where', 11]);
    expect(err.message).toMatch(/unknown field "secret_column"/);
    expect(err.message).not.toMatch(/firstName|First Name/); // lists no other names
  });

  it('pageSize: default 50, 1..1000, anything else 400', () => {
    expect(planList(table, { pageSize: '1000' }).pageSize).toBe(1000);
    expect(planList(table, { pageSize: 7 }).pageSize).toBe(7);
    for (const pageSize of ['1001', '0', '-1', '1.5', 'ten', '1e3', '99999999999999999999']) {
      const err = refusal({ pageSize });
      expect([err.status, err.code]).toEqual([400, 'invalid_parameter']);
      expect(err.message).toMatch(/pageSize must be a whole number from 1 to 1000/);
    }
    expect(DEFAULT_LIST_LIMITS).toMatchObject({ defaultPageSize: 50, maxPageSize: 1000 });
    expect(planList(table, { pageSize: '2000' }, { limits: { maxPageSize: 5000 } }).pageSize).toBe(2000);
  });

  it('page is 1-based and becomes an offset', () => {
    expect(planList(table, { page: '1', pageSize: '10' }).offset).toBe(0);
    expect(planList(table, { page: '4', pageSize: '10' }).offset).toBe(30);
    expect(refusal({ page: '0' }).message).toMatch(/page must be a whole number from 1/);
  });

  it('a composite primary key is appended whole, after the orderBy', () => {
    const composite: TableInfo = { ...table, primaryKey: ['name', 'id'] };
    const order = planList(composite, { orderBy: 'id desc, firstName' }).order;
    expect(order.map((k) => [k.column.name, k.descending])).toEqual([
      ['id', true],
      ['firstName', false],
      ['name', false],
    ]);
    expect(planList(composite, {}).paging).toBe('keyset');
  });

  it('tables without a primary key (and views) page by offset', () => {
    const view: TableInfo = { ...table, kind: 'view', primaryKey: [] };
    expect(planList(view, {}).paging).toBe('offset');
    // Ordered by every sortable column (not the json one) so that OFFSET pages are deterministic.
    const order = planList(view, { orderBy: 'name desc' }).order;
    expect(order.map((k) => `${k.column.name}${k.descending ? ' desc' : ''}`)).toEqual([
      'name desc',
      'id',
      'Name',
      'firstName',
      'First Name',
    ]);
  });
});

describe('page tokens bound to their query', () => {
  const rows = (n: number) =>
    Array.from({ length: n }, (_, i): [string, (string | null)[]] => [`{"id":${i + 1}}`, [String(i + 1)]]);

  it('finishList: token only when a row follows; it continues after the last row shown', () => {
    const plan = planList(table, { pageSize: '2' });
    expect(finishList(plan, rows(2))).toEqual({ body: '[{"id":1},{"id":2}]', returnedCount: 2 });
    const page = finishList(plan, rows(3));
    expect(page.body).toBe('[{"id":1},{"id":2}]');
    expect(page.returnedCount).toBe(2);
    expect(page.nextPageToken).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    const next = planList(table, { pageSize: '2', nextPage: page.nextPageToken });
    expect([next.after, next.offset]).toEqual([['2'], 0]);
    expect(finishList(plan, [])).toEqual({ body: '[]', returnedCount: 0 });
  });

  it('the token works with the same query written differently, and nextPage wins over page', () => {
    const query = { where: "name = 'a' and id > 1", fields: 'id,name', orderBy: 'name', pageSize: '2' };
    const named = rows(3).map(([row, cursor]) => [row, ['a', ...cursor]] as const);
    const token = finishList(planList(table, query), named).nextPageToken;
    const same = { where: "(name = 'a')  AND  (ID>1)", fields: 'ID, "name"', orderBy: 'name asc, id', pageSize: 2 };
    expect(planList(table, { ...same, nextPage: token, page: '5' })).toMatchObject({ after: ['a', '2'], offset: 0 });
  });

  it('reused with another query -> 400 invalid_page_token', () => {
    const query = { where: "name = 'a'", fields: 'id,name', orderBy: 'name', pageSize: '2' };
    const nextPage = finishList(planList(table, query), rows(3)).nextPageToken;
    const others: ListQuery[] = [
      { ...query, where: "name = 'b'" },
      { ...query, where: undefined },
      { ...query, fields: 'id' },
      { ...query, fields: undefined },
      { ...query, orderBy: 'name desc' },
      { ...query, pageSize: '3' },
    ];
    for (const other of others) {
      const err = refusal({ ...other, nextPage });
      expect([err.status, err.code]).toEqual([400, 'invalid_page_token']);
      expect(err.message).toMatch(/belongs to another query/);
    }
    expect(refusal({ ...query, nextPage }, { ...table, name: 'other' }).code).toBe('invalid_page_token');
  });

  it('a key signs tokens: the same query with another key refuses them', () => {
    const token = finishList(planList(table, {}, { pageTokenKey: 'k1' }), rows(51)).nextPageToken;
    expect(planList(table, { nextPage: token }, { pageTokenKey: 'k1' }).after).toEqual(['50']);
    expect(() => planList(table, { nextPage: token }, { pageTokenKey: 'k2' })).toThrow(/belongs to another query/);
    expect(() => planList(table, { nextPage: token })).toThrow(/belongs to another query/);
  });

  it('altered and malformed tokens -> 400 invalid_page_token', () => {
    const token = finishList(planList(table, {}), rows(51)).nextPageToken as string;
    const [payload, mac] = token.split('.') as [string, string];
    const forged = Buffer.from('{"v":1,"k":["0 OR 1=1"]}').toString('base64url');
    for (const bad of [
      `${forged}.${mac}`,
      `${payload}.${mac.slice(0, -1)}A`,
      `${payload}`,
      `${payload}.${mac}.x`,
      'not a token',
      "'; DROP TABLE canary; --",
      '',
    ]) {
      if (bad === '') continue;
      expect(refusal({ nextPage: bad }).code, bad).toBe('invalid_page_token');
    }
  });

  it('keyset tokens count the rows before them; too long ones become offset tokens', () => {
    const third = planList(table, { pageSize: '2', page: '3' });
    expect(third.position).toBe(4);
    const token = finishList(third, rows(3)).nextPageToken;
    const fourth = planList(table, { pageSize: '2', nextPage: token });
    expect([fourth.after, fourth.offset, fourth.position]).toEqual([['2'], 0, 6]);
    const long = rows(3).map(([row]) => [row, ['x'.repeat(5000)]] as const);
    const fallback = finishList(fourth, long).nextPageToken as string;
    expect(fallback.length).toBeLessThan(200);
    const fifth = planList(table, { pageSize: '2', nextPage: fallback });
    expect([fifth.after, fifth.offset, fifth.position]).toEqual([undefined, 8, 8]);
    const sixth = planList(table, { pageSize: '2', nextPage: finishList(fifth, rows(3)).nextPageToken });
    expect([sixth.after, sixth.position]).toEqual([['2'], 10]);
  });

  it('offset tables get offset tokens', () => {
    const view: TableInfo = { ...table, kind: 'view', primaryKey: [] };
    const first = planList(view, { pageSize: '2', page: '3' });
    const token = finishList(first, rows(3)).nextPageToken;
    expect(planList(view, { pageSize: '2', nextPage: token }).offset).toBe(6);
    // A keyset token does not fit an offset plan of the same query text and vice versa.
    const keyToken = finishList(planList(table, { pageSize: '2' }), rows(3)).nextPageToken;
    expect(refusal({ pageSize: '2', nextPage: keyToken }, view).code).toBe('invalid_page_token');
  });
});
