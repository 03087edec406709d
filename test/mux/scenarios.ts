// Session scenarios run over every transport of transports.ts, each twice: streams opened by
// the yamux client (odd ids) and by the yamux server (even ids). The opening side is always
// the dialling end of the link.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { isMuxError, type MuxConfig, Session, type Stream } from '@g2c/mux';
import { afterEach, describe, expect, it } from 'vitest';
import type { Link, Transport } from './transports.js';

export type Role = 'client opens' | 'server opens';
export const ROLES: Role[] = ['client opens', 'server opens'];

export interface Pair {
  opener: Session;
  acceptor: Session;
  link: Link;
}

const open: Pair[] = [];
const errors: Error[] = [];

/** Two sessions over a fresh link; torn down after each test. */
export async function sessions(
  transport: Transport,
  role: Role,
  options: { opener?: Partial<MuxConfig>; acceptor?: Partial<MuxConfig>; gated?: boolean } = {},
): Promise<Pair> {
  const link = await transport.connect({ gated: options.gated });
  const openerIsClient = role === 'client opens';
  const opener = new Session(link.a, { client: openerIsClient, ...options.opener });
  const acceptor = new Session(link.b, { client: !openerIsClient, ...options.acceptor });
  for (const s of [opener, acceptor]) s.on('error', (err) => errors.push(err));
  const pair = { opener, acceptor, link };
  open.push(pair);
  return pair;
}

export function cleanupAfterEach(): void {
  afterEach(async () => {
    for (const { opener, acceptor, link } of open.splice(0)) {
      opener.destroy();
      acceptor.destroy();
      await link.close();
    }
    errors.length = 0;
  });
}

export function sessionErrors(): Error[] {
  return errors;
}

/** Everything a readable delivers until 'end', as one buffer. The stream is not destroyed
 *  afterwards (a plain for-await would destroy the whole Duplex, writable side included). */
