// A yamux session over any byte stream (a Duplex that already exists: TCP socket, WebSocket
// adapter, in-memory pair). It never dials. In charge of:
//   - receiving: transport chunks -> FrameDecoder -> per-stream delivery, pings, GoAway;
//     any protocol violation ends the session with GoAway(protocol error), never a throw;
//   - sending: control frames and data frames of the streams with window, round-robin,
//     gathered per tick into one corked write; data waits while the transport says so;
//   - lifecycle: stream ids, accept backlog and stream limit (refusal = RST), keepalive
//     and RTT measurement (timers unref()ed), goAway(), graceful close(), destroy().
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { type MuxConfig, verifyConfig } from './config.js';
import { MuxError } from './errors.js';
import {
  encodeHeader,
  Flag,
  type Frame,
  FrameDecoder,
  FrameType,
  GoAwayCode,
  HEADER_SIZE,
  writeHeader,
} from './frame.js';
import { Stream, type StreamHost } from './stream.js';

export interface SessionOptions extends Partial<MuxConfig> {
  /** The client side uses odd stream ids, the server side even ones; exactly one of each. */
  client: boolean;
}

interface PendingPing {
  sentAt: number;
  resolve?: (rtt: number) => void;
  reject?: (err: Error) => void;
}

/** Frames written per transport write at most, before looking at back-pressure again. */
const BATCH_BYTES = 256 * 1024;
/** Payloads below this are copied together with their neighbours into one buffer. */
const MERGE_BELOW = 2048;
/** While data flows in, measure the round-trip time at most this often (for window tuning). */
const RTT_PROBE_INTERVAL_MS = 20;
/** After close() ended the transport, how long the peer gets to close its side. */
const CLOSE_LINGER_MS = 5_000;

/** Events of a session: 'stream' (opened by the peer), 'goaway' (the peer accepts no new
 *  streams), 'error' (then 'close'), 'close'. */
export interface SessionEvents {
  stream: [stream: Stream];
  goaway: [code: number];
  error: [error: Error];
  close: [];
  newListener: [event: string | symbol, listener: (...args: unknown[]) => void];
}

export class Session extends EventEmitter<SessionEvents> implements StreamHost {
  readonly config: MuxConfig;
  readonly client: boolean;
  private readonly transport: Duplex;
  private readonly decoder: FrameDecoder;
  private readonly streams = new Map<number, Stream>();
  /** Peer-opened streams waiting for a 'stream' listener. */
  private backlog: Stream[] = [];
  private nextStreamId: number;

  // sending
  private out: Buffer[] = [];
  private outBytes = 0;
  private ready: Stream[] = [];
  private readyHead = 0;
  private flushScheduled = false;
  private flushing = false;
  /** The transport's write() said false: data waits for 'drain'. */
  private blocked = false;
  private inputPaused = false;
  /** Bytes written since the transport last refused data: control frames only. */
  private controlWhileBlocked = 0;
  private headerSlab = Buffer.allocUnsafe(0);
  /** Receive window added by the auto-tuner over all streams (bounded by maxSessionWindowGrowth). */
  private windowGrowth = 0;
  private headerSlabUsed = 0;

  // liveness
  private readonly pings = new Map<number, PendingPing>();
  private nextPingId = 0;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private livenessTimer: NodeJS.Timeout | undefined;
  private rttProbeAt = Number.NEGATIVE_INFINITY;
  private rttProbeId = -1;
  private srtt: number | undefined;

  // lifecycle
  private localGoAway = false;
  private remoteGoAway = false;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private closeLinger: NodeJS.Timeout | undefined;
  private isDestroyed = false;

  constructor(transport: Duplex, options: SessionOptions) {
    super();
    const { client, ...rest } = options;
    if (typeof client !== 'boolean') {
      throw new MuxError(
        'ERR_INVALID_CONFIG',
        'mux option client must be true or false (which side opened the connection)',
      );
    }
    this.config = verifyConfig(rest);
    this.client = client;
    this.nextStreamId = client ? 1 : 2;
    this.transport = transport;
    this.decoder = new FrameDecoder({ maxDataLength: this.config.maxWindow });

    transport.on('data', this.onTransportData);
    transport.on('drain', this.onTransportDrain);
    transport.on('end', this.onTransportEnd);
    transport.on('error', this.onTransportError);
    transport.on('close', this.onTransportClose);
    this.on('newListener', this.onNewListener);

    if (transport.destroyed) {
      process.nextTick(() => this.destroy());
      return;
    }
    if (this.config.keepaliveIntervalMs > 0) {
      this.keepaliveTimer = setInterval(this.onKeepalive, this.config.keepaliveIntervalMs);
      this.keepaliveTimer.unref();
    }
    // A first round trip seeds the RTT the window tuner works with.
    this.sendPing(undefined);
  }

