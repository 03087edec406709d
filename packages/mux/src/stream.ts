// One yamux stream as a Node Duplex: its state machine and both halves of its flow control.
//
// Receive side: frames land in `recvQueue` and move into the Readable's buffer only when
// Node asks for data (`_read`), so window is granted for bytes the application consumed:
// unread data per stream stays below its window plus the readable high-water mark. The
// window is granted back once half of it was consumed, and doubled (up to maxWindow) when
// that half took less than two round trips: the reader is faster than the window allows.
// Send side: `_write` hands chunks to the session, which cuts them into frames while the
// peer's window lasts; the write callback fires when the whole chunk is framed, so the
// writer waits for WindowUpdate frames (no polling).
// Close: end() sends FIN after the queued data; destroy() sends RST unless both FINs were
// exchanged; a received RST destroys the stream with ERR_STREAM_RESET (ERR_STREAM_REFUSED
// when the peer had not accepted it yet).
import { Duplex } from 'node:stream';
import type { MuxConfig } from './config.js';
import { MuxError } from './errors.js';
import { Flag, FrameType, HEADER_SIZE, INITIAL_WINDOW, writeHeader } from './frame.js';

/** What a stream needs from its session (kept narrow so the two files stay separate). */
export interface StreamHost {
  readonly config: MuxConfig;
  /** Smoothed round-trip time in ms, once measured. */
  readonly smoothedRtt: number | undefined;
  /** False once the session is destroyed: nothing can be sent any more. */
  readonly alive: boolean;
  sendControl(type: FrameType, flags: number, streamId: number, length: number): void;
  /** The stream has data to send and window to send it: queue it for the next flush. */
  wantsToSend(stream: Stream): void;
  /** The stream is done: remove it from the session's maps. */
  streamClosed(stream: Stream): void;
  /** Ask for up to `bytes` of window growth from the session's budget; returns what was granted. */
  reserveWindowGrowth(bytes: number): number;
  /** Give window growth back to the session's budget (the stream closed). */
  releaseWindowGrowth(bytes: number): void;
}

/** Received payloads smaller than this are copied into a shared tail buffer. */
const SMALL_PAYLOAD = 4096;
const TAIL_SIZE = 16 * 1024;

export class Stream extends Duplex {
  /** The yamux stream id: odd when the client side opened it, even for the server side. */
  readonly id: number;
  private readonly host: StreamHost;

  // --- send side ---
  /** Bytes the peer lets us send. */
  private sendWindow = INITIAL_WINDOW;
  private pending: Buffer[] = [];
  private pendingHead = 0;
  private pendingOffset = 0;
  private pendingBytes = 0;
  private pendingCallback: ((error?: Error | null) => void) | null = null;
  /** @internal Set by the session while the stream sits in its send queue. */
  queued = false;
  private localFin = false;
  private resetSent = false;

  // --- receive side ---
  /** Current receive window; grows up to maxWindow. */
  private recvWindow: number;
  /** Bytes the peer may still send before our next grant. */
  private recvCredit = INITIAL_WINDOW;
  /** Window added by the auto-tuner (taken from the session's budget). */
  private grown = 0;
  /** Consumed bytes not yet granted back. */
  private consumedUngranted = 0;
  /** When the last grant was sent (undefined before the first: one needs two to time a rate). */
  private lastGrantAt: number | undefined;
  private recvQueue: Buffer[] = [];
  private recvHead = 0;
  private recvQueued = 0;
  /** Copy target for small payloads, so that a flood of tiny frames costs few objects and
   *  does not pin the large transport buffers they arrived in. */
  private tail: Buffer | null = null;
  private tailUsed = 0;
  /** Index in recvQueue of the entry that still grows into `tail`, or -1. */
  private tailEntry = -1;
  private tailEntryStart = 0;
  /** Node asked for data and we have not filled its buffer since. */
  private reading = false;
  private remoteFin = false;
  private endPushed = false;
  private resetByPeer = false;
  /** The peer has accepted the stream (or opened it): a later RST is a reset, not a refusal. */
  private accepted: boolean;

  /** @internal Streams are created by Session.open() and by the session's 'stream' event. */
  constructor(host: StreamHost, id: number, initiator: 'local' | 'remote') {
    const hwm = host.config.streamHighWaterMark;
    super({ allowHalfOpen: true, readableHighWaterMark: hwm, writableHighWaterMark: hwm });
    this.host = host;
    this.id = id;
    this.accepted = initiator === 'remote';
    this.recvWindow = INITIAL_WINDOW;
  }

