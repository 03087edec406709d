// Remembers list plans and their SQL. Clients page through the same few queries again and
// again, and planning (CEQL parse, name resolution, the token binding's HMAC) plus the SQL
// text are the engine's own share of a list call. Plans are kept per TableInfo object (a
// schema refresh makes new ones, so plans of an old schema go with it) and per list
// parameters without nextPage; a nextPage token only moves a remembered plan (continuePlan),
// and the SQL of that page is built afresh. Plans and SQL are read-only once remembered.
import { continuePlan, DEFAULT_LIST_LIMITS, type ListPlan, type ListQuery, planList } from './plan.js';
import type { TableInfo } from './schema.js';
import { buildListSql, type SqlQuery } from './sql.js';

export const PLAN_CACHE = {
  /** Plans remembered per table; beyond, the oldest is forgotten. */
  maxEntriesPerTable: 256,
  /** Parameters longer than this (in total) are planned every time instead of remembered. */
  maxKeyLength: 2048,
};

export interface PlannedList {
  plan: ListPlan;
  sql: SqlQuery;
}

export class ListPlanCache {
  private readonly tables = new WeakMap<TableInfo, Map<string, PlannedList>>();

  /** `pageTokenKey` signs the page tokens of every plan made here (planList's option). */
  constructor(private readonly pageTokenKey: Uint8Array) {}

  /** The plan and SQL of `GET /{table}` with `query`; 400 (as planList) when a parameter is wrong. */
  plan(table: TableInfo, query: ListQuery, stripNulls: boolean): PlannedList {
    const options = { pageTokenKey: this.pageTokenKey, stripNulls };
    const { where, fields, orderBy, pageSize, page, nextPage } = query;
    const texts = [where, fields, orderBy, pageSize, page];
    // Anything unusual (a repeated parameter arrives as an array, an over-long token) goes
    // through planList, which says what is wrong with it.
    const plain =
      texts.every((v) => v === undefined || typeof v === 'string') &&
      (nextPage === undefined ||
        (typeof nextPage === 'string' && nextPage.length <= DEFAULT_LIST_LIMITS.maxParameterLength));
    const key = plain ? JSON.stringify([stripNulls, ...texts]) : undefined;
    if (key === undefined || key.length > PLAN_CACHE.maxKeyLength) {
      const plan = planList(table, query, options);
      return { plan, sql: buildListSql(plan) };
    }
    let plans = this.tables.get(table);
    if (!plans) {
      plans = new Map();
      this.tables.set(table, plans);
    }
    let first = plans.get(key);
    if (!first) {
      const plan = planList(table, { where, fields, orderBy, pageSize, page }, options);
      const sql = buildListSql(plan);
      first = { plan, sql: { text: sql.text, values: Object.freeze(sql.values) as unknown[] } };
      if (plans.size >= PLAN_CACHE.maxEntriesPerTable) plans.delete(plans.keys().next().value as string);
      plans.set(key, first);
    }
    if (nextPage === undefined || nextPage === '') return first;
    const plan = continuePlan(first.plan, nextPage);
    return { plan, sql: buildListSql(plan) };
  }
}
