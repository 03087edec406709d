// A WebSocket as a byte stream (a Duplex), so that a mux session can run over it. Every
// binary message is a chunk of the stream, in both directions. Unlike ws's own
// createWebSocketStream, closing and destroying propagate both ways and a socket that goes
// away ends the duplex with an error instead of leaving it waiting:
//   - duplex.end()        -> WebSocket close 1000 (after queued writes went out)
//   - duplex.destroy()    -> WebSocket close 1000; duplex.destroy(err) -> terminate
//   - peer close 1000/1001 before our end -> readable side ends ('end'), further writes fail
//   - any other close, or a socket error  -> the duplex is destroyed with the error
// Back-pressure: a write completes only while the socket's bufferedAmount stays under the
// high-water mark, otherwise when that message has been flushed to the TCP socket; incoming
// messages pause the socket while the reader does not keep up.
// Create it before or in the same tick as the WebSocket's 'open' (or in the server's upgrade
// callback): ws emits messages that arrived with the handshake on the next tick, and a
// message emitted before the duplex listens is lost. Writes before 'open' wait for it.
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { WebSocketClosedError } from './errors.js';
import { CloseCode } from './version.js';

export interface WebSocketDuplexOptions {
  /** Bytes buffered in the socket beyond which writes wait (default 1 MiB). */
  writeHighWaterMark?: number;
  /** Bytes buffered for the reader beyond which the socket is paused (default 1 MiB). */
  readHighWaterMark?: number;
}

const DEFAULT_HWM = 1024 * 1024;
/** A written chunk from this size on is not copied to join it with a short header. */
const SEND_ALONE_FROM = 16 * 1024;
const ignore = (): void => {};

export function websocketDuplex(ws: WebSocket, options: WebSocketDuplexOptions = {}): Duplex {
  return new WebSocketDuplex(ws, options);
}

class WebSocketDuplex extends Duplex {
  private readonly ws: WebSocket;
  private readonly writeLimit: number;
  private closeError: Error | undefined;

  constructor(ws: WebSocket, options: WebSocketDuplexOptions) {
    super({
      allowHalfOpen: true,
      readableHighWaterMark: options.readHighWaterMark ?? DEFAULT_HWM,
      writableHighWaterMark: options.writeHighWaterMark ?? DEFAULT_HWM,
    });
    this.ws = ws;
    this.writeLimit = options.writeHighWaterMark ?? DEFAULT_HWM;
    ws.binaryType = 'nodebuffer';
    ws.on('message', this.onMessage);
    ws.on('close', this.onClose);
    ws.on('error', this.onError);
    if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) {
      process.nextTick(() => this.onClose(CloseCode.SESSION_LOST, Buffer.from('closed before use')));
    }
  }

  private readonly onMessage = (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      this.ws.close(CloseCode.PROTOCOL_ERROR, 'text message on a binary tunnel');
      this.destroy(new WebSocketClosedError(CloseCode.PROTOCOL_ERROR, 'text message on a binary tunnel'));
      return;
    }
    if (data.length === 0) return;
    if (!this.push(data) && !this.ws.isPaused) this.ws.pause();
  };

  private readonly onClose = (code: number, reason: Buffer) => {
    this.closeError = new WebSocketClosedError(code, reason.toString());
    if (this.destroyed) return;
    if (code === CloseCode.NORMAL || code === CloseCode.GOING_AWAY) {
      // An orderly close is the end of the stream; anything still to be written cannot go.
      this.push(null);
      if (this.writableFinished) return;
      if (this.writableLength > 0 || this.writableEnded) this.destroy(this.closeError);
      else this.end();
      return;
    }
    this.destroy(this.closeError);
  };

  private readonly onError = (err: Error) => {
    this.destroy(err);
  };

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.send(chunk, callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    const last = chunks.length - 1;
    const tail = chunks[last]!.chunk;
    if (last === 1 && tail.length >= SEND_ALONE_FROM && chunks[0]!.chunk.length < SEND_ALONE_FROM) {
      // A short head and a large tail (a mux frame header and its payload): two messages
      // rather than a copy of the payload (message boundaries carry no meaning). ws writes the
      // payload as is (or copies it once anyway while masking); the corked socket still sends
      // both in one writev. ws sends in order, so the tail's callback covers the head.
      const socket = this.rawSocket();
      socket?.cork();
      this.send(chunks[0]!.chunk, ignore);
      this.send(tail, callback);
      socket?.uncork();
      return;
    }
    // Coalesce: one message costs a frame header and often a syscall.
    this.send(last === 0 ? tail : Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  /** The TCP socket under the WebSocket (a ws internal; absent before the handshake). */
  private rawSocket(): Socket | undefined {
    const socket = (this.ws as unknown as { _socket?: Socket | null })._socket;
    return socket && this.ws.readyState === WebSocket.OPEN ? socket : undefined;
  }

  private send(data: Buffer, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.CONNECTING) {
      // Created before the handshake finished: the first write waits for it (a failed
      // handshake closes the socket, which destroys this duplex).
      this.ws.once('open', () => this.send(data, callback));
      return;
    }
    if (this.ws.readyState !== WebSocket.OPEN) {
      callback(this.closeError ?? new WebSocketClosedError(CloseCode.SESSION_LOST, 'socket not open'));
      return;
    }
    let called = false;
    const done = (err?: Error | null) => {
      if (called) return;
      called = true;
      callback(err);
    };
    this.ws.send(data, { binary: true }, (err) => {
      // Once this message is flushed everything before it is too.
      if (err) done(this.closeError ?? err);
      else done();
    });
    if (this.ws.bufferedAmount < this.writeLimit) done();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(CloseCode.NORMAL);
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.ws.off('message', this.onMessage);
    // Keep listening for 'error' so that a late socket error is not an uncaught exception.
    const state = this.ws.readyState;
    if (state === WebSocket.OPEN || state === WebSocket.CONNECTING) {
      if (error) this.ws.terminate();
      else this.ws.close(CloseCode.NORMAL);
    }
    callback(error);
  }
}