export async function readAll(stream: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function sha256Of(stream: Duplex): Promise<{ digest: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { digest: hash.digest('hex'), bytes };
}

export async function writeAll(stream: Duplex, data: Buffer, chunkSize = 64 * 1024): Promise<void> {
  for (let at = 0; at < data.length; at += chunkSize) {
    if (!stream.write(data.subarray(at, at + chunkSize))) await once(stream, 'drain');
  }
}

export function errorOf(stream: Duplex): Promise<Error> {
  return new Promise((resolve) => stream.once('error', resolve));
}

export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const echo = (stream: Stream) => {
  stream.on('error', () => {});
  stream.pipe(stream);
};

/** The behaviour scenarios: small, quick, every one of them for both roles. */
export function behaviourScenarios(transport: Transport): void {
  for (const role of ROLES) {
    describe(`${transport.name}, ${role}`, () => {
      cleanupAfterEach();

      it('echoes data on a stream, ping answers, both maps end empty', async () => {
        const { opener, acceptor } = await sessions(transport, role);
        acceptor.on('stream', echo);
        const s = opener.open();
        expect(s.id % 2).toBe(role === 'client opens' ? 1 : 0);
        s.end('hello mux');
        expect((await readAll(s)).toString()).toBe('hello mux');
        expect(await opener.ping()).toBeGreaterThanOrEqual(0);
        expect(await acceptor.ping()).toBeGreaterThanOrEqual(0);
        await until(() => opener.activeStreams === 0 && acceptor.activeStreams === 0, 'empty maps');
      });

      it('FIN half-closes: the opener ends first and still reads the answer', async () => {
        const { opener, acceptor } = await sessions(transport, role);
        acceptor.on('stream', async (s) => {
          const request = await readAll(s); // 'end' seen: the opener's FIN arrived
          s.end(`got ${request.length} bytes after your FIN`);
        });
        const s = opener.open();
        s.write('abc');
        s.end('def');
        await once(s, 'finish');
        expect((await readAll(s)).toString()).toBe('got 6 bytes after your FIN');
        await until(() => opener.activeStreams === 0 && acceptor.activeStreams === 0, 'empty maps');
      });

      it('FIN half-closes: the acceptor ends first and still reads what follows', async () => {
        const { opener, acceptor } = await sessions(transport, role);
        const received = new Promise<string>((resolve) => {
          acceptor.on('stream', async (s) => {
            s.end('server done');
            resolve((await readAll(s)).toString());
          });
        });
        const s = opener.open();
        s.write('x');
        const answer = await readAll(s); // the acceptor's FIN arrived
        expect(answer.toString()).toBe('server done');
        s.write('still writing after your FIN');
        s.end();
        expect(await received).toBe('xstill writing after your FIN');
        await until(() => opener.activeStreams === 0 && acceptor.activeStreams === 0, 'empty maps');
      });

      it('destroy() sends RST: the peer stream fails with ERR_STREAM_RESET, both directions', async () => {
        const { opener, acceptor } = await sessions(transport, role);
        const accepted: Stream[] = [];
        acceptor.on('stream', (s) => accepted.push(s));
        // opener resets
        const s1 = opener.open();
        s1.write('before reset');
        await until(() => accepted.length === 1, 'the stream to be accepted');
        const reset1 = errorOf(accepted[0]!);
        s1.destroy();
        const err1 = await reset1;
        expect(isMuxError(err1, 'ERR_STREAM_RESET')).toBe(true);
        // acceptor resets
        const s2 = opener.open();
        s2.write('x');
        await until(() => accepted.length === 2, 'the second stream to be accepted');
        const reset2 = errorOf(s2);
        accepted[1]!.destroy();
        expect(((await reset2) as { code?: string }).code).toBe('ERR_STREAM_RESET');
        await until(() => opener.activeStreams === 0 && acceptor.activeStreams === 0, 'empty maps');
        // the session carries on
        acceptor.on('stream', echo);
        const s3 = opener.open();
        s3.end('alive');
        expect((await readAll(s3)).toString()).toBe('alive');
      });

      it('a full accept backlog refuses with RST and the session keeps working', async () => {
        const { opener, acceptor } = await sessions(transport, role, { acceptor: { acceptBacklog: 3 } });
        const streams = Array.from({ length: 5 }, (_, i) => {
          const s = opener.open();
          s.write(`stream ${i}`);
          return s;
        });
        const refused = await Promise.all(streams.slice(3).map(errorOf));
        for (const err of refused) expect(isMuxError(err, 'ERR_STREAM_REFUSED')).toBe(true);
        // the backlog is delivered once somebody listens
        acceptor.on('stream', echo);
        for (const [i, s] of streams.slice(0, 3).entries()) {
          s.end();
          expect((await readAll(s)).toString()).toBe(`stream ${i}`);
        }
        const late = opener.open();
        late.end('later');
        expect((await readAll(late)).toString()).toBe('later');
        await until(() => opener.activeStreams === 0 && acceptor.activeStreams === 0, 'empty maps');
      });

      it('the stream limit refuses with RST on the peer and throws locally; the session lives', async () => {
        const { opener, acceptor } = await sessions(transport, role, { acceptor: { maxStreams: 2 } });
        acceptor.on('stream', echo);
        const held = [opener.open(), opener.open()];
        for (const s of held) s.write('x');
        const extra = opener.open();
        extra.write('y');
        expect(isMuxError(await errorOf(extra), 'ERR_STREAM_REFUSED')).toBe(true);
        held[0]!.end();
        await readAll(held[0]!);
        await until(() => acceptor.activeStreams === 1, 'a free slot');
        const next = opener.open();
        next.end('fits again');
        expect((await readAll(next)).toString()).toBe('fits again');
        held[1]!.end();
        await readAll(held[1]!);

        const { opener: small } = await sessions(transport, role, { opener: { maxStreams: 1 } });
        small.open();
        expect(() => small.open()).toThrow(expect.objectContaining({ code: 'ERR_STREAM_REFUSED' }));
      });

      it('GoAway stops new streams and lets the open ones finish', async () => {
        const { opener, acceptor } = await sessions(transport, role);
        acceptor.on('stream', echo);
        const before = opener.open();
        before.write('first half, ');
        await until(() => acceptor.activeStreams === 1, 'the stream to arrive');
        const goaway = once(opener, 'goaway');
        acceptor.goAway();
        await goaway;
        expect(() => opener.open()).toThrow(expect.objectContaining({ code: 'ERR_REMOTE_GOAWAY' }));
        before.end('second half');
        expect((await readAll(before)).toString()).toBe('first half, second half');
        // the acceptor may still open streams towards the opener
        opener.on('stream', echo);
        const reverse = acceptor.open();
        reverse.end('reverse');
        expect((await readAll(reverse)).toString()).toBe('reverse');
      });

      it('close() waits for open streams, then both sessions close', async () => {
        const { opener, acceptor } = await sessions(transport, role);
        acceptor.on('stream', echo);
        const s = opener.open();
        s.write('pending ');
        const closed = opener.close();
        const acceptorClosed = once(acceptor, 'close');
        expect(() => opener.open()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED' }));
        await new Promise((r) => setTimeout(r, 50));
        expect(opener.destroyed).toBe(false);
        s.end('data');
        expect((await readAll(s)).toString()).toBe('pending data');
        await closed;
        await acceptorClosed;
        expect(opener.destroyed && acceptor.destroyed).toBe(true);
        expect(sessionErrors()).toEqual([]);
      });

      it('a black-holed transport ends both sessions with ERR_KEEPALIVE_TIMEOUT within the bound', async () => {
        const keepalive = { keepaliveIntervalMs: 200, keepaliveTimeoutMs: 600 };
        const { opener, acceptor, link } = await sessions(transport, role, {
          opener: keepalive,
          acceptor: keepalive,
          gated: true,
        });
        acceptor.on('stream', echo);
        const s = opener.open();
        s.on('error', () => {});
        s.write('x');
        await until(() => acceptor.activeStreams === 1, 'the stream to arrive');
        const started = Date.now();
        const failures = [opener, acceptor].map(
          (session) =>
            new Promise<{ error: Error; after: number }>((resolve) =>
              session.once('error', (error) => resolve({ error, after: Date.now() - started })),
            ),
        );
        const streamError = errorOf(s);
        link.blackhole();
        for (const { error, after } of await Promise.all(failures)) {
          expect(isMuxError(error, 'ERR_KEEPALIVE_TIMEOUT')).toBe(true);
          expect(error.message).toMatch(/timeout/);
          // interval + timeout, with a margin for a loaded machine
          expect(after).toBeLessThan(200 + 600 + 1_500);
        }
        expect(isMuxError(await streamError, 'ERR_SESSION_CLOSED')).toBe(true);
        expect(opener.destroyed && acceptor.destroyed).toBe(true);
      });

      it('a reader that never reads holds the writer to window + high-water mark; then all arrives', async () => {
        const hwm = 64 * 1024;
        const { opener, acceptor } = await sessions(transport, role, {
          opener: { streamHighWaterMark: hwm },
          acceptor: { streamHighWaterMark: hwm },
        });
        let accepted: Stream | undefined;
        acceptor.on('stream', (s) => {
          accepted = s;
          s.pause();
        });
        const s = opener.open();
        const chunk = randomBytes(16 * 1024);
        const hash = createHash('sha256');
        let written = 0;
        // write until the stream pushes back and stays blocked for a while
        for (let i = 0; i < 10_000; i++) {
          hash.update(chunk);
          written += chunk.length;
          if (s.write(chunk)) continue;
          const drained = await Promise.race([
            once(s, 'drain').then(() => true),
            new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
          ]);
          if (!drained) break;
        }
        // window (256 KiB) + the writer's buffer + the reader's buffer, nothing more
        expect(written).toBeLessThanOrEqual(256 * 1024 + 2 * hwm + chunk.length);
        expect(written).toBeGreaterThanOrEqual(256 * 1024);
        expect(accepted!.currentReceiveWindow).toBe(256 * 1024);
        expect(accepted!.receiveQueued).toBeLessThanOrEqual(256 * 1024);
        // resume: every byte arrives, then more flows freely
        const result = sha256Of(accepted!);
        accepted!.resume();
        const more = randomBytes(1024 * 1024);
        hash.update(more);
        await writeAll(s, more);
        s.end();
        const { digest, bytes } = await result;
        expect(bytes).toBe(written + more.length);
        expect(digest).toBe(hash.digest('hex'));
      });
    });
  }
}

/** Distinct data per stream without allocating each: views of one random buffer. */
export function streamData(base: Buffer, index: number, size: number): Buffer {
  const offset = (index * 7919) % (base.length - size);
  return base.subarray(offset, offset + size);
}

/** The bulk scenarios of issue 2: 500 concurrent 1 MiB echoes, one 200 MiB stream. */
export function bulkScenarios(transport: Transport, role: Role): void {
  describe(`${transport.name}, ${role}, bulk`, () => {
    cleanupAfterEach();

    it('500 concurrent streams each echo 1 MiB with matching sha256', async () => {
      const { opener, acceptor } = await sessions(transport, role);
      acceptor.on('stream', echo);
      const size = 1024 * 1024;
      const base = randomBytes(2 * size);
      const results = await Promise.all(
        Array.from({ length: 500 }, async (_, i) => {
          const data = streamData(base, i, size);
          const s = opener.open();
          const received = sha256Of(s);
          await writeAll(s, data, 32 * 1024);
          s.end();
          const { digest, bytes } = await received;
          return bytes === size && digest === createHash('sha256').update(data).digest('hex');
        }),
      );
      expect(results.filter((ok) => !ok)).toEqual([]);
      await until(() => opener.activeStreams === 0 && acceptor.activeStreams === 0, 'empty maps');
      expect(sessionErrors()).toEqual([]);
    });

    it('one stream carries 200 MiB intact', async () => {
      const { opener, acceptor } = await sessions(transport, role);
      acceptor.on('stream', async (s) => {
        const { digest, bytes } = await sha256Of(s);
        s.end(JSON.stringify({ digest, bytes }));
      });
      const total = 200 * 1024 * 1024;
      const block = randomBytes(4 * 1024 * 1024);
      const hash = createHash('sha256');
      const s = opener.open();
      const answer = readAll(s);
      for (let sent = 0, i = 0; sent < total; sent += 1024 * 1024, i++) {
        const piece = streamData(block, i, 1024 * 1024);
        hash.update(piece);
        await writeAll(s, piece);
      }
      s.end();
      expect(JSON.parse((await answer).toString())).toEqual({ digest: hash.digest('hex'), bytes: total });
      expect(sessionErrors()).toEqual([]);
    });
  });
}
