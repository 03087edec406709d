// `npm run bench`: runs every benchmark module in turn; each prints its own table, with
// ratios against its baseline measured in the same run. `npm run bench -- mux` runs one.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const suites = ['mux', 'tunnel', 'engine'];
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));

for (const suite of suites) {
  if (wanted.length && !wanted.includes(suite)) continue;
  const file = fileURLToPath(new URL(`./${suite}.js`, import.meta.url));
  if (!existsSync(file)) {
    console.log(`\n## ${suite}: not built (no ${suite}.ts yet)`);
    continue;
  }
  console.log(`\n## ${suite}`);
  const mod = (await import(file)) as { run: () => Promise<void> };
  await mod.run();
}
