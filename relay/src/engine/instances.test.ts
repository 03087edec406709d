import { afterEach, describe, expect, it } from 'vitest';
import type { InstanceRecord } from '../store/instances.js';
import { InstanceRuntimes } from './instances.js';

const record = (updatedAt = new Date(1000), orgId = 'org-a'): InstanceRecord => ({
  id: 'i1',
  orgId,
  name: 'crm',
  elementKey: 'postgresql',
  tags: [],
  configuration: { 'db.host': '127.0.0.1:1', 'db.name': 'crm', username: 'app' },
  password: 'pw',
  tunnelId: null,
  createdAt: new Date(0),
  updatedAt,
});

describe('InstanceRuntimes', () => {
  const runtimes = new InstanceRuntimes({});
  afterEach(() => runtimes.close());

  it('concurrent first calls share one store read and one runtime (one pool)', async () => {
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 10));
      return record();
    };
    const all = await Promise.all(Array.from({ length: 20 }, () => runtimes.get('i1', load)));
    expect(loads).toBe(1);
    expect(new Set(all.map((r) => r?.pool)).size).toBe(1);
    // Within the recheck interval the store is not asked again.
    expect(await runtimes.get('i1', load)).toBe(all[0]);
    expect(loads).toBe(1);
  });

  it('a changed record replaces the runtime; a deleted one is forgotten', async () => {
    const first = runtimes.install(record(new Date(1000)));
    const second = runtimes.install(record(new Date(2000)));
    expect(second.pool).not.toBe(first.pool);
    expect(second.version).toBe(2000);
    runtimes.evict('i1');
    let loads = 0;
    expect(
      await runtimes.get('i1', async () => {
        loads++;
        return undefined;
      }),
    ).toBeUndefined();
    expect(loads).toBe(1);
  });
});
