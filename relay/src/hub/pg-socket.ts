// The socket pg gets for a ground2cloud instance (DESIGN 4.4): a net.Socket look-alike over a
// tunnel stream. pg calls setNoDelay(), connect(port, host) and waits for 'connect'; later
// setKeepAlive(), ref()/unref() (pg-pool on every reuse), end() and destroy(). connect()
// opens the tunnel stream; 'connect' is emitted (asynchronously) only after the agent said
// ok, and an agent refusal becomes an 'error' with the agent's code. TLS (pg's `ssl`) wraps
// this socket like any other, so the agent only ever carries ciphertext then.
import { Duplex } from 'node:stream';
import { TunnelError } from '@g2c/tunnel';

export interface StreamOpener {
  openStream(tunnelId: string, host: string, port: number): Promise<Duplex>;
}

/**
 * What pg (and the engine's error mapping) sees when the tunnel stream fails after connect:
 * a reset from the agent's side is the database connection being reset, as on a direct
 * socket (ECONNRESET); a lost agent session is tunnel_offline.
 */
function socketError(err: Error & { code?: string }): Error {
  if (err.code === 'ERR_STREAM_RESET') {
    return Object.assign(new Error(`the database connection was reset (${err.message})`, { cause: err }), {
      code: 'ECONNRESET',
    });
  }
  if (err.code === 'ERR_SESSION_CLOSED' || err.code === 'ERR_KEEPALIVE_TIMEOUT') {
    return new TunnelError(
      'tunnel_offline',
      `the tunnel's agent connection was lost while this database connection was open (${err.message}); retry`,
      { cause: err },
    );
  }
  return err;
}

export class TunnelSocket extends Duplex {
  /** Like net.Socket: true between connect() and 'connect'. */
  connecting = false;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  private stream: Duplex | undefined;
  /** A write that arrived before the stream: completed once it exists. */
  private pendingWrite: { chunk: Buffer; callback: (error?: Error | null) => void } | undefined;
  private pendingFinal: ((error?: Error | null) => void) | undefined;

  constructor(
    private readonly hub: StreamOpener,
    private readonly tunnelId: string,
  ) {
    super({ allowHalfOpen: false, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
  }

  connect(port: number, host: string): this {
    if (this.connecting || this.stream) throw new Error('TunnelSocket.connect() called twice');
    this.connecting = true;
    this.remoteAddress = host;
    this.remotePort = port;
    this.hub.openStream(this.tunnelId, host, port).then(
      (stream) => {
        this.connecting = false;
        if (this.destroyed) {
          stream.destroy();
          return;
        }
        this.attach(stream);
        this.emit('connect');
        this.emit('ready');
      },
      (err: Error) => {
        this.connecting = false;
        this.destroy(err);
      },
    );
    return this;
  }

  private attach(stream: Duplex): void {
    this.stream = stream;
    stream.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stream.pause();
    });
    stream.once('end', () => this.push(null));
    stream.on('error', (err: Error) => this.destroy(socketError(err)));
    stream.once('close', () => {
      // The stream is gone: if our side still expects bytes or writes, that is an abrupt end.
      if (!this.destroyed && !(this.readableEnded && this.writableFinished)) {
        if (this.readableEnded || this.writableEnded) this.destroy();
        else this.destroy(Object.assign(new Error('the tunnel stream closed'), { code: 'ECONNRESET' }));
      }
    });
    stream.on('drain', () => this.emit('tunnelDrain'));
    if (this.pendingWrite) {
      const { chunk, callback } = this.pendingWrite;
      this.pendingWrite = undefined;
      this._write(chunk, 'buffer' as BufferEncoding, callback);
    }
    if (this.pendingFinal) {
      const callback = this.pendingFinal;
      this.pendingFinal = undefined;
      this._final(callback);
    }
  }

  override _read(): void {
    this.stream?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const stream = this.stream;
    if (!stream) {
      this.pendingWrite = { chunk, callback };
      return;
    }
    if (stream.write(chunk)) callback();
    else this.once('tunnelDrain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    const stream = this.stream;
    if (!stream) {
      if (this.connecting) this.pendingFinal = callback;
      else callback();
      return;
    }
    stream.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // An RST for the agent: the database connection is reset, not left half open.
    this.stream?.destroy();
    this.removeAllListeners('tunnelDrain');
    // When TLS destroys us after a failed handshake, its error (say, an untrusted
    // certificate) is emitted on the next tick; pg must see it before our 'close', or it
    // reports only "Connection terminated unexpectedly".
    if (error) callback(error);
    else setImmediate(() => callback(null));
  }

  setNoDelay(_noDelay?: boolean): this {
    return this; // the mux coalesces per tick; the agent sets TCP_NODELAY on its side
  }

  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this; // liveness is the tunnel's keepalive
  }

  ref(): this {
    return this; // the agent's WebSocket holds the event loop, not this object
  }

  unref(): this {
    return this;
  }
}

/** pg's `stream` option for a tunnel: `new pg.Pool({ ..., stream: tunnelSocketFactory(hub, id) })`. */
export function tunnelSocketFactory(hub: StreamOpener, tunnelId: string): () => Duplex {
  return () => new TunnelSocket(hub, tunnelId);
}