  // ---------------------------------------------------------------- public API

  /** Streams in this session (open in either direction, not yet closed). */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Smoothed round-trip time in ms, from pings; undefined until the first answer. */
  get smoothedRtt(): number | undefined {
    return this.srtt;
  }

  /** @internal For StreamHost: frames can still be sent. */
  get alive(): boolean {
    return !this.isDestroyed;
  }

  get destroyed(): boolean {
    return this.isDestroyed;
  }

  /** Open a new stream. Throws if the session cannot open one (see the error codes). */
  open(): Stream {
    if (this.isDestroyed || this.closing) {
      throw new MuxError('ERR_SESSION_CLOSED', 'the mux session is closed; open streams on a new session');
    }
    if (this.remoteGoAway) {
      throw new MuxError('ERR_REMOTE_GOAWAY', 'the peer sent GoAway and accepts no new streams; use another session');
    }
    if (this.streams.size >= this.config.maxStreams) {
      throw new MuxError(
        'ERR_STREAM_REFUSED',
        `this session already carries ${this.streams.size} streams (maxStreams); close some or use another session`,
      );
    }
    const id = this.nextStreamId;
    if (id > 0xffff_ffff) {
      throw new MuxError('ERR_STREAMS_EXHAUSTED', 'every stream id of this session is used; open a new session');
    }
    this.nextStreamId += 2;
    const stream = new Stream(this, id, 'local');
    this.streams.set(id, stream);
    stream.announce(Flag.SYN);
    return stream;
  }

  /** Round-trip time to the peer in ms. Rejects when the session ends first. */
  ping(): Promise<number> {
    if (this.isDestroyed) {
      return Promise.reject(new MuxError('ERR_SESSION_CLOSED', 'the mux session is closed'));
    }
    return new Promise((resolve, reject) => this.sendPing({ resolve, reject }));
  }

  /** Tell the peer that we accept no new streams; existing streams carry on. */
  goAway(code: GoAwayCode = GoAwayCode.Normal): void {
    if (this.localGoAway || this.isDestroyed) return;
    this.localGoAway = true;
    this.sendControl(FrameType.GoAway, 0, 0, code);
  }

  /**
   * Graceful close: GoAway, wait until every stream has finished, then end the transport.
   * Resolves once the session is closed.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closePromise = new Promise((resolve) => {
      if (this.isDestroyed) {
        resolve();
        return;
      }
      this.once('close', () => resolve());
    });
    if (!this.isDestroyed) {
      this.closing = true;
      this.goAway();
      for (const stream of this.backlog) stream.destroy();
      this.backlog = [];
      this.maybeFinishClose();
    }
    return this.closePromise;
  }

  /**
   * Abrupt close: the transport is destroyed. With an error the session emits 'error' and
   * open streams fail with ERR_SESSION_CLOSED (its cause); without, they just close.
   */
  destroy(error?: Error): void {
    this.terminate(error, error ? streamFailure(error.message, error) : undefined);
  }

  private terminate(error: Error | undefined, streamError: Error | undefined): void {
    if (this.isDestroyed) return;
    this.isDestroyed = true;
    clearInterval(this.keepaliveTimer);
    clearTimeout(this.livenessTimer);
    clearTimeout(this.closeLinger);
    const reason = error ?? new MuxError('ERR_SESSION_CLOSED', 'the mux session closed');
    for (const ping of this.pings.values()) ping.reject?.(reason);
    this.pings.clear();
    for (const stream of this.backlog) stream.destroy();
    this.backlog = [];
    for (const stream of [...this.streams.values()]) {
      // Both FINs exchanged: its data is complete, let the reader finish it.
      if (!stream.finished) stream.destroy(streamError);
    }
    this.streams.clear();
    this.ready = [];
    this.out = [];
    this.transport.off('data', this.onTransportData);
    if (error instanceof MuxError && error.code === 'ERR_PROTOCOL' && this.transport.writable) {
      // Tell the peer why, then end the transport; a peer that never closes is cut later.
      this.transport.write(encodeHeader(FrameType.GoAway, 0, 0, GoAwayCode.ProtocolError));
      this.transport.end();
      setTimeout(() => this.transport.destroy(), CLOSE_LINGER_MS).unref();
    } else {
      this.transport.destroy();
    }
    process.nextTick(() => {
      if (error) this.emit('error', error);
      this.emit('close');
    });
  }

