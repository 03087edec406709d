// 100,000 streams opened and closed one after another leave nothing behind: the session's
// maps are empty and its memory does not grow with the number of streams it has carried.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Session, type Stream } from '@g2c/mux';
import { describe, expect, it } from 'vitest';
import { memoryTransport } from './transports.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function internals(session: Session) {
  const s = session as unknown as { streams: Map<number, unknown>; backlog: unknown[]; pings: Map<number, unknown> };
  return { streams: s.streams.size, backlog: s.backlog.length, pings: s.pings.size };
}

async function oneStream(opener: Session): Promise<void> {
  const s = opener.open();
  const done = new Promise<void>((resolve, reject) => {
    s.once('close', resolve);
    s.once('error', reject);
  });
  s.end('x');
  s.resume();
  await done;
}

describe('stream churn', () => {
  it('100,000 streams opened and closed one after another: maps empty, memory flat', async () => {
    const link = await memoryTransport.connect();
    const opener = new Session(link.a, { client: true });
    const acceptor = new Session(link.b, { client: false });
    acceptor.on('stream', (s: Stream) => s.pipe(s));
    try {
      const total = 100_000;
      const warmup = 10_000;
      let baseline = 0;
      for (let i = 0; i < total; i++) {
        await oneStream(opener);
        if (i + 1 === warmup) baseline = heapAfterGc();
      }
      await new Promise((r) => setImmediate(r));
      const grown = heapAfterGc() - baseline;
      expect(opener.activeStreams).toBe(0);
      expect(acceptor.activeStreams).toBe(0);
      expect(internals(opener)).toEqual({ streams: 0, backlog: 0, pings: 0 });
      expect(internals(acceptor)).toEqual({ streams: 0, backlog: 0, pings: 0 });
      // 90,000 streams after the baseline: even 100 bytes kept per stream would show as 9 MB.
      expect(grown).toBeLessThan(4 * 1024 * 1024);
      // the session still works
      await oneStream(opener);
    } finally {
      opener.destroy();
      acceptor.destroy();
      await link.close();
    }
  });
});
