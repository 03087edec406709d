// Interop with @libp2p/yamux 8 over TCP on loopback, in both directions: our client with a
// libp2p server, and a libp2p client with our server. Data both ways (beyond the 256 KiB
// initial window, so window updates must flow both ways), FIN, RST and ping: our bytes are
// yamux's bytes.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { isMuxError, Session, type Stream } from '@g2c/mux';
import { afterEach, describe, expect, it } from 'vitest';
import { libp2pMuxer, polyfillPromiseWithResolvers, type YamuxMuxer } from '../bench/mux-peers.js';
import { tcpTransport } from '../mux/transports.js';

polyfillPromiseWithResolvers();

type Libp2pStream = Awaited<ReturnType<YamuxMuxer['createStream']>>;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Two connected sockets on loopback (the mux tests' TCP transport), closed after the test. */
async function tcpPair(): Promise<[Socket, Socket]> {
  const link = await tcpTransport.connect();
  cleanups.push(() => void link.close());
  return [link.a as Socket, link.b as Socket];
}

/** Our session on one socket, a libp2p muxer on the other. `ours` = our yamux role. */
async function setup(ours: 'client' | 'server'): Promise<{ session: Session; peer: YamuxMuxer }> {
  const [a, b] = await tcpPair();
  const session = new Session(a, { client: ours === 'client' });
  session.on('error', () => {});
  const peer = await libp2pMuxer(b, ours === 'client' ? 'inbound' : 'outbound');
  cleanups.push(() => {
    session.destroy();
    peer.abort(new Error('test over'));
  });
  return { session, peer };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readLibp2p(stream: Libp2pStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk.subarray()));
  return Buffer.concat(chunks);
}

async function writeLibp2p(stream: Libp2pStream, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    if (!stream.send(data.subarray(at, at + 64 * 1024))) await stream.onDrain();
  }
}

async function readOurs(stream: Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function writeOurs(stream: Stream, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 64 * 1024) {
    if (!stream.write(data.subarray(at, at + 64 * 1024))) await once(stream, 'drain');
  }
}

function nextLibp2pStream(peer: YamuxMuxer): Promise<Libp2pStream> {
  return new Promise((resolve) => peer.addEventListener('stream', (evt) => resolve(evt.detail), { once: true }));
}

for (const ours of ['client', 'server'] as const) {
  describe(`our ${ours} with a @libp2p/yamux ${ours === 'client' ? 'server' : 'client'}`, () => {
    it('we open: 4 MiB each way with matching sha256, FIN both ways', async () => {
      const { session, peer } = await setup(ours);
      const up = randomBytes(4 * 1024 * 1024);
      const down = randomBytes(4 * 1024 * 1024);
      const theirs = nextLibp2pStream(peer);
      const s = session.open();
      const received = readOurs(s);
      const sent = writeOurs(s, up).then(() => s.end());
      const remote = await theirs;
      const [got] = await Promise.all([readLibp2p(remote), writeLibp2p(remote, down)]);
      await remote.close(); // FIN from libp2p after it saw ours
      await sent;
      expect(sha(got)).toBe(sha(up));
      expect(sha(await received)).toBe(sha(down));
      await new Promise((r) => setTimeout(r, 20));
      expect(session.activeStreams).toBe(0);
    });

    it('they open: 4 MiB each way with matching sha256, FIN both ways', async () => {
      const { session, peer } = await setup(ours);
      const up = randomBytes(4 * 1024 * 1024);
      const down = randomBytes(4 * 1024 * 1024);
      const accepted = once(session, 'stream') as Promise<[Stream]>;
      const remote = await peer.createStream();
      const back = readLibp2p(remote); // ends with our FIN
      const sending = writeLibp2p(remote, up).then(() => remote.close()); // then libp2p's FIN
      const [s] = await accepted;
      expect(s.id % 2).toBe(ours === 'client' ? 0 : 1);
      const [got] = await Promise.all([readOurs(s), writeOurs(s, down)]);
      s.end();
      await sending;
      expect(sha(got)).toBe(sha(up));
      expect(sha(await back)).toBe(sha(down));
      await new Promise((r) => setTimeout(r, 20));
      expect(session.activeStreams).toBe(0);
    });

    it('our RST reaches libp2p as a reset, theirs reaches us as ERR_STREAM_RESET', async () => {
      const { session, peer } = await setup(ours);
      const theirs = nextLibp2pStream(peer);
      const s1 = session.open();
      s1.write('x');
      const r1 = await theirs;
      const closed = once(r1, 'close') as Promise<[Event & { error?: Error; local?: boolean }]>;
      s1.destroy();
      const [event] = await closed;
      expect(event.local).toBe(false);
      expect(event.error?.name).toBe('StreamResetError');

      const accepted = once(session, 'stream') as Promise<[Stream]>;
      const r2 = await peer.createStream();
      r2.send(Buffer.from('y'));
      const [s2] = await accepted;
      const failed = once(s2, 'error');
      r2.abort(new Error('reset by the test'));
      expect(isMuxError((await failed)[0], 'ERR_STREAM_RESET')).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      expect(session.activeStreams).toBe(0);
    });

    it('pings are answered both ways', async () => {
      const { session, peer } = await setup(ours);
      expect(await session.ping()).toBeGreaterThanOrEqual(0);
      expect(await peer.ping()).toBeGreaterThanOrEqual(0);
      expect(await session.ping()).toBeGreaterThanOrEqual(0);
    });

    it('many concurrent streams, opened by both sides at once', async () => {
      const { session, peer } = await setup(ours);
      // libp2p echoes what we open; we echo what libp2p opens
      peer.addEventListener('stream', async (evt) => {
        const stream = evt.detail;
        await writeLibp2p(stream, await readLibp2p(stream));
        await stream.close();
      });
      session.on('stream', (s) => s.pipe(s));
      const base = randomBytes(512 * 1024);
      const ourSide = Array.from({ length: 20 }, async (_, i) => {
        const data = base.subarray(i * 1000, i * 1000 + 300 * 1024);
        const s = session.open();
        const back = readOurs(s);
        await writeOurs(s, data);
        s.end();
        return sha(await back) === sha(data);
      });
      const theirSide = Array.from({ length: 20 }, async (_, i) => {
        const data = base.subarray(i * 2000, i * 2000 + 300 * 1024);
        const r = await peer.createStream();
        const back = readLibp2p(r);
        await writeLibp2p(r, data);
        await r.close();
        return sha(await back) === sha(data);
      });
      expect(await Promise.all([...ourSide, ...theirSide])).toEqual(Array(40).fill(true));
    });
  });
}
