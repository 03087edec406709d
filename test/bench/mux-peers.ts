// Other yamux implementations as peers of ours, for the interop tests and the mux benchmark
// (dev dependencies only). `@libp2p/yamux` 8 speaks only libp2p's MessageStream API, so it
// gets a small connection class over any Node Duplex (a TCP socket, a WebSocket duplex).
import type { Duplex } from 'node:stream';
import type { YamuxMuxerInit, yamux } from '@libp2p/yamux';
import type { Uint8ArrayList } from 'uint8arraylist';

/** A @libp2p/yamux muxer (the package does not export the class's type). */
export type YamuxMuxer = ReturnType<ReturnType<ReturnType<typeof yamux>>['createStreamMuxer']>;

/** @libp2p/yamux uses Promise.withResolvers, which Node 20 lacks. */
export function polyfillPromiseWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: () => unknown };
  if (P.withResolvers) return;
  P.withResolvers = () => {
    let resolve!: (value: unknown) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise((a, b) => {
      resolve = a;
      reject = b;
    });
    return { promise, resolve, reject };
  };
}

/**
 * A @libp2p/yamux muxer over a Node Duplex. `outbound` = the libp2p client role (odd ids).
 * The connection honours the duplex's back-pressure (write() false -> 'drain').
 */
export async function libp2pMuxer(
  duplex: Duplex,
  direction: 'outbound' | 'inbound',
  init: YamuxMuxerInit = {},
): Promise<YamuxMuxer> {
  polyfillPromiseWithResolvers();
  const [{ yamux }, { AbstractMultiaddrConnection }, { multiaddr }, { defaultLogger }] = await Promise.all([
    import('@libp2p/yamux'),
    import('@libp2p/utils'),
    import('@multiformats/multiaddr'),
    import('@libp2p/logger'),
  ]);

  class DuplexConnection extends AbstractMultiaddrConnection {
    constructor(private readonly duplex: Duplex) {
      super({
        remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1'),
        direction,
        log: defaultLogger().forComponent(`g2c:interop:${direction}`),
      });
      duplex.on('data', (chunk: Buffer) => this.onData(chunk));
      duplex.on('drain', () => this.safeDispatchEvent('drain'));
      duplex.on('end', () => this.onRemoteCloseWrite());
      duplex.on('close', () => this.onTransportClosed());
      duplex.on('error', (err) => this.abort(err));
    }

    sendData(data: Uint8ArrayList) {
      let canSendMore = true;
      for (const buf of data) canSendMore = this.duplex.write(buf);
      return { sentBytes: data.byteLength, canSendMore };
    }

    sendReset(): void {
      this.duplex.destroy();
    }

    async sendClose(): Promise<void> {
      this.duplex.end();
    }

    sendPause(): void {
      this.duplex.pause();
    }

    sendResume(): void {
      this.duplex.resume();
    }
  }

  return yamux({ enableKeepAlive: false, ...init })().createStreamMuxer(new DuplexConnection(duplex));
}
