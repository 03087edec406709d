// Session behaviour at the byte level: a session on one end of an in-memory pair, and the
// test speaking raw yamux frames on the other end.
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { MuxConfig } from './config.js';
import { duplexPair } from './duplex-pair.js';
import { isMuxError, MuxError } from './errors.js';
import { encodeFrame, Flag, type Frame, FrameDecoder, FrameType, GoAwayCode, INITIAL_WINDOW } from './frame.js';
import { Session } from './session.js';
import type { Stream } from './stream.js';

const KiB = 1024;

interface RawPeer {
  session: Session;
  wire: Duplex;
  frames: Frame[];
  /** Transport writes the session made (each one WebSocket message / syscall). */
  writes: number;
  send(frame: Omit<Frame, 'length'> & { length?: number }): void;
  sendBytes(bytes: Buffer): void;
  waitFor(predicate: (f: Frame) => boolean, what: string): Promise<Frame>;
  errors: Error[];
}

const peers: RawPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) {
    p.session.destroy();
    p.wire.destroy();
  }
});

function rawPeer(options: Partial<MuxConfig> & { client?: boolean } = {}): RawPeer {
  const [sessionSide, wire] = duplexPair();
  const decoder = new FrameDecoder({ maxDataLength: 1 << 30 });
  const frames: Frame[] = [];
  const waiters: (() => void)[] = [];
  const errors: Error[] = [];
  const peer: RawPeer = {
    session: new Session(sessionSide, { client: true, keepaliveIntervalMs: 0, ...options }),
    wire,
    frames,
    writes: 0,
    errors,
    send: (f) => wire.write(encodeFrame({ ...f, length: f.length ?? f.data?.length ?? 0 } as Frame)),
    sendBytes: (bytes) => wire.write(bytes),
    waitFor: async (predicate, what) => {
      const deadline = Date.now() + 3_000;
      for (;;) {
        const found = frames.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no frame: ${what}; got ${JSON.stringify(frames.map(headerOf))}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 20);
        });
      }
    },
  };
  peer.session.on('error', (err) => errors.push(err));
  const origWrite = sessionSide.write.bind(sessionSide);
  // Count transport writes the way a WebSocket would see them: corked writes are one.
  let corked = 0;
  const origCork = sessionSide.cork.bind(sessionSide);
  const origUncork = sessionSide.uncork.bind(sessionSide);
  sessionSide.cork = () => {
    if (corked++ === 0) peer.writes++;
    origCork();
  };
  sessionSide.uncork = () => {
    corked--;
    origUncork();
  };
  sessionSide.write = ((chunk: Buffer, ...rest: never[]) => {
    if (corked === 0) peer.writes++;
    return origWrite(chunk, ...rest);
  }) as typeof sessionSide.write;
  wire.on('data', (chunk: Buffer) => {
    decoder.push(chunk);
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(f);
    for (const w of waiters.splice(0)) w();
  });
  peers.push(peer);
  return peer;
}

function headerOf(f: Frame) {
  return { type: f.type, flags: f.flags, streamId: f.streamId, length: f.length };
}

/** 'close', which comes after 'error' (events.once would reject on the 'error'). */
const closeOf = (session: Session) => new Promise<void>((resolve) => session.once('close', resolve));
const tick = () => new Promise((r) => setImmediate(r));
const dataBytes = (frames: Frame[], id: number) =>
  frames.filter((f) => f.type === FrameType.Data && f.streamId === id).reduce((n, f) => n + f.length, 0);

