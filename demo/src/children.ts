// The relay and the agent run as child processes, the real bins a user would run. Their JSON
// log lines go to a file under the data directory (the demo's console stays readable); the last
// lines are kept to explain a failure. A child never outlives the demo.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface Child {
  name: string;
  pid: number;
  /** The last lines it printed (stdout and stderr). */
  tail(): string;
  /** Resolves with the exit code or signal once it has exited. */
  exited: Promise<number | string>;
  hasExited(): boolean;
  /** SIGTERM (the bins drain and exit), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function startChild(name: string, script: string, args: string[], logFile: string): Child {
  // The demo decides every setting: G2C_* variables of the caller's shell must not leak in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('G2C_')));
  const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const log = createWriteStream(logFile, { flags: 'a' });
  const lines: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.pipe(log, { end: false });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      lines.push(...chunk.split('\n').filter(Boolean));
      if (lines.length > 30) lines.splice(0, lines.length - 30);
    });
  }
  let code: number | string | undefined;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (c, signal) => {
      live.delete(child);
      code = c ?? signal ?? 'unknown';
      log.end();
      resolve(code);
    });
  });
  return {
    name,
    pid: child.pid ?? -1,
    tail: () => lines.join('\n'),
    exited,
    hasExited: () => code !== undefined,
    stop: async (graceMs = 10_000) => {
      if (code !== undefined) return code;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/**
 * Polls `check` every 100 ms until it returns a value; fails at once if `child` exits, and
 * after `timeoutMs`, quoting the child's last lines.
 */
export async function waitUntil<T>(
  child: Child,
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      throw new Error(`${child.name} exited (${await child.exited}) before ${what}:\n${indent(child.tail())}`);
    }
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const why = last instanceof Error ? ` (last error: ${last.message})` : '';
  throw new Error(
    `${what}: not after ${timeoutMs / 1000} s${why}; ${child.name}'s last lines:\n${indent(child.tail())}`,
  );
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