  /** @internal Send the SYN (outbound) or ACK (inbound, on accept), announcing our window. */
  announce(flag: number): void {
    const delta = this.host.config.initialWindow - INITIAL_WINDOW;
    this.recvWindow += delta;
    this.recvCredit += delta;
    this.host.sendControl(FrameType.WindowUpdate, flag, this.id, delta);
  }

  // ---------------------------------------------------------------- Writable side

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.pendingCallback = callback;
    this.signalReady();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    for (const { chunk } of chunks) {
      if (chunk.length === 0) continue;
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    if (this.pendingBytes === 0) {
      callback();
      return;
    }
    this.pendingCallback = callback;
    this.signalReady();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.host.alive) {
      callback(new MuxError('ERR_SESSION_CLOSED', 'the mux session closed before this stream could be ended'));
      return;
    }
    this.localFin = true;
    this.host.sendControl(FrameType.WindowUpdate, Flag.FIN, this.id, 0);
    callback();
  }

  /** @internal The session may call produceFrame() now. */
  canSend(): boolean {
    return this.pendingBytes > 0 && this.sendWindow > 0 && !this.destroyed;
  }

  private signalReady(): void {
    if (!this.queued && this.sendWindow > 0) this.host.wantsToSend(this);
  }

  /**
   * @internal Append one data frame (header, then payload views) to `out`; returns the
   * number of bytes appended. Completes the pending write once all of it is framed.
   */
  produceFrame(out: Buffer[], header: Buffer, headerOffset: number): number {
    const n = Math.min(this.pendingBytes, this.sendWindow, this.host.config.maxFrameSize);
    writeHeader(header, headerOffset, FrameType.Data, 0, this.id, n);
    out.push(header.subarray(headerOffset, headerOffset + HEADER_SIZE));
    let left = n;
    while (left > 0) {
      const buf = this.pending[this.pendingHead]!;
      const available = buf.length - this.pendingOffset;
      if (available <= left) {
        out.push(this.pendingOffset === 0 ? buf : buf.subarray(this.pendingOffset));
        left -= available;
        this.pendingHead++;
        this.pendingOffset = 0;
      } else {
        out.push(buf.subarray(this.pendingOffset, this.pendingOffset + left));
        this.pendingOffset += left;
        left = 0;
      }
    }
    this.pendingBytes -= n;
    this.sendWindow -= n;
    if (this.pendingBytes === 0) {
      this.pending = [];
      this.pendingHead = 0;
      const callback = this.pendingCallback;
      this.pendingCallback = null;
      // May re-enter _write with the next buffered chunk: it only queues it.
      callback?.();
    }
    return HEADER_SIZE + n;
  }

  // ---------------------------------------------------------------- Readable side

  override _read(): void {
    this.reading = true;
    while (this.recvHead < this.recvQueue.length) {
      const chunk = this.recvQueue[this.recvHead]!;
      this.recvQueue[this.recvHead] = EMPTY;
      if (this.tailEntry === this.recvHead) this.tailEntry = -1;
      this.recvHead++;
      this.recvQueued -= chunk.length;
      this.consumed(chunk.length);
      if (!this.push(chunk)) {
        this.reading = false;
        break;
      }
    }
    if (this.recvHead === this.recvQueue.length) {
      this.recvQueue = [];
      this.recvHead = 0;
      this.tailEntry = -1;
      if (this.remoteFin) this.pushEnd();
    }
  }

  /** @internal A Data frame's payload for this stream. Throws ERR_PROTOCOL on window overrun. */
  receiveData(data: Buffer): void {
    if (this.remoteFin || this.destroyed || data.length === 0) return;
    if (data.length > this.recvCredit) {
      throw new MuxError(
        'ERR_PROTOCOL',
        `yamux protocol error: stream ${this.id} received ${data.length} bytes with only ${this.recvCredit} of window left`,
      );
    }
    this.recvCredit -= data.length;
    if (this.reading && this.recvHead === this.recvQueue.length) {
      this.consumed(data.length);
      if (!this.push(data)) this.reading = false;
      return;
    }
    this.enqueue(data);
  }

  /** @internal A WindowUpdate's delta. */
  receiveWindow(delta: number): void {
    if (delta === 0) return;
    this.sendWindow += delta;
    if (this.pendingBytes > 0) this.signalReady();
  }

  /** @internal Flags of any frame for this stream, after its payload was delivered. */
  receiveFlags(flags: number): void {
    if (flags & Flag.RST) {
      this.resetByPeer = true;
      if (this.destroyed) return;
      this.destroy(
        this.accepted
          ? new MuxError('ERR_STREAM_RESET', `the peer reset stream ${this.id}`)
          : new MuxError(
              'ERR_STREAM_REFUSED',
              `the peer refused stream ${this.id} (its stream limit, accept backlog or GoAway); open it again later or elsewhere`,
            ),
      );
      return;
    }
    this.accepted = true;
    if (flags & Flag.FIN && !this.remoteFin) {
      this.remoteFin = true;
      if (this.recvHead === this.recvQueue.length) this.pushEnd();
    }
  }

  /** @internal Both FINs were exchanged: nothing more crosses the session for this stream. */
  get finished(): boolean {
    return this.localFin && this.remoteFin;
  }

  private pushEnd(): void {
    if (this.endPushed || this.destroyed) return;
    this.endPushed = true;
    this.push(null);
  }

  private enqueue(data: Buffer): void {
    const n = data.length;
    if (n < SMALL_PAYLOAD) {
      if (this.tail === null || this.tailUsed + n > this.tail.length) {
        this.tail = Buffer.allocUnsafe(TAIL_SIZE);
        this.tailUsed = 0;
        this.tailEntry = -1;
      }
      data.copy(this.tail, this.tailUsed);
      this.tailUsed += n;
      if (this.tailEntry !== -1 && this.tailEntry === this.recvQueue.length - 1) {
        this.recvQueue[this.tailEntry] = this.tail.subarray(this.tailEntryStart, this.tailUsed);
      } else {
        this.tailEntryStart = this.tailUsed - n;
        this.tailEntry = this.recvQueue.length;
        this.recvQueue.push(this.tail.subarray(this.tailEntryStart, this.tailUsed));
      }
    } else {
      // A small view of a large transport buffer would keep all of it alive: copy it out.
      this.recvQueue.push(n * 2 < data.buffer.byteLength ? Buffer.from(data) : data);
      this.tailEntry = -1;
    }
    this.recvQueued += n;
  }

  private consumed(n: number): void {
    this.consumedUngranted += n;
    if (!this.remoteFin && this.consumedUngranted >= this.recvWindow >>> 1) this.grant();
  }

  /** Give the consumed bytes back to the peer, growing the window if the reader is fast. */
  private grant(): void {
    if (!this.host.alive || this.destroyed) return;
    const now = performance.now();
    const rtt = this.host.smoothedRtt;
    const max = this.host.config.maxWindow;
    const since = this.lastGrantAt === undefined ? Number.POSITIVE_INFINITY : now - this.lastGrantAt;
    if (rtt !== undefined && this.recvWindow < max && since < 2 * rtt) {
      const growth = this.host.reserveWindowGrowth(Math.min(this.recvWindow, max - this.recvWindow));
      this.recvWindow += growth;
      this.grown += growth;
      this.consumedUngranted += growth;
    }
    this.lastGrantAt = now;
    this.recvCredit += this.consumedUngranted;
    this.host.sendControl(FrameType.WindowUpdate, 0, this.id, this.consumedUngranted);
    this.consumedUngranted = 0;
  }

  /** @internal Current receive window (for tests and stats). */
  get currentReceiveWindow(): number {
    return this.recvWindow;
  }

  /** @internal Bytes received and not yet handed to the Readable (for tests and stats). */
  get receiveQueued(): number {
    return this.recvQueued;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.resetByPeer && !this.resetSent && !this.finished && this.host.alive) {
      this.resetSent = true;
      this.host.sendControl(FrameType.WindowUpdate, Flag.RST, this.id, 0);
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingCallback = null;
    this.recvQueue = [];
    this.recvHead = 0;
    this.recvQueued = 0;
    this.tail = null;
    this.host.releaseWindowGrowth(this.grown);
    this.grown = 0;
    this.host.streamClosed(this);
    callback(error);
  }
}

const EMPTY = Buffer.alloc(0);