describe('opening, accepting, FIN and RST on the wire', () => {
  it('open() sends SYN announcing the extra initial window, then data, FIN on end()', async () => {
    const peer = rawPeer({ initialWindow: 1024 * KiB });
    const s = peer.session.open();
    expect(s.id).toBe(1);
    expect(peer.session.open().id).toBe(3);
    s.end('hello');
    await peer.waitFor((f) => f.streamId === 1 && (f.flags & Flag.FIN) !== 0, 'FIN');
    const own = peer.frames.filter((f) => f.streamId === 1).map(headerOf);
    expect(own).toEqual([
      { type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 1, length: 1024 * KiB - INITIAL_WINDOW },
      { type: FrameType.Data, flags: 0, streamId: 1, length: 5 },
      { type: FrameType.WindowUpdate, flags: Flag.FIN, streamId: 1, length: 0 },
    ]);
  });

  it('the server side uses even ids; a peer stream is ACKed when it is delivered', async () => {
    const peer = rawPeer({ client: false });
    expect(peer.session.open().id).toBe(2);
    const delivered = once(peer.session, 'stream') as Promise<[Stream]>;
    peer.send({ type: FrameType.Data, flags: Flag.SYN, streamId: 1, data: Buffer.from('hi') });
    const [s] = await delivered;
    expect(s.id).toBe(1);
    expect((await once(s, 'data'))[0].toString()).toBe('hi');
    await peer.waitFor((f) => f.streamId === 1 && f.flags === Flag.ACK, 'ACK');
  });

  it('destroy() sends RST; a received RST fails the stream with ERR_STREAM_RESET and empties the map', async () => {
    const peer = rawPeer();
    const a = peer.session.open();
    a.destroy();
    await peer.waitFor((f) => f.streamId === 1 && f.flags === Flag.RST, 'RST');
    const b = peer.session.open();
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.ACK, streamId: 3 });
    await tick();
    const failed = once(b, 'error');
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId: 3 });
    const [err] = await failed;
    expect(isMuxError(err, 'ERR_STREAM_RESET')).toBe(true);
    expect(peer.session.activeStreams).toBe(0);
    // a reset stream does not answer with its own RST
    await tick();
    expect(peer.frames.filter((f) => f.streamId === 3 && f.flags & Flag.RST)).toEqual([]);
  });

  it('RST before any ACK is a refusal: ERR_STREAM_REFUSED', async () => {
    const peer = rawPeer();
    const s = peer.session.open();
    const failed = once(s, 'error');
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.RST, streamId: 1 });
    expect(isMuxError((await failed)[0], 'ERR_STREAM_REFUSED')).toBe(true);
  });

  it('frames for closed or unknown streams are dropped', async () => {
    const peer = rawPeer();
    peer.send({ type: FrameType.Data, flags: 0, streamId: 41, data: Buffer.from('late') });
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.FIN, streamId: 43, length: 10 });
    peer.send({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 77 });
    await peer.waitFor((f) => f.type === FrameType.Ping && f.length === 77, 'pong after the dropped frames');
    expect(peer.errors).toEqual([]);
    expect(peer.session.destroyed).toBe(false);
  });
});

describe('flow control', () => {
  it('a sender stops at the 256 KiB window and sends exactly what each WindowUpdate allows', async () => {
    const peer = rawPeer();
    const s = peer.session.open();
    const total = 1024 * KiB;
    let called = false;
    s.write(Buffer.alloc(total, 1), () => {
      called = true;
    });
    await peer.waitFor(() => dataBytes(peer.frames, 1) === INITIAL_WINDOW, 'a full window');
    await new Promise((r) => setTimeout(r, 50));
    expect(dataBytes(peer.frames, 1)).toBe(INITIAL_WINDOW);
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.ACK, streamId: 1, length: 100_000 });
    await peer.waitFor(() => dataBytes(peer.frames, 1) === INITIAL_WINDOW + 100_000, 'the granted bytes');
    await new Promise((r) => setTimeout(r, 50));
    expect(dataBytes(peer.frames, 1)).toBe(INITIAL_WINDOW + 100_000);
    expect(called).toBe(false);
    peer.send({ type: FrameType.WindowUpdate, flags: 0, streamId: 1, length: total });
    await peer.waitFor(() => dataBytes(peer.frames, 1) === total, 'the rest');
    await tick();
    expect(called).toBe(true);
  });

  it('data frames never exceed maxFrameSize', async () => {
    const peer = rawPeer({ maxFrameSize: 4096 });
    const s = peer.session.open();
    s.write(Buffer.alloc(100_000));
    await peer.waitFor(() => dataBytes(peer.frames, 1) === 100_000, 'all data');
    const sizes = peer.frames.filter((f) => f.type === FrameType.Data).map((f) => f.length);
    expect(Math.max(...sizes)).toBe(4096);
  });

  it('window is granted only for consumed bytes, once half of it was read', async () => {
    const peer = rawPeer({ client: false });
    const delivered = once(peer.session, 'stream') as Promise<[Stream]>;
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 1 });
    const [s] = await delivered;
    for (let i = 0; i < 16; i++) {
      peer.send({ type: FrameType.Data, flags: 0, streamId: 1, data: Buffer.alloc(16 * KiB, i) });
    }
    await new Promise((r) => setTimeout(r, 50));
    const grants = () =>
      peer.frames.filter((f) => f.type === FrameType.WindowUpdate && f.streamId === 1 && f.length > 0);
    expect(grants()).toEqual([]);
    expect(s.receiveQueued).toBe(INITIAL_WINDOW);
    // the window is full: one more byte is a protocol error (tested below); reading frees it
    let read = 0;
    while (read < INITIAL_WINDOW / 2) read += (s.read(16 * KiB) as Buffer).length;
    await peer.waitFor(() => grants().length > 0, 'a window update');
    expect(grants().reduce((n, f) => n + f.length, 0)).toBeGreaterThanOrEqual(INITIAL_WINDOW / 2);
  });

  it('many small writes on many streams in one tick leave as one transport write', async () => {
    const peer = rawPeer();
    const streams = Array.from({ length: 50 }, () => peer.session.open());
    await tick();
    const before = peer.writes;
    for (const s of streams) for (let i = 0; i < 4; i++) s.write(`small write ${i} `);
    await tick();
    expect(peer.writes - before).toBe(1);
    for (const s of streams) expect(dataBytes(peer.frames, s.id)).toBe('small write 0 '.length * 4);
  });
});

