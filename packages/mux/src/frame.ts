// The yamux wire format (HashiCorp spec, version 0): every constant, the 12-byte header
// encoder and a pure incremental decoder. No sockets, no timers: bytes in, frames out.
//
//   0        1        2        4              8              12
//   +--------+--------+--------+--------------+--------------+------------------
//   |version |  type  | flags  |  stream id   |    length    | payload (Data only)
//   +--------+--------+--------+--------------+--------------+------------------
//   all integers big-endian. length is the payload size for Data, the window delta for
//   WindowUpdate, an opaque value for Ping and the error code for GoAway.
import { MuxError } from './errors.js';

export const PROTOCOL_VERSION = 0;
export const HEADER_SIZE = 12;

export const FrameType = {
  Data: 0,
  WindowUpdate: 1,
  Ping: 2,
  GoAway: 3,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Flag bits; Data and WindowUpdate frames may carry any of them, Ping only SYN or ACK. */
export const Flag = {
  SYN: 0x1,
  ACK: 0x2,
  FIN: 0x4,
  RST: 0x8,
} as const;

export const GoAwayCode = {
  Normal: 0,
  ProtocolError: 1,
  InternalError: 2,
} as const;
export type GoAwayCode = (typeof GoAwayCode)[keyof typeof GoAwayCode];

/** Window every stream starts with on both sides, by the spec. */
export const INITIAL_WINDOW = 256 * 1024;
/** The length field is 32 bits. */
export const MAX_WINDOW_FIELD = 0xffff_ffff;

export interface Frame {
  type: FrameType;
  flags: number;
  streamId: number;
  /** Payload size (Data), window delta (WindowUpdate), opaque value (Ping), code (GoAway). */
  length: number;
  /** Data frames only: exactly `length` bytes. */
  data?: Buffer;
}

export function writeHeader(
  target: Buffer,
  offset: number,
  type: FrameType,
  flags: number,
  streamId: number,
  length: number,
): void {
  target[offset] = PROTOCOL_VERSION;
  target[offset + 1] = type;
  target.writeUInt16BE(flags, offset + 2);
  target.writeUInt32BE(streamId, offset + 4);
  target.writeUInt32BE(length, offset + 8);
}

export function encodeHeader(type: FrameType, flags: number, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(header, 0, type, flags, streamId, length);
  return header;
}

/** A whole frame as bytes (header, then the payload of a Data frame). */
export function encodeFrame(frame: Frame): Buffer {
  const header = encodeHeader(frame.type, frame.flags, frame.streamId, frame.length);
  return frame.data ? Buffer.concat([header, frame.data]) : header;
}

export interface DecoderOptions {
  /** Largest Data payload accepted; a larger length field is a protocol error. */
  maxDataLength: number;
}

/**
 * Incremental frame decoder. `push()` any chunking of the byte stream (one byte at a time
 * too); `next()` returns the next complete frame or `undefined` until more bytes arrive.
 * A malformed header throws `MuxError('ERR_PROTOCOL')` and the decoder stays failed.
 *
 * Payloads are zero-copy views of the pushed chunks when a frame lies within one chunk,
 * and one concatenated buffer when it spans several.
 */
export class FrameDecoder {
  private readonly maxDataLength: number;
  private chunks: Buffer[] = [];
  /** Index of the first unread chunk (a queue without O(n) shifts). */
  private head = 0;
  /** Read position in chunks[head]. */
  private offset = 0;
  /** Unread bytes over all chunks. */
  private available = 0;
  private header: Frame | undefined;
  private failed: MuxError | undefined;
  private readonly scratch = Buffer.allocUnsafe(HEADER_SIZE);

  constructor(options: DecoderOptions) {
    this.maxDataLength = options.maxDataLength;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.available;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  next(): Frame | undefined {
    if (this.failed) throw this.failed;
    let frame = this.header;
    if (frame === undefined) {
      if (this.available < HEADER_SIZE) return undefined;
      frame = this.readHeader();
      if (frame.type !== FrameType.Data) return frame;
      this.header = frame;
    }
    if (this.available < frame.length) return undefined;
    this.header = undefined;
    frame.data = this.take(frame.length);
    return frame;
  }

  private readHeader(): Frame {
    let bytes = this.chunks[this.head]!;
    let at = this.offset;
    if (bytes.length - at >= HEADER_SIZE) {
      this.consume(HEADER_SIZE);
    } else {
      bytes = this.copyOut(this.scratch, HEADER_SIZE);
      at = 0;
    }
    const version = bytes[at]!;
    const type = bytes[at + 1]!;
    const flags = bytes.readUInt16BE(at + 2);
    const streamId = bytes.readUInt32BE(at + 4);
    const length = bytes.readUInt32BE(at + 8);
    if (version !== PROTOCOL_VERSION) {
      throw this.fail(`unsupported yamux version ${version} (only ${PROTOCOL_VERSION} exists)`);
    }
    switch (type) {
      case FrameType.Data:
        if (length > this.maxDataLength) {
          throw this.fail(`data frame of ${length} bytes exceeds the limit of ${this.maxDataLength}`);
        }
        if (streamId === 0) throw this.fail('data frame on stream 0');
        break;
      case FrameType.WindowUpdate:
        if (streamId === 0) throw this.fail('window update on stream 0');
        break;
      case FrameType.Ping:
      case FrameType.GoAway:
        if (streamId !== 0) throw this.fail(`session frame type ${type} on stream ${streamId}`);
        break;
      default:
        throw this.fail(`unknown frame type ${type}`);
    }
    return { type: type as FrameType, flags, streamId, length };
  }

  /** The next `n` bytes as one buffer: a view when they lie in one chunk. */
  private take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= n) {
      const view = first.subarray(this.offset, this.offset + n);
      this.consume(n);
      return view;
    }
    return this.copyOut(Buffer.allocUnsafe(n), n);
  }

  private copyOut(target: Buffer, n: number): Buffer {
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head]!;
      const count = Math.min(n - filled, chunk.length - this.offset);
      chunk.copy(target, filled, this.offset, this.offset + count);
      filled += count;
      this.consume(count);
    }
    return target;
  }

  private consume(n: number): void {
    this.available -= n;
    this.offset += n;
    if (this.offset === this.chunks[this.head]!.length) {
      this.chunks[this.head] = EMPTY;
      this.head++;
      this.offset = 0;
    }
  }

  private fail(message: string): MuxError {
    this.failed = new MuxError('ERR_PROTOCOL', `yamux protocol error: ${message}`);
    this.chunks = [];
    this.head = 0;
    this.available = 0;
    return this.failed;
  }
}

const EMPTY = Buffer.alloc(0);
