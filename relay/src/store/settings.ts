// Installation-wide values kept in the store (shared by every relay on it), e.g. the token
// issuer. Written once, read at start.
import type pg from 'pg';

export class SettingsStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The stored value, or `initial()` stored and returned when absent (first writer wins). */
  async getOrCreate(key: string, initial: () => string): Promise<string> {
    await this.pool.query('insert into relay_settings (key, value) values ($1, $2) on conflict (key) do nothing', [
      key,
      initial(),
    ]);
    const { rows } = await this.pool.query<{ value: string }>('select value from relay_settings where key = $1', [key]);
    return rows[0]!.value;
  }
}
