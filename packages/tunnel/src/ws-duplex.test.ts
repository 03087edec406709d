import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { websocketDuplex } from './ws-duplex.js';

// A real WebSocket pair on loopback: `client` is a Duplex over the client socket,
// `server` the raw server-side WebSocket.
async function pair(): Promise<{ wss: WebSocketServer; client: Duplex; clientWs: WebSocket; server: WebSocket }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const { port } = wss.address() as AddressInfo;
  const serverP = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  const clientWs = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    clientWs.once('open', () => resolve());
    clientWs.once('error', reject);
  });
  const server = await serverP;
  servers.push(wss);
  return { wss, client: websocketDuplex(clientWs), clientWs, server };
}

const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const wss of servers.splice(0)) {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
  }
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const once = <T = unknown>(emitter: NodeJS.EventEmitter, event: string) =>
  new Promise<T>((r) => emitter.once(event, r as (v: T) => void));

vi.setConfig({ testTimeout: 15_000 });

describe('websocketDuplex', () => {
  it('carries bytes both ways as binary messages', async () => {
    const { client, server } = await pair();
    server.on('message', (data, isBinary) => {
      expect(isBinary).toBe(true);
      server.send(data as Buffer);
    });
    const sent = randomBytes(4 * 1024 * 1024);
    const received: Buffer[] = [];
    let n = 0;
    const done = new Promise<void>((resolve) =>
      client.on('data', (chunk: Buffer) => {
        received.push(chunk);
        n += chunk.length;
        if (n === sent.length) resolve();
      }),
    );
    for (let i = 0; i < sent.length; i += 64 * 1024) client.write(sent.subarray(i, i + 64 * 1024));
    await done;
    expect(sha(Buffer.concat(received))).toBe(sha(sent));
    client.destroy();
  });

  it('a short header and a large payload written together arrive in order, from both roles', async () => {
    const { client, server } = await pair();
    const serverDuplex = websocketDuplex(server);
    const collect = (d: Duplex, bytes: number) =>
      new Promise<Buffer>((resolve) => {
        const got: Buffer[] = [];
        let n = 0;
        d.on('data', (c: Buffer) => {
          got.push(c);
          n += c.length;
          if (n === bytes) resolve(Buffer.concat(got));
        });
      });
    // The mux writes a frame as a corked header + payload: the client side masks, the server does not.
    const frames: Buffer[] = [];
    for (let i = 0; i < 8; i++) frames.push(randomBytes(12), randomBytes(64 * 1024 + i));
    const expected = Buffer.concat(frames);
    for (const [from, to] of [
      [client, serverDuplex],
      [serverDuplex, client],
    ] as const) {
      const arrived = collect(to, expected.length);
      const written: Promise<void>[] = [];
      for (let i = 0; i < frames.length; i += 2) {
        from.cork();
        for (const f of [frames[i]!, frames[i + 1]!]) {
          written.push(new Promise((resolve, reject) => from.write(f, (err) => (err ? reject(err) : resolve()))));
        }
        from.uncork();
      }
      await Promise.all(written);
      expect(sha(await arrived)).toBe(sha(expected));
      to.removeAllListeners('data');
    }
    serverDuplex.on('error', () => {});
    client.destroy();
  });

  it('may be created before the handshake: writes wait for open, early messages are kept', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    servers.push(wss);
    await new Promise<void>((r) => wss.once('listening', () => r()));
    // The server speaks first, in the tick of the upgrade.
    wss.on('connection', (ws) => {
      ws.send(Buffer.from('hello from the server'));
      ws.on('message', (d) => ws.send(Buffer.concat([Buffer.from('echo:'), d as Buffer])));
    });
    const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    const duplex = websocketDuplex(ws);
    duplex.write(Buffer.from('early'));
    let text = '';
    await new Promise<void>((resolve) =>
      duplex.on('data', (c: Buffer) => {
        text += c.toString();
        if (text.includes('echo:early')) resolve();
      }),
    );
    expect(text).toBe('hello from the serverecho:early');
    duplex.destroy();
  });

  it('a handshake that fails destroys a duplex created before it', async () => {
    const ws = new WebSocket('ws://127.0.0.1:1');
    ws.on('error', () => {});
    const duplex = websocketDuplex(ws);
    const err = await once<Error & { code?: string }>(duplex, 'error');
    expect(err.code).toBe('ECONNREFUSED'); // the socket's own error, not a hang
    expect(duplex.destroyed).toBe(true);
  });

  it('end() closes the WebSocket normally after the queued data', async () => {
    const { client, server } = await pair();
    const got: Buffer[] = [];
    server.on('message', (d) => got.push(d as Buffer));
    const closed = new Promise<number>((r) => server.once('close', (code) => r(code)));
    client.write(Buffer.from('last words'));
    client.end();
    expect(await closed).toBe(1000);
    expect(Buffer.concat(got).toString()).toBe('last words');
  });

  it('a normal close by the peer ends the readable side', async () => {
    const { client, server } = await pair();
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(client, 'end');
    const closed = once(client, 'close');
    server.send(Buffer.from('bye'));
    server.close(1000);
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('bye');
    await closed;
  });

  it('an abrupt close by the peer destroys the duplex with an error, even with nobody reading', async () => {
    const { client, server } = await pair();
    const error = once<Error & { code?: string }>(client, 'error');
    server.terminate();
    const err = await error;
    expect(err.code).toBe('ERR_WS_CLOSED');
    expect(client.destroyed).toBe(true);
  });

  it('a close with an application code is an error carrying that code', async () => {
    const { client, server } = await pair();
    const error = once<Error & { code?: string; closeCode?: number }>(client, 'error');
    server.close(4001, 'token revoked');
    const err = await error;
    expect(err.closeCode).toBe(4001);
    expect(err.message).toMatch(/token revoked/);
  });

  it('destroy() closes the WebSocket; destroy(err) terminates it', async () => {
    const a = await pair();
    const closedA = new Promise<number>((r) => a.server.once('close', (code) => r(code)));
    a.client.destroy();
    expect(await closedA).toBe(1000);

    const b = await pair();
    const closedB = new Promise<number>((r) => b.server.once('close', (code) => r(code)));
    b.client.on('error', () => {});
    b.client.destroy(new Error('boom'));
    expect(await closedB).toBe(1006);
  });

  it('writes fail once the socket is gone instead of hanging', async () => {
    const { client, server } = await pair();
    client.on('error', () => {});
    server.terminate();
    await once(client, 'close');
    const err = await new Promise<Error | null | undefined>((r) => client.write(Buffer.from('x'), r));
    expect(err).toBeTruthy();
  });

  it('bufferedAmount back-pressures the writer when the peer does not read', async () => {
    const { client, clientWs, server } = await pair();
    // The server stops reading from its TCP socket: bytes pile up in kernel buffers, then in ws.
    (server as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const chunk = Buffer.alloc(64 * 1024);
    let accepted = 0;
    const deadline = Date.now() + 10_000;
    // Write while the duplex accepts; it must stop accepting at a bounded amount.
    while (Date.now() < deadline) {
      const ok = client.write(chunk);
      accepted += chunk.length;
      if (!ok) {
        const drained = await Promise.race([
          once(client, 'drain').then(() => true),
          new Promise((r) => setTimeout(() => r(false), 300)),
        ]);
        if (!drained) break;
      }
    }
    // Kernel socket buffers (a few MB on loopback) + ws buffer (1 MiB) + duplex buffer (1 MiB).
    expect(accepted).toBeLessThan(64 * 1024 * 1024);
    expect(clientWs.bufferedAmount).toBeLessThan(64 * 1024 * 1024);
    // Resume: everything written arrives.
    let got = 0;
    const all = new Promise<void>((resolve) =>
      server.on('message', (d) => {
        got += (d as Buffer).length;
        if (got === accepted) resolve();
      }),
    );
    (server as unknown as { _socket: import('node:net').Socket })._socket.resume();
    await all;
    expect(got).toBe(accepted);
    client.destroy();
  });

  it('a reader that does not read pauses the socket', async () => {
    const { client, clientWs, server } = await pair();
    const chunk = Buffer.alloc(256 * 1024);
    for (let i = 0; i < 40; i++) server.send(chunk);
    await new Promise((r) => setTimeout(r, 300));
    expect(clientWs.isPaused).toBe(true);
    expect(client.readableLength).toBeLessThan(4 * 1024 * 1024);
    let got = 0;
    await new Promise<void>((resolve) =>
      client.on('data', (c: Buffer) => {
        got += c.length;
        if (got === 40 * chunk.length) resolve();
      }),
    );
    client.destroy();
  });
});
