// Schema migrations: numbered SQL files `migrations/NNN-name.sql`, applied in order at start,
// each in its own transaction, under a session advisory lock so that several relays starting
// together against one store apply each migration exactly once.
//
// The .sql files stay in src/ (tsc does not copy them); the built module finds them there
// through a path relative to itself, so running from dist/ needs no copy step.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Logger } from '../logger.js';

/** Any constant shared by every relay version; `hashtext` is stable across PostgreSQL versions. */
const LOCK_KEY = 'g2c-relay:migrations';
const FILE_PATTERN = /^(\d{3})-([a-z0-9-]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** `relay/src/store/migrations/` from src (tests) or from dist (the bin). */
export function migrationsDir(): string {
  const candidates = [
    new URL('./migrations/', import.meta.url),
    new URL('../../src/store/migrations/', import.meta.url),
  ];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(dir)) return dir;
  }
  throw new Error(`migrations folder not found (looked in ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
}

export async function loadMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const file of (await readdir(dir)).sort()) {
    if (!file.endsWith('.sql')) continue;
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new Error(`migration file ${file} must be named NNN-name.sql`);
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`two migrations have number ${match[1]}`);
    migrations.push({ version, name: match[2]!, sql: await readFile(`${dir}/${file}`, 'utf8') });
  }
  return migrations;
}

/** Applies what is missing; returns the versions applied by this call. */
export async function migrate(pool: pg.Pool, logger?: Logger, migrations?: Migration[]): Promise<number[]> {
  const wanted = migrations ?? (await loadMigrations());
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('select pg_advisory_lock(hashtext($1))', [LOCK_KEY]);
    try {
      await client.query(
        `create table if not exists schema_migrations (
           version int primary key, name text not null, applied_at timestamptz not null default now())`,
      );
      const done = new Set(
        (await client.query<{ version: number }>('select version from schema_migrations')).rows.map((r) => r.version),
      );
      const newest = Math.max(0, ...done);
      const known = Math.max(0, ...wanted.map((m) => m.version));
      if (newest > known) {
        logger?.warn({ storeVersion: newest, knownVersion: known }, 'the store was migrated by a newer relay');
      }
      for (const migration of wanted) {
        if (done.has(migration.version)) continue;
        await client.query('begin');
        try {
          await client.query(migration.sql);
          await client.query('insert into schema_migrations (version, name) values ($1, $2)', [
            migration.version,
            migration.name,
          ]);
          await client.query('commit');
        } catch (err) {
          await client.query('rollback');
          throw new Error(
            `migration ${String(migration.version).padStart(3, '0')}-${migration.name} failed: ${(err as Error).message}`,
            { cause: err },
          );
        }
        applied.push(migration.version);
        logger?.info({ version: migration.version, name: migration.name }, 'store migration applied');
      }
    } finally {
      await client.query('select pg_advisory_unlock(hashtext($1))', [LOCK_KEY]).catch(() => {});
    }
  } finally {
    client.release();
  }
  return applied;
}
