// Process entry for the bins: a bad option exits 2 with one line naming it; any other
// start-up failure exits 1 with its message (no stack trace for errors a user can fix).
import { OptionError } from './options.js';

export function runMain(main: (argv: string[]) => Promise<unknown>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      if (typeof code === 'number') process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof OptionError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      const e = err as Error & { code?: string };
      process.stderr.write(`${e?.code ? `${e.code}: ` : ''}${e?.message ?? String(err)}\n`);
      if (process.env.G2C_DEBUG) process.stderr.write(`${e?.stack}\n`);
      process.exit(1);
    },
  );
}
