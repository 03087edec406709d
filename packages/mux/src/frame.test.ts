import { describe, expect, it } from 'vitest';
import { MuxError } from './errors.js';
import {
  encodeFrame,
  encodeHeader,
  Flag,
  type Frame,
  FrameDecoder,
  FrameType,
  GoAwayCode,
  HEADER_SIZE,
  INITIAL_WINDOW,
  PROTOCOL_VERSION,
} from './frame.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('wire constants (HashiCorp yamux spec, version 0)', () => {
  it('pins every value', () => {
    expect(PROTOCOL_VERSION).toBe(0);
    expect(HEADER_SIZE).toBe(12);
    expect(FrameType).toEqual({ Data: 0, WindowUpdate: 1, Ping: 2, GoAway: 3 });
    expect(Flag).toEqual({ SYN: 1, ACK: 2, FIN: 4, RST: 8 });
    expect(GoAwayCode).toEqual({ Normal: 0, ProtocolError: 1, InternalError: 2 });
    expect(INITIAL_WINDOW).toBe(262_144);
  });
});

// Byte vectors written out by hand from the spec: version, type, flags(2), stream id(4), length(4).
const vectors: { name: string; bytes: Buffer; frame: Frame }[] = [
  {
    name: 'data with SYN carrying "hi"',
    bytes: hex('00 00 0001 00000001 00000002 6869'),
    frame: { type: FrameType.Data, flags: Flag.SYN, streamId: 1, length: 2, data: Buffer.from('hi') },
  },
  {
    name: 'empty data with FIN',
    bytes: hex('00 00 0004 00000003 00000000'),
    frame: { type: FrameType.Data, flags: Flag.FIN, streamId: 3, length: 0, data: Buffer.alloc(0) },
  },
  {
    name: 'window update with ACK, delta 16 MiB - 256 KiB',
    bytes: hex('00 01 0002 00000002 00fc0000'),
    frame: { type: FrameType.WindowUpdate, flags: Flag.ACK, streamId: 2, length: 16 * 1024 * 1024 - 256 * 1024 },
  },
  {
    name: 'window update with RST',
    bytes: hex('00 01 0008 fffffffe 00000000'),
    frame: { type: FrameType.WindowUpdate, flags: Flag.RST, streamId: 0xfffffffe, length: 0 },
  },
  {
    name: 'window update with SYN|FIN',
    bytes: hex('00 01 0005 00000007 00000000'),
    frame: { type: FrameType.WindowUpdate, flags: Flag.SYN | Flag.FIN, streamId: 7, length: 0 },
  },
  {
    name: 'ping request',
    bytes: hex('00 02 0001 00000000 deadbeef'),
    frame: { type: FrameType.Ping, flags: Flag.SYN, streamId: 0, length: 0xdeadbeef },
  },
  {
    name: 'ping answer',
    bytes: hex('00 02 0002 00000000 00000007'),
    frame: { type: FrameType.Ping, flags: Flag.ACK, streamId: 0, length: 7 },
  },
  {
    name: 'go away, protocol error',
    bytes: hex('00 03 0000 00000000 00000001'),
    frame: { type: FrameType.GoAway, flags: 0, streamId: 0, length: GoAwayCode.ProtocolError },
  },
];

function decodeAll(chunks: Buffer[], maxDataLength = 1 << 20): Frame[] {
  const decoder = new FrameDecoder({ maxDataLength });
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
      frames.push({ ...f, data: f.data ? Buffer.from(f.data) : undefined });
    }
  }
  expect(decoder.buffered).toBe(0);
  return frames.map((f) => (f.data === undefined ? { ...f, data: undefined } : f));
}

const normalise = (f: Frame) => ({ ...f, data: f.data ? f.data.toString('hex') : undefined });

describe('encoding', () => {
  for (const v of vectors) {
    it(`encodes ${v.name}`, () => {
      expect(encodeFrame(v.frame).toString('hex')).toBe(v.bytes.toString('hex'));
      expect(encodeHeader(v.frame.type, v.frame.flags, v.frame.streamId, v.frame.length)).toEqual(
        v.bytes.subarray(0, HEADER_SIZE),
      );
    });
  }
});

