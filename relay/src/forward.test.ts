import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { bridgeWebSocket, forwardUrl, maskingUseless, readSecretsFile } from './forward.js';

describe('forward client', () => {
  it('maps the relay base URL to the forward endpoint, keeping a path prefix', () => {
    const to = { host: 'db.internal', port: 5432 };
    expect(forwardUrl('http://relay:8080', 'plant', to).href).toBe(
      'ws://relay:8080/elements/api-v2/tunnels/plant/forward?host=db.internal&port=5432',
    );
    expect(forwardUrl('https://example.com/g2c/', 'a b', to).href).toBe(
      'wss://example.com/g2c/elements/api-v2/tunnels/a%20b/forward?host=db.internal&port=5432',
    );
    expect(forwardUrl('wss://example.com', 't', { host: '::1', port: 1 }).searchParams.get('host')).toBe('::1');
  });

  it('masks WebSocket frames only where a plaintext intermediary could exist', () => {
    expect(maskingUseless(new URL('wss://relay.example.com'))).toBe(true);
    expect(maskingUseless(new URL('ws://127.0.0.1:8080'))).toBe(true);
    expect(maskingUseless(new URL('ws://[::1]:8080'))).toBe(true);
    expect(maskingUseless(new URL('ws://relay.example.com'))).toBe(false);
    expect(maskingUseless(new URL('ws://10.0.0.5'))).toBe(false);
  });

  it('reads the credentials.json format and names a bad file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'g2c-fwd-'));
    try {
      const good = join(dir, 'good.json');
      await writeFile(good, JSON.stringify({ organizationSecret: 'o', userSecret: 'u' }));
      expect(await readSecretsFile(good)).toEqual({ organizationSecret: 'o', userSecret: 'u' });
      const bad = join(dir, 'bad.json');
      await writeFile(bad, '{"user": 1}');
      await expect(readSecretsFile(bad)).rejects.toThrow(/bad\.json must hold/);
      await expect(readSecretsFile(join(dir, 'none.json'))).rejects.toThrow(/cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// The bridge under test: TCP socket `near` <-> bridge <-> WebSocket `ws` <-> raw WebSocket
// `server`; the test plays the TCP client on `far` and the relay on `server`.
interface Rig {
  far: Socket;
  near: Socket;
  ws: WebSocket;
  server: WebSocket;
  done: Promise<Error | undefined>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(): Promise<Rig> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  cleanups.push(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  });
  const tcp = createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  const nearP = new Promise<Socket>((r) => tcp.once('connection', r));
  const far = tcpConnect((tcp.address() as AddressInfo).port, '127.0.0.1');
  const near = await nearP;
  cleanups.push(async () => {
    far.destroy();
    near.destroy();
    await new Promise((r) => tcp.close(r));
  });
  const serverP = new Promise<WebSocket>((r) => wss.once('connection', r));
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false });
  // (A promise resolved with a promise adopts it: hand `done` out in an object.)
  const { done } = await new Promise<{ done: Promise<Error | undefined> }>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => resolve({ done: new Promise((r) => bridgeWebSocket(ws, near, r)) }));
  });
  return { far, near, ws, server: await serverP, done };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('bridgeWebSocket', () => {
  it('carries bytes both ways; a FIN closes the WebSocket with 1000, and its close ends the socket', async () => {
    const { far, server, done } = await rig();
    const toServer: Buffer[] = [];
    server.on('message', (m: Buffer) => toServer.push(m));
    const serverClosed = new Promise<number>((r) => server.once('close', r));
    const fromServer: Buffer[] = [];
    let received = 0;
    const down = randomBytes(200_000);
    const allDown = new Promise<void>((resolve) =>
      far.on('data', (c: Buffer) => {
        fromServer.push(c);
        received += c.length;
        if (received === down.length) resolve();
      }),
    );
    const farEnded = new Promise((r) => far.once('end', r));
    server.send(down);
    await allDown;
    const up = randomBytes(300_000);
    far.end(up);
    expect(await serverClosed).toBe(1000);
    await farEnded;
    expect(sha(Buffer.concat(toServer))).toBe(sha(up));
    expect(sha(Buffer.concat(fromServer))).toBe(sha(down));
    expect(await done).toBeUndefined();
  });

  it('a close 1000 from the relay ends the socket (FIN), and the socket ends the WebSocket', async () => {
    const { far, server, done } = await rig();
    const farEnded = new Promise((r) => far.once('end', r));
    server.close(1000);
    await farEnded;
    far.end();
    expect(await done).toBeUndefined();
  });

  it('an abrupt WebSocket loss cuts the socket, with the error', async () => {
    const { far, server, done } = await rig();
    const farClosed = new Promise((r) => far.once('close', r));
    far.on('error', () => {});
    server.terminate();
    await farClosed;
    expect((await done)?.message).toMatch(/1006/);
  });

  it('a socket reset terminates the WebSocket (the relay sees 1006)', async () => {
    const { far, near, server, done } = await rig();
    const code = new Promise<number>((r) => server.once('close', r));
    near.on('error', () => {});
    near.emit('error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    expect(await code).toBe(1006);
    expect((await done)?.message).toMatch(/ECONNRESET/);
    far.destroy();
  });

  it('back-pressure: a client that does not read stops the WebSocket; everything arrives once it reads', async () => {
    const { far, near, server } = await rig();
    far.pause();
    const data = randomBytes(16 * 1024 * 1024);
    for (let at = 0; at < data.length; at += 64 * 1024) server.send(data.subarray(at, at + 64 * 1024));
    await sleep(1000);
    // Without back-pressure the whole 16 MiB would sit in `near`'s write queue.
    expect(near.writableLength).toBeLessThan(4 * 1024 * 1024);
    expect(server.bufferedAmount).toBeGreaterThan(4 * 1024 * 1024);
    const received: Buffer[] = [];
    let n = 0;
    const all = new Promise<void>((resolve) =>
      far.on('data', (c: Buffer) => {
        received.push(c);
        n += c.length;
        if (n >= data.length) resolve();
      }),
    );
    far.resume();
    await all;
    expect(sha(Buffer.concat(received))).toBe(sha(data));
  });

  it('back-pressure: a relay that does not read pauses the socket; everything arrives once it reads', async () => {
    const { far, ws, server } = await rig();
    server.pause();
    const data = randomBytes(16 * 1024 * 1024);
    far.write(data);
    await sleep(1000);
    // Without back-pressure the whole 16 MiB would be queued in the WebSocket.
    expect(ws.bufferedAmount).toBeLessThan(4 * 1024 * 1024);
    expect(far.writableLength).toBeGreaterThan(4 * 1024 * 1024);
    const received: Buffer[] = [];
    let n = 0;
    const all = new Promise<void>((resolve) =>
      server.on('message', (m: Buffer) => {
        received.push(m);
        n += m.length;
        if (n >= data.length) resolve();
      }),
    );
    server.resume();
    await all;
    expect(sha(Buffer.concat(received))).toBe(sha(data));
  });
});
