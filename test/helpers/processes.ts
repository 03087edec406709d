// Starts the real binaries (g2c-relay, g2c-agent, or any command) for end-to-end tests,
// waits until they say they are ready, and makes sure none outlives the test file.
//
//   const relay = await startProcess('relay', relayBin, ['serve', ...], { ready: /listening/ });
//   ...
//   await relay.stop();            // SIGTERM, then SIGKILL after a grace period
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// test/helpers/x.ts runs from source (vitest) or as test/dist/helpers/x.js (benchmarks).
const root = fileURLToPath(new URL(import.meta.url.includes('/test/dist/') ? '../../../' : '../../', import.meta.url));
/** Absolute paths of the built bins (`npm test` builds before running vitest). */
export const relayBin = `${root}relay/bin/g2c-relay.js`;
export const agentBin = `${root}agent/bin/g2c-agent.js`;

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolve once a line of stdout or stderr matches; default: as soon as it is spawned. */
  ready?: RegExp;
  /** How long to wait for `ready` (default 20 s). */
  timeoutMs?: number;
}

export interface RunningProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Every line printed so far (stdout and stderr interleaved). */
  lines: string[];
  /** Resolves with the first line matching `pattern` (including lines already printed). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); resolves when it is gone. */
  stop(graceMs?: number): Promise<number | string>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startProcess(
  name: string,
  command: string,
  args: string[],
  options: StartOptions = {},
): Promise<RunningProcess> {
  const isScript = command.endsWith('.js');
  const child = spawn(isScript ? process.execPath : command, isScript ? [command, ...args] : args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const onData = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (process.env.G2C_TEST_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
        for (const w of waiters) {
          if (w.pattern.test(line)) {
            waiters.delete(w);
            w.resolve(line);
          }
        }
      }
    });
  };
  onData(child.stdout!);
  onData(child.stderr!);
  const exited = new Promise<number | string>((resolve) => {
    // 'close', not 'exit': every line the process printed has been read by then.
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  let exitedWith: number | string | undefined;
  void exited.then((c) => {
    exitedWith = c;
  });

  const waitForLine = (pattern: RegExp, timeoutMs = 20_000) => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const waiter = {
        pattern,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const fail = (why: string) => {
        clearTimeout(timer);
        waiters.delete(waiter);
        reject(new Error(`${name}: ${why} while waiting for ${pattern}; output:\n${lines.slice(-40).join('\n')}`));
      };
      const timer = setTimeout(() => fail(`no match after ${timeoutMs} ms`), timeoutMs);
      waiters.add(waiter);
      // A process that exits first fails the wait at once, with its last lines.
      void exited.then((code) => {
        if (waiters.has(waiter)) fail(`exited (${code})`);
      });
    });
  };

  const handle: RunningProcess = {
    name,
    child,
    pid: child.pid!,
    lines,
    waitForLine,
    exited,
    signal: (signal) => {
      if (exitedWith === undefined) child.kill(signal);
    },
    stop: async (graceMs = 5000) => {
      if (exitedWith !== undefined) return exitedWith;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  if (options.ready) {
    try {
      await waitForLine(options.ready, options.timeoutMs);
    } catch (err) {
      await handle.stop(1000);
      throw err;
    }
  }
  return handle;
}
