import { describe, expect, it } from 'vitest';
import type { TableInfo } from './schema.js';
import { SCHEMA_CACHE_DEFAULTS, SchemaCache, tableNameFilter } from './schema-cache.js';

const table = (name: string): TableInfo => ({ schema: 'public', name, kind: 'table', primaryKey: [], columns: [] });

describe('tableNameFilter', () => {
  it('matches exact names and prefix*', () => {
    const f = tableNameFilter(['contacts', 'data_*']);
    expect(['contacts', 'data_', 'data_x', 'Contacts', 'contacts2', 'dat'].filter(f)).toEqual([
      'contacts',
      'data_',
      'data_x',
    ]);
  });
  it('lets everything through without patterns', () => {
    expect(tableNameFilter(undefined)('anything')).toBe(true);
  });
});

describe('SchemaCache', () => {
  function cache(ttlMs = 1000) {
    let now = 0;
    let loads = 0;
    let names = ['a'];
    const c = new SchemaCache(
      async () => {
        loads++;
        return names.map(table);
      },
      { ttlMs, now: () => now },
    );
    return {
      c,
      loads: () => loads,
      advance: (ms: number) => {
        now += ms;
      },
      setNames: (n: string[]) => {
        names = n;
      },
    };
  }

  it('loads once for concurrent first uses', async () => {
    const t = cache();
    await Promise.all([t.c.all(), t.c.all(), t.c.table('a')]);
    expect(t.loads()).toBe(1);
  });

  it('refreshes in the background after the TTL, answering the stale schema meanwhile', async () => {
    const t = cache(1000);
    await t.c.all();
    t.setNames(['a', 'b']);
    t.advance(1001);
    expect([...(await t.c.all()).keys()]).toEqual(['a']);
    await new Promise((r) => setTimeout(r, 0));
    expect(t.loads()).toBe(2);
    expect([...(await t.c.all()).keys()]).toEqual(['a', 'b']);
  });

  it('an unknown name reloads at once, at most once per interval', async () => {
    const t = cache(60_000);
    await t.c.all();
    t.setNames(['a', 'new']);
    expect(await t.c.table('new')).toMatchObject({ name: 'new' });
    expect(await t.c.table('missing')).toBeUndefined();
    expect(t.loads()).toBe(2); // the second miss came too soon after the first
    t.advance(SCHEMA_CACHE_DEFAULTS.minMissRefreshIntervalMs);
    expect(await t.c.table('missing')).toBeUndefined();
    expect(t.loads()).toBe(3);
  });
});
