// The "private" database of the demo: a second embedded PostgreSQL, seeded once with the CRM of
// test/fixtures/crm.sql, with a login role `app` that may only read and write its rows.
// Nothing but the agent is meant to reach it: the instance's db.host is this server's address
// as the agent sees it, and the relay reaches it only through the tunnel.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type RunningPostgres, startEmbeddedPostgres } from '@g2c/relay';
import pg from 'pg';

export interface PrivateDatabase {
  server: RunningPostgres;
  database: string;
  user: string;
  password: string;
  /** True when this start created and seeded it. */
  seeded: boolean;
}

export async function startPrivateDatabase(dir: string, crmSql: string, port?: number): Promise<PrivateDatabase> {
  const server = await startEmbeddedPostgres({
    dataDir: join(dir, 'data'),
    passwordFile: join(dir, 'superuser.password'),
    port,
  });
  try {
    const passwordFile = join(dir, 'app.password');
    const database = 'crm';
    const admin = new pg.Client({ connectionString: server.url('postgres') });
    await admin.connect();
    let seeded = false;
    try {
      const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [database]);
      if (!rowCount || !existsSync(passwordFile)) {
        await admin.query(`drop database if exists ${database}`);
        await admin.query('drop role if exists app');
        const password = randomBytes(18).toString('base64url');
        await admin.query(`create role app login password '${password}'`);
        await admin.query(`create database ${database}`);
        await seed(server.url(database), crmSql);
        await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
        seeded = true;
      }
    } finally {
      await admin.end();
    }
    return { server, database, user: 'app', password: (await readFile(passwordFile, 'utf8')).trim(), seeded };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function seed(url: string, crmSql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    await client.query(await readFile(crmSql, 'utf8'));
    await client.query(`
      revoke create on schema public from public;
      grant usage on schema public to app;
      grant select, insert, update, delete on all tables in schema public to app;
      grant usage, select on all sequences in schema public to app;`);
    await client.query('commit');
  } finally {
    await client.end();
  }
}
