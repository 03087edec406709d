// Interop with yamux-js 0.2.0 on the basic data path only (DESIGN section 2 lists what it
// gets wrong: FIN, RST, frames split across chunks, large transfers). Over TCP on loopback,
// small messages both ways, in both roles, plus pings.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Session, type Stream } from '@g2c/mux';
import { afterEach, describe, expect, it } from 'vitest';
import { Client as YamuxJsClient, Server as YamuxJsServer } from 'yamux-js';
import { tcpTransport } from '../mux/transports.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Two connected sockets on loopback (the mux tests' TCP transport), closed after the test. */
async function tcpPair(): Promise<[Socket, Socket]> {
  const link = await tcpTransport.connect();
  for (const s of [link.a, link.b]) s.on('error', () => {});
  cleanups.push(() => void link.close());
  return [link.a as Socket, link.b as Socket];
}

/** Reads exactly `n` bytes (yamux-js never sends FIN, so 'end' cannot mark the end). */
function readBytes(stream: Duplex, n: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) {
        stream.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
  });
}

const message = (i: number, stream: number) => Buffer.from(`message ${i} on ${stream}: ${'x'.repeat(1000)}\n`);

/** Each stream in turn sends a message and waits for its echo, 20 rounds: the streams are
 *  interleaved, yet every transport write stays small (yamux-js drops frames that arrive
 *  split across TCP reads, so the coalesced 100 KiB writes of a burst would not survive). */
async function requestResponse(streams: Duplex[]): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const echoes = streams.map((s, n) => {
      const sent = message(i, n);
      const echo = readBytes(s, sent.length);
      s.write(sent);
      return echo.then((got) => got.equals(sent));
    });
    expect(await Promise.all(echoes)).toEqual(streams.map(() => true));
  }
}

describe('yamux-js 0.2.0 interop (basic data path)', () => {
  it('our client, yamux-js server: streams echo small messages, pings answered', async () => {
    const [a, b] = await tcpPair();
    const server = new YamuxJsServer((stream) => stream.on('data', (d: Buffer) => stream.write(d)), {
      enableKeepAlive: false,
    });
    server.on('error', () => {});
    b.pipe(server).pipe(b);
    const session = new Session(a, { client: true });
    cleanups.push(() => session.destroy());
    expect(await session.ping()).toBeGreaterThanOrEqual(0);
    const streams = Array.from({ length: 5 }, () => session.open());
    await requestResponse(streams);
  });

  it('yamux-js client, our server: streams echo small messages, pings answered', async () => {
    const [a, b] = await tcpPair();
    const client = new YamuxJsClient({ enableKeepAlive: false });
    client.on('error', () => {});
    a.pipe(client).pipe(a);
    const session = new Session(b, { client: false });
    cleanups.push(() => session.destroy());
    const accepted: Stream[] = [];
    session.on('stream', (s) => {
      accepted.push(s);
      s.on('data', (d: Buffer) => s.write(d));
    });
    expect(await session.ping()).toBeGreaterThanOrEqual(0);
    const streams = Array.from({ length: 5 }, () => client.open());
    await requestResponse(streams);
    expect(accepted.map((s) => s.id % 2)).toEqual([1, 1, 1, 1, 1]);
  });
});