describe('session frames', () => {
  it('answers a ping with the same opaque value', async () => {
    const peer = rawPeer();
    peer.send({ type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 0xcafe });
    await peer.waitFor((f) => f.type === FrameType.Ping && f.flags === Flag.ACK && f.length === 0xcafe, 'pong');
  });

  it('ping() resolves with the round trip when the peer answers', async () => {
    const peer = rawPeer();
    const rtt = peer.session.ping();
    const request = await peer.waitFor(
      (f) => f.type === FrameType.Ping && f.flags === Flag.SYN && f.length !== 0,
      'ping',
    );
    peer.send({ type: FrameType.Ping, flags: Flag.ACK, streamId: 0, length: request.length });
    expect(await rtt).toBeGreaterThanOrEqual(0);
  });

  it('goAway() sends GoAway(normal) and refuses new peer streams with RST', async () => {
    const peer = rawPeer({ client: false });
    peer.session.on('stream', () => {});
    peer.session.goAway();
    await peer.waitFor((f) => f.type === FrameType.GoAway && f.length === GoAwayCode.Normal, 'GoAway');
    peer.send({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 1 });
    await peer.waitFor((f) => f.streamId === 1 && f.flags === Flag.RST, 'RST');
    expect(peer.session.activeStreams).toBe(0);
  });

  it('a GoAway with an error code ends the session with ERR_REMOTE_GOAWAY', async () => {
    const peer = rawPeer();
    const closed = closeOf(peer.session);
    peer.send({ type: FrameType.GoAway, flags: 0, streamId: 0, length: GoAwayCode.InternalError });
    await closed;
    expect(peer.errors.map((e) => (e as MuxError).code)).toEqual(['ERR_REMOTE_GOAWAY']);
  });
});

describe('protocol errors: GoAway(protocol error), then close; nothing thrown', () => {
  const cases: [string, (peer: RawPeer) => void][] = [
    ['unknown version', (p) => p.sendBytes(Buffer.from('010000000000000100000000', 'hex'))],
    ['unknown type', (p) => p.sendBytes(Buffer.from('000700000000000100000000', 'hex'))],
    ['oversize data frame', (p) => p.sendBytes(Buffer.from('000000000000000201000001', 'hex'))],
    [
      'data beyond the window',
      (p) => {
        p.send({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 2 });
        p.send({ type: FrameType.Data, flags: 0, streamId: 2, data: Buffer.alloc(INITIAL_WINDOW + 1) });
      },
    ],
    [
      'a second SYN for an open stream',
      (p) => {
        p.send({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 2 });
        p.send({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 2 });
      },
    ],
    ['a stream id of our own parity', (p) => p.send({ type: FrameType.WindowUpdate, flags: Flag.SYN, streamId: 5 })],
  ];
  for (const [name, act] of cases) {
    it(name, async () => {
      const peer = rawPeer({ maxWindow: 16 * 1024 * KiB });
      peer.session.on('stream', (s) => s.on('error', () => {}));
      const open = peer.session.open();
      const streamError = once(open, 'error');
      const closed = closeOf(peer.session);
      act(peer);
      await closed;
      expect(peer.errors.map((e) => (e as MuxError).code)).toEqual(['ERR_PROTOCOL']);
      expect(isMuxError((await streamError)[0], 'ERR_SESSION_CLOSED')).toBe(true);
      await peer.waitFor((f) => f.type === FrameType.GoAway && f.length === GoAwayCode.ProtocolError, 'GoAway');
      expect(peer.session.activeStreams).toBe(0);
      expect(() => peer.session.open()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_CLOSED' }));
    });
  }
});

describe('lifecycle', () => {
  it('keeps no referenced timer: a session never holds the process open', () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const peer = rawPeer({ keepaliveIntervalMs: 1000, keepaliveTimeoutMs: 5000 });
    peer.session.ping().catch(() => {});
    expect(timers()).toBe(before);
  });

  it('the transport closing fails open streams with ERR_SESSION_CLOSED, without a session error', async () => {
    const peer = rawPeer();
    const s = peer.session.open();
    const failed = once(s, 'error');
    const closed = closeOf(peer.session);
    peer.wire.destroy();
    await closed;
    expect(isMuxError((await failed)[0], 'ERR_SESSION_CLOSED')).toBe(true);
    expect(peer.errors).toEqual([]);
    await expect(peer.session.ping()).rejects.toMatchObject({ code: 'ERR_SESSION_CLOSED' });
  });

  it('rejects a bad configuration when the session is created', () => {
    const [a] = duplexPair();
    expect(() => new Session(a, { client: true, maxWindow: 1 })).toThrow(MuxError);
    expect(() => new Session(a, {} as never)).toThrow(/client/);
  });
});
