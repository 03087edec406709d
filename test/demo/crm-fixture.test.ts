// The CRM fixture loads into an empty database and holds what the demo, the compose stack and
// the firewall test rely on: fixed row counts, the keys that decide which routes exist, and
// the same rows on every load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

describe('test/fixtures/crm.sql', () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startTestPostgres({ fixtures: ['crm.sql'] });
  });
  afterAll(() => db?.stop());

  it('has a few hundred rows in four tables', async () => {
    const { rows } = await db.query(
      `select (select count(*) from accounts)::int as accounts, (select count(*) from contacts)::int as contacts,
              (select count(*) from account_tags)::int as tags, (select count(*) from activity_log)::int as activity`,
    );
    expect(rows[0]).toEqual({ accounts: 40, contacts: 300, tags: 100, activity: 240 });
  });

  it('gives each table the key the engine routes on', async () => {
    const { rows } = await db.query(
      `select c.relname as table, coalesce(array_length(i.indkey::int2[], 1), 0) as key_columns
         from pg_class c left join pg_index i on i.indrelid = c.oid and i.indisprimary
        where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' order by 1`,
    );
    expect(rows).toEqual([
      { table: 'account_tags', key_columns: 2 },
      { table: 'accounts', key_columns: 1 },
      { table: 'activity_log', key_columns: 0 },
      { table: 'contacts', key_columns: 1 },
    ]);
  });

  it('enforces the foreign key and continues the sequences after the seeded ids', async () => {
    await expect(
      db.query(
        `insert into contacts (account_id, first_name, last_name, email) values (999, 'No', 'One', 'x@example.com')`,
      ),
    ).rejects.toMatchObject({ code: '23503' });
    const { rows } = await db.query(
      `insert into contacts (account_id, first_name, last_name, email) values (1, 'New', 'One', 'new@example.com') returning id`,
    );
    // (The refused insert above already took 301 from the sequence.)
    expect(rows[0].id).toBeGreaterThan(300);
    await db.query(`delete from contacts where id = ${Number(rows[0].id)}`);
  });

  it('is deterministic: the same rows on every load', async () => {
    const checksum = `select md5(string_agg(c::text, '|' order by id)) as sum from contacts c`;
    const first = (await db.query(checksum)).rows[0].sum;
    await db.createDatabase('again');
    await db.loadFixture('crm.sql', 'again');
    expect((await db.query(checksum, 'again')).rows[0].sum).toBe(first);
    const { rows } = await db.query(
      `select name, country, annual_revenue from accounts where id = 3 union all
       select email, status, null from contacts where id = 42`,
      'again',
    );
    expect(rows).toEqual([
      { name: 'Initech Labs', country: 'GB', annual_revenue: '375001.50' },
      { name: 'contact42@example.com', country: 'customer', annual_revenue: null },
    ]);
  });
});
