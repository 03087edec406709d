// `npm start -- --once` as a newcomer runs it: the built demo, a fresh data directory, the real
// relay and agent bins. It must exit 0 after a tour whose answers are the ones the README
// promises, reuse everything on a second start, and exit 1 naming the step that failed.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const startJs = join(root, 'demo/dist/start.js');

/** Runs the demo to its end (at most `timeoutMs`), returning its exit code and output. */
function runDemo(args: string[], timeoutMs = 90_000): Promise<{ code: number | string; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [startJs, ...args], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? 'unknown', out });
    });
  });
}

/** Command lines of live processes that mention `dir` (the demo's children and their servers). */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(dir) && Number(pid) !== process.pid) found.push(`${pid} ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('npm start', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'g2c-demo-'));
    await chmod(dir, 0o711); // the embedded PostgreSQL runs as `postgres` when we are root
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts everything, runs the tour and exits 0', async () => {
    const { code, out } = await runDemo(['--once', '--data-dir', join(dir, 'data'), '--port', '0']);
    expect(out, out).toContain('seeded now');
    expect(code, out).toBe(0);
    // The tour's key answers.
    expect(out).toMatch(/GET \/ping\n {2}-> 200/);
    expect(out).toContain('ground2cloud');
    expect(out).toMatch(/GET \/contacts\?where=status = 'customer' AND account_id = 8.*\n {2}-> 200/);
    expect(out).toMatch(/elements-next-page-token: \S+/);
    expect(out).toMatch(/POST \/contacts\n.*\n {2}-> 200/);
    expect(out).toMatch(/PATCH \/contacts\/\d+\n.*\n {2}-> 200/);
    expect(out).toMatch(/DELETE \/contacts\/\d+\n {2}-> 200/);
    expect(out).toMatch(/GET \/contacts\/\d+\n {2}-> 404/);
    expect(out).toMatch(/POST \/contacts\n.*\n {2}-> 409/);
    // What to paste.
    expect(out).toMatch(/Authorization {2}User \S+, Organization \S+, Element \S+/);
    expect(out).toMatch(
      /curl -s -H "Authorization: \$G2C_AUTH" 'http:\/\/127\.0\.0\.1:\d+\/elements\/api-v2\/contacts/,
    );
    expect(out).toMatch(/npx g2c-relay forward --relay http:\/\/127\.0\.0\.1:\d+ --tunnel demo --to 127\.0\.0\.1:\d+/);
    expect(out).toContain('done.');
  });

  it('reuses the data directory on a second start', async () => {
    const { code, out } = await runDemo(['--once', '--data-dir', join(dir, 'data'), '--port', '0']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/private database .* reused/);
    expect(out).toMatch(/tunnel "demo" .* reused/);
    expect(out).toMatch(/instance "crm" .* reused/);
  });

  it('without --once, keeps running until Ctrl-C, then stops everything and exits 0', async () => {
    const child = spawn(process.execPath, [startJs, '--data-dir', join(dir, 'data'), '--port', '0'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`never said it was running:\n${out}`)), 60_000);
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          if (out.includes('Press Ctrl-C')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      expect(processesUsing(dir).length).toBeGreaterThan(0); // relay, agent, postgres servers
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(out).toContain('stopped.');
      expect(processesUsing(dir)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('exits 1 naming the step that failed', async () => {
    const broken = join(dir, 'broken');
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'relay'), 'not a directory'); // the relay cannot create its data dir
    const { code, out } = await runDemo(['--once', '--data-dir', broken, '--port', '0']);
    expect(code, out).toBe(1);
    expect(out).toMatch(/npm start failed at step "relay \(embedded store\)"/);
  });
});