  // ---------------------------------------------------------------- StreamHost

  /** @internal */
  sendControl(type: FrameType, flags: number, streamId: number, length: number): void {
    if (this.isDestroyed) return;
    const header = this.allocHeader();
    writeHeader(header.buffer, header.offset, type, flags, streamId, length);
    this.out.push(header.buffer.subarray(header.offset, header.offset + HEADER_SIZE));
    this.outBytes += HEADER_SIZE;
    this.scheduleFlush();
  }

  /** @internal */
  wantsToSend(stream: Stream): void {
    if (this.isDestroyed || stream.queued) return;
    stream.queued = true;
    this.ready.push(stream);
    this.scheduleFlush();
  }

  /** @internal */
  reserveWindowGrowth(bytes: number): number {
    const granted = Math.max(0, Math.min(bytes, this.config.maxSessionWindowGrowth - this.windowGrowth));
    this.windowGrowth += granted;
    return granted;
  }

  /** @internal */
  releaseWindowGrowth(bytes: number): void {
    this.windowGrowth = Math.max(0, this.windowGrowth - bytes);
  }

  /** @internal */
  streamClosed(stream: Stream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    if (this.closing) this.maybeFinishClose();
  }

  // ---------------------------------------------------------------- sending

  private allocHeader(): { buffer: Buffer; offset: number } {
    if (this.headerSlabUsed + HEADER_SIZE > this.headerSlab.length) {
      // Headers are carved from slabs that are never reused, so no written header changes.
      this.headerSlab = Buffer.allocUnsafe(HEADER_SIZE * 256);
      this.headerSlabUsed = 0;
    }
    const offset = this.headerSlabUsed;
    this.headerSlabUsed += HEADER_SIZE;
    return { buffer: this.headerSlab, offset };
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing) return;
    this.flushScheduled = true;
    process.nextTick(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.isDestroyed) return;
    this.flushing = true;
    try {
      while (!this.blocked) {
        const stream = this.nextReady();
        if (stream === undefined) break;
        const header = this.allocHeader();
        this.outBytes += stream.produceFrame(this.out, header.buffer, header.offset);
        if (stream.canSend() && !stream.queued) {
          stream.queued = true;
          this.ready.push(stream);
        }
        if (this.outBytes >= BATCH_BYTES) this.writeOut();
      }
      // Control frames go out even while data waits: they are small, and the peer's
      // window updates must never wait behind our own data.
      this.writeOut();
    } finally {
      this.flushing = false;
    }
    if (this.isDestroyed) return;
    if (this.closing) this.maybeFinishClose();
    if (this.out.length > 0 || (!this.blocked && this.readyHead < this.ready.length)) this.scheduleFlush();
  };

  private nextReady(): Stream | undefined {
    while (this.readyHead < this.ready.length) {
      const stream = this.ready[this.readyHead]!;
      this.ready[this.readyHead] = undefined as unknown as Stream;
      this.readyHead++;
      stream.queued = false;
      if (stream.canSend()) return stream;
    }
    this.ready = [];
    this.readyHead = 0;
    return undefined;
  }

  private writeOut(): void {
    const out = this.out;
    if (out.length === 0 || this.isDestroyed) return;
    this.out = [];
    this.outBytes = 0;
    const transport = this.transport;
    if (!transport.writable) return;
    const wasBlocked = this.blocked;
    let ok: boolean;
    if (out.length === 1) {
      ok = transport.write(out[0]);
    } else {
      transport.cork();
      ok = true;
      let runStart = 0;
      let runBytes = 0;
      for (let i = 0; i <= out.length; i++) {
        const buf = out[i];
        if (buf !== undefined && buf.length < MERGE_BELOW) {
          runBytes += buf.length;
          continue;
        }
        if (i > runStart) {
          ok = transport.write(i - runStart === 1 ? out[runStart]! : Buffer.concat(out.slice(runStart, i), runBytes));
        }
        if (buf !== undefined) ok = transport.write(buf);
        runStart = i + 1;
        runBytes = 0;
      }
      transport.uncork();
    }
    if (wasBlocked) {
      for (const buf of out) this.controlWhileBlocked += buf.length;
      if (!this.inputPaused && this.controlWhileBlocked > this.config.maxControlBacklog) {
        // The peer keeps sending (pings, window updates) but does not read our answers:
        // stop reading until it does, rather than queue answers without bound.
        this.inputPaused = true;
        transport.pause();
      }
    }
    if (!ok) this.blocked = true;
  }

  private readonly onTransportDrain = (): void => {
    this.blocked = false;
    this.controlWhileBlocked = 0;
    if (this.inputPaused) {
      this.inputPaused = false;
      this.transport.resume();
    }
    this.scheduleFlush();
  };

  // ---------------------------------------------------------------- receiving

  private readonly onTransportData = (chunk: Buffer): void => {
    if (this.isDestroyed) return;
    this.decoder.push(chunk);
    try {
      let frame = this.decoder.next();
      while (frame !== undefined) {
        this.handleFrame(frame);
        if (this.isDestroyed) return;
        frame = this.decoder.next();
      }
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };

  private handleFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Data:
      case FrameType.WindowUpdate:
        this.handleStreamFrame(frame);
        return;
      case FrameType.Ping:
        this.handlePing(frame);
        return;
      case FrameType.GoAway:
        this.handleGoAway(frame.length);
        return;
    }
  }

  private handleStreamFrame(frame: Frame): void {
    const { flags, streamId } = frame;
    let stream = this.streams.get(streamId);
    if (flags & Flag.SYN) {
      if (stream !== undefined) throw protocolError(`SYN for stream ${streamId}, which is already open`);
      stream = this.incomingStream(streamId);
      if (stream === undefined) return;
    }
    // A stream we closed or refused: late frames are expected and dropped.
    if (stream === undefined) return;
    if (flags & Flag.RST) {
      this.dropFromBacklog(stream);
      stream.receiveFlags(flags);
      return;
    }
    if (frame.type === FrameType.Data) {
      if (frame.data!.length > 0) {
        stream.receiveData(frame.data!);
        this.maybeProbeRtt();
      }
    } else {
      stream.receiveWindow(frame.length);
    }
    stream.receiveFlags(flags);
  }

  private incomingStream(id: number): Stream | undefined {
    if ((id % 2 === 1) === this.client) {
      throw protocolError(
        `the peer opened stream ${id}, an id of our own side (both sides think they are the ${this.client ? 'client' : 'server'})`,
      );
    }
    const refuse =
      this.localGoAway ||
      this.closing ||
      this.streams.size >= this.config.maxStreams ||
      (this.listenerCount('stream') === 0 && this.backlog.length >= this.config.acceptBacklog);
    if (refuse) {
      this.sendControl(FrameType.WindowUpdate, Flag.RST, id, 0);
      return undefined;
    }
    const stream = new Stream(this, id, 'remote');
    this.streams.set(id, stream);
    if (this.listenerCount('stream') > 0) {
      this.accept(stream);
    } else {
      this.backlog.push(stream);
    }
    return stream;
  }

  private accept(stream: Stream): void {
    stream.announce(Flag.ACK);
    this.emit('stream', stream);
  }

  private dropFromBacklog(stream: Stream): void {
    const at = this.backlog.indexOf(stream);
    if (at === -1) return;
    this.backlog.splice(at, 1);
    // Nobody listens to this stream yet: end it without an 'error' event.
    stream.destroy();
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (event !== 'stream' || this.backlog.length === 0) return;
    process.nextTick(() => {
      while (this.backlog.length > 0 && this.listenerCount('stream') > 0 && !this.isDestroyed) {
        const stream = this.backlog.shift()!;
        if (!stream.destroyed) this.accept(stream);
      }
    });
  };

  private handlePing(frame: Frame): void {
    if (frame.flags & Flag.SYN) {
      this.sendControl(FrameType.Ping, Flag.ACK, 0, frame.length);
      return;
    }
    if (!(frame.flags & Flag.ACK)) return;
    const ping = this.pings.get(frame.length);
    if (ping === undefined) return;
    this.pings.delete(frame.length);
    const rtt = performance.now() - ping.sentAt;
    // Rises at once, decays slowly: the window tuner must not judge a loaded link by the
    // round trip it had while idle.
    this.srtt = this.srtt === undefined || rtt > this.srtt ? rtt : this.srtt * 0.875 + rtt * 0.125;
    ping.resolve?.(rtt);
    // Any answer proves the peer alive; the clock restarts from the oldest ping still open.
    clearTimeout(this.livenessTimer);
    this.livenessTimer = undefined;
    const oldest = this.pings.values().next();
    if (!oldest.done) this.armLiveness(oldest.value.sentAt);
  }

  private handleGoAway(code: number): void {
    if (code === GoAwayCode.Normal) {
      this.remoteGoAway = true;
      this.emit('goaway', code);
      return;
    }
    const why =
      code === GoAwayCode.ProtocolError
        ? 'a protocol error on our side'
        : code === GoAwayCode.InternalError
          ? 'an internal error'
          : `code ${code}`;
    this.destroy(new MuxError('ERR_REMOTE_GOAWAY', `the peer ended the mux session with GoAway (${why})`));
  }

  private readonly onTransportEnd = (): void => {
    // The peer sends nothing more: nothing more can be received on any stream.
    this.terminate(undefined, streamFailure('the connection under it ended'));
  };

  private readonly onTransportError = (err: Error): void => {
    // After a GoAway with nothing left open the peer is closing: a failed last write (the
    // transport already shut by the peer) is the end of the session, not an error.
    const ending = this.closing || (this.remoteGoAway && this.streams.size === 0);
    if (ending) this.terminate(undefined, streamFailure(err.message, err));
    else this.destroy(err);
  };

  private readonly onTransportClose = (): void => {
    this.terminate(undefined, streamFailure('the connection under it closed'));
  };

  // ---------------------------------------------------------------- liveness

  private sendPing(handlers: { resolve?: (rtt: number) => void; reject?: (err: Error) => void } | undefined): number {
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 1) >>> 0;
    const sentAt = performance.now();
    this.pings.set(id, { sentAt, ...handlers });
    this.sendControl(FrameType.Ping, Flag.SYN, 0, id);
    if (this.livenessTimer === undefined) this.armLiveness(sentAt);
    return id;
  }

  private armLiveness(since: number): void {
    const timeout = this.config.keepaliveTimeoutMs;
    if (timeout === 0 || this.isDestroyed) return;
    const delay = Math.max(0, since + timeout - performance.now());
    this.livenessTimer = setTimeout(this.onLivenessTimeout, delay);
    this.livenessTimer.unref();
  }

  private readonly onLivenessTimeout = (): void => {
    this.livenessTimer = undefined;
    this.destroy(
      new MuxError(
        'ERR_KEEPALIVE_TIMEOUT',
        `timeout: the peer did not answer a ping within ${this.config.keepaliveTimeoutMs} ms; the connection is presumed dead`,
      ),
    );
  };

  private readonly onKeepalive = (): void => {
    if (this.pings.size < 16) this.sendPing(undefined);
  };

  /** While data arrives, keep one RTT probe in flight now and then: the loaded RTT is what
   *  the window tuner must compare against, not the idle one. */
  private maybeProbeRtt(): void {
    const now = performance.now();
    if (now - this.rttProbeAt < RTT_PROBE_INTERVAL_MS || this.pings.has(this.rttProbeId)) return;
    this.rttProbeAt = now;
    this.rttProbeId = this.sendPing(undefined);
  }

  // ---------------------------------------------------------------- close

  private maybeFinishClose(): void {
    if (!this.closing || this.isDestroyed || this.streams.size > 0 || this.closeLinger) return;
    if (this.out.length > 0 || this.flushScheduled) {
      this.scheduleFlush();
      return;
    }
    this.transport.end();
    this.closeLinger = setTimeout(() => this.destroy(), CLOSE_LINGER_MS);
    this.closeLinger.unref();
  }
}

function streamFailure(why: string, cause?: Error): MuxError {
  return new MuxError('ERR_SESSION_CLOSED', `the mux session ended while this stream was open: ${why}`, { cause });
}

function protocolError(message: string): MuxError {
  return new MuxError('ERR_PROTOCOL', `yamux protocol error: ${message}`);
}