describe('incremental decoding', () => {
  const all = Buffer.concat(vectors.map((v) => v.bytes));
  const expected = vectors.map((v) => normalise(v.frame));

  for (const v of vectors) {
    it(`decodes ${v.name}`, () => {
      expect(decodeAll([v.bytes]).map(normalise)).toEqual([normalise(v.frame)]);
    });
  }

  it('decodes the same frames from the stream split at every offset', () => {
    for (let at = 0; at <= all.length; at++) {
      expect(decodeAll([all.subarray(0, at), all.subarray(at)]).map(normalise)).toEqual(expected);
    }
  });

  it('decodes the same frames split at every pair of offsets', () => {
    for (let i = 0; i <= all.length; i += 3) {
      for (let j = i; j <= all.length; j += 5) {
        const chunks = [all.subarray(0, i), all.subarray(i, j), all.subarray(j)];
        expect(decodeAll(chunks).map(normalise)).toEqual(expected);
      }
    }
  });

  it('decodes the same frames fed one byte at a time', () => {
    const bytes = [...all].map((b) => Buffer.from([b]));
    expect(decodeAll(bytes).map(normalise)).toEqual(expected);
  });

  it('returns payloads as views when a frame lies in one chunk', () => {
    const decoder = new FrameDecoder({ maxDataLength: 1024 });
    decoder.push(vectors[0]!.bytes);
    const frame = decoder.next()!;
    expect(frame.data!.buffer).toBe(vectors[0]!.bytes.buffer);
  });

  it('reassembles a large payload spread over many chunks', () => {
    const payload = Buffer.alloc(300_000, 7);
    payload.write('end', payload.length - 3);
    const bytes = encodeFrame({ type: FrameType.Data, flags: 0, streamId: 9, length: payload.length, data: payload });
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 4093) chunks.push(bytes.subarray(i, i + 4093));
    const [frame] = decodeAll(chunks);
    expect(frame!.data!.equals(payload)).toBe(true);
  });
});

describe('malformed input is a protocol error, never a crash', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['unknown version', hex('01 00 0000 00000001 00000000'), /version 1/],
    ['unknown type', hex('00 04 0000 00000001 00000000'), /unknown frame type 4/],
    ['type 255', hex('00 ff 0000 00000000 00000000'), /unknown frame type 255/],
    ['oversize data frame', hex('00 00 0000 00000001 00100001'), /exceeds the limit/],
    ['data on stream 0', hex('00 00 0000 00000000 00000000'), /stream 0/],
    ['window update on stream 0', hex('00 01 0000 00000000 00000000'), /stream 0/],
    ['ping on a stream', hex('00 02 0001 00000005 00000000'), /stream 5/],
    ['go away on a stream', hex('00 03 0000 00000002 00000000'), /stream 2/],
  ];
  for (const [name, bytes, message] of cases) {
    it(`${name}, however it is split`, () => {
      for (let at = 0; at <= bytes.length; at++) {
        const decoder = new FrameDecoder({ maxDataLength: 1 << 20 });
        decoder.push(bytes.subarray(0, at));
        let error: unknown;
        try {
          while (decoder.next() !== undefined);
          decoder.push(bytes.subarray(at));
          while (decoder.next() !== undefined);
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(MuxError);
        expect((error as MuxError).code).toBe('ERR_PROTOCOL');
        expect((error as MuxError).message).toMatch(message);
        // A failed decoder stays failed.
        expect(() => decoder.next()).toThrow(MuxError);
      }
    });
  }

  it('accepts a data frame of exactly the limit', () => {
    const payload = Buffer.alloc(1000, 1);
    const bytes = encodeFrame({ type: FrameType.Data, flags: 0, streamId: 1, length: 1000, data: payload });
    expect(decodeAll([bytes], 1000)[0]!.length).toBe(1000);
  });
});
