// Window auto-tuning on a long link (40 ms round trip, in memory): a reader that keeps up
// gets its window grown beyond the initial 256 KiB, up to maxWindow and no further; a slow
// reader keeps the initial window, so the memory a stream can pin stays small.
import { createHash, randomBytes } from 'node:crypto';
import { type Duplex, Transform } from 'node:stream';
import { duplexPair, Session, type Stream } from '@g2c/mux';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Of, writeAll } from './scenarios.js';

/** Delays every chunk by `ms`, keeping order (a long-haul link). */
class Delay extends Transform {
  constructor(private readonly ms: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    setTimeout(() => this.push(chunk), this.ms);
    callback();
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function longLink(
  oneWayMs: number,
  maxWindow?: number,
  maxSessionWindowGrowth?: number,
): { sender: Session; receiver: Session } {
  const [a, x] = duplexPair();
  const [y, b] = duplexPair();
  const delays = [new Delay(oneWayMs), new Delay(oneWayMs)];
  x.pipe(delays[0]!).pipe(y);
  y.pipe(delays[1]!).pipe(x);
  const sender = new Session(a, { client: true, maxWindow });
  const receiver = new Session(b, { client: false, maxWindow, maxSessionWindowGrowth });
  cleanups.push(() => {
    sender.destroy();
    receiver.destroy();
    for (const d of [a, b, x, y, ...delays] as Duplex[]) d.destroy();
  });
  return { sender, receiver };
}

async function transfer(sender: Session, receiver: Session, data: Buffer, slowReader: boolean) {
  let accepted: Stream | undefined;
  const result = new Promise<{ digest: string; bytes: number }>((resolve) => {
    receiver.once('stream', async (s) => {
      accepted = s;
      if (!slowReader) {
        resolve(await sha256Of(s));
        return;
      }
      // 16 KiB every 50 ms: far slower than the link.
      const hash = createHash('sha256');
      let bytes = 0;
      const timer = setInterval(() => {
        for (let chunk = s.read(16 * 1024); chunk !== null; chunk = null) {
          hash.update(chunk);
          bytes += chunk.length;
        }
        if (s.readableEnded || bytes === data.length) {
          clearInterval(timer);
          resolve({ digest: hash.digest('hex'), bytes });
        }
      }, 50);
      cleanups.push(() => clearInterval(timer));
    });
  });
  const s = sender.open();
  await writeAll(s, data);
  s.end();
  return { result: await result, stream: () => accepted! };
}

describe('window auto-tuning', () => {
  it('grows the window of a stream whose reader keeps up, up to maxWindow', async () => {
    const { sender, receiver } = longLink(20, 4 * 1024 * 1024);
    await sender.ping();
    const data = randomBytes(24 * 1024 * 1024);
    const { result, stream } = await transfer(sender, receiver, data, false);
    expect(result).toEqual({ digest: createHash('sha256').update(data).digest('hex'), bytes: data.length });
    expect(stream().currentReceiveWindow).toBe(4 * 1024 * 1024);
  });

  it('grows no stream beyond the session-wide growth budget, and returns it when the stream closes', async () => {
    const { sender, receiver } = longLink(20, 4 * 1024 * 1024, 1024 * 1024);
    await sender.ping();
    const data = randomBytes(24 * 1024 * 1024);
    const { result, stream } = await transfer(sender, receiver, data, false);
    expect(result.bytes).toBe(data.length);
    // 256 KiB -> 512 KiB -> 1 MiB uses 768 KiB of the budget; the last 256 KiB make 1.25 MiB
    expect(stream().currentReceiveWindow).toBe(1280 * 1024);
    stream().destroy();
    expect((receiver as unknown as { windowGrowth: number }).windowGrowth).toBe(0);
  });

  it('keeps the initial window for a reader slower than the link', async () => {
    const { sender, receiver } = longLink(5);
    const data = randomBytes(768 * 1024);
    const { result, stream } = await transfer(sender, receiver, data, true);
    expect(result.bytes).toBe(data.length);
    expect(stream().currentReceiveWindow).toBe(256 * 1024);
  });
});
