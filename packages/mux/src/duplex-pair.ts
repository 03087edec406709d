// Two connected in-memory Duplex streams (what Node 22's stream.duplexPair() gives), for
// running sessions in one process: tests, benchmarks, in-process peers. Back-pressure is
// real: a write completes only when the other side's reader has room for it.
// end() on one side ends the other's readable side; destroy() on one side closes the other.
import { Duplex } from 'node:stream';

export function duplexPair(options: { highWaterMark?: number } = {}): [Duplex, Duplex] {
  const a = new PairSide(options.highWaterMark);
  const b = new PairSide(options.highWaterMark);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class PairSide extends Duplex {
  peer!: PairSide;
  /** The peer's write waiting for our reader to make room. */
  private blockedWrite: (() => void) | null = null;

  constructor(highWaterMark?: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer.destroyed) {
      callback(Object.assign(new Error('the other side of the pair is closed'), { code: 'EPIPE' }));
      return;
    }
    if (peer.push(chunk)) callback();
    else peer.blockedWrite = () => callback();
  }

  override _read(): void {
    const release = this.blockedWrite;
    this.blockedWrite = null;
    release?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const release = this.peer.blockedWrite;
    this.peer.blockedWrite = null;
    release?.();
    if (!this.peer.destroyed) this.peer.destroy();
    callback(error);
  }
}
