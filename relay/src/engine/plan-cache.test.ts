import { describe, expect, it } from 'vitest';
import { finishList } from './paging.js';
import { planList } from './plan.js';
import { ListPlanCache, PLAN_CACHE } from './plan-cache.js';
import type { ColumnInfo, TableInfo } from './schema.js';
import { buildListSql } from './sql.js';

function column(name: string, type: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, type, nativeType: type, nullable: true, hasDefault: false, readOnly: false, isArray: false, ...extra };
}

const table = (): TableInfo => ({
  schema: 'public',
  name: 'contacts',
  kind: 'table',
  primaryKey: ['id'],
  columns: [column('id', 'int4', { nullable: false }), column('name', 'text')],
});
const key = Buffer.alloc(32, 3);
const rows = (n: number) => Array.from({ length: n }, (_, i) => [`{"id":${i + 1}}`, `{${i + 1}}`] as const);

describe('ListPlanCache', () => {
  it('answers what planList and buildListSql answer, and remembers first pages', () => {
    const cache = new ListPlanCache(key);
    const t = table();
    const query = { where: "name = 'a'", orderBy: 'name desc', pageSize: '2' };
    const first = cache.plan(t, query, false);
    const direct = planList(t, query, { pageTokenKey: key });
    expect(first.plan).toEqual(direct);
    expect(first.sql).toEqual(buildListSql(direct));
    expect(cache.plan(t, { ...query }, false)).toBe(first);
    // stripNulls, another table object (a refreshed schema) or other parameters: another plan.
    expect(cache.plan(t, query, true).plan.stripNulls).toBe(true);
    expect(cache.plan(table(), query, false)).not.toBe(first);
    expect(cache.plan(t, { ...query, pageSize: '3' }, false).plan.pageSize).toBe(3);
  });

  it('a nextPage token moves the remembered plan without changing it', () => {
    const cache = new ListPlanCache(key);
    const t = table();
    const first = cache.plan(t, { pageSize: '2' }, false);
    const token = finishList(first.plan, rows(3)).nextPageToken as string;
    const second = cache.plan(t, { pageSize: '2', nextPage: token }, false);
    expect(second.plan).toEqual(planList(t, { pageSize: '2', nextPage: token }, { pageTokenKey: key }));
    expect(second.plan.after).toEqual(['2']);
    expect(second.sql.text).toMatch(/WHERE t\."id" > \$1/);
    expect(first.plan.after).toBeUndefined();
    expect(cache.plan(t, { pageSize: '2' }, false)).toBe(first);
  });

  it('refuses what planList refuses', () => {
    const cache = new ListPlanCache(key);
    const t = table();
    expect(() => cache.plan(t, { where: 'nope = 1' }, false)).toThrow(/unknown field/);
    expect(() => cache.plan(t, { pageSize: ['1', '2'] as unknown as string }, false)).toThrow(/given once/);
    expect(() => cache.plan(t, { nextPage: 'x'.repeat(9000) }, false)).toThrow(/longer than/);
    const other = finishList(cache.plan(t, { pageSize: '3' }, false).plan, rows(4)).nextPageToken as string;
    expect(() => cache.plan(t, { pageSize: '2', nextPage: other }, false)).toThrow(/another query/);
  });

  it('stays bounded per table', () => {
    const cache = new ListPlanCache(key);
    const t = table();
    const first = cache.plan(t, { pageSize: '1' }, false);
    for (let i = 2; i <= PLAN_CACHE.maxEntriesPerTable + 1; i++) cache.plan(t, { pageSize: String(i) }, false);
    expect(cache.plan(t, { pageSize: '1' }, false)).not.toBe(first);
  });
});
