// First start on an empty store: organization `default` with user `admin`, their secrets
// written to <data-dir>/credentials.json (0600). The log says where, never the secrets.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from './logger.js';
import type { Store } from './store/db.js';

export const DEFAULT_ORG = 'default';

/** Returns the credentials file written, or undefined when the store already had organizations. */
export async function bootstrap(store: Store, dataDir: string, logger: Logger): Promise<string | undefined> {
  if ((await store.orgs.count()) > 0) return undefined;
  let created: Awaited<ReturnType<Store['orgs']['create']>>;
  try {
    created = await store.orgs.create(DEFAULT_ORG);
  } catch (err) {
    // Another relay sharing the store bootstrapped at the same moment.
    if ((err as { code?: string }).code === '23505') return undefined;
    throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const file = join(dataDir, 'credentials.json');
  const body = { organizationSecret: created.organizationSecret, userSecret: created.userSecret };
  // A file left from an earlier store (or a symlink) is replaced, never written through: the
  // secrets go into a new file that is 0600 from its first byte.
  await rm(file, { force: true });
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  logger.info(
    { file, organization: DEFAULT_ORG, user: 'admin' },
    `first start: organization "${DEFAULT_ORG}" and user "admin" created; their secrets are in ${file} (mode 0600)`,
  );
  return file;
}
