import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { encodeOpenHeader, OpenHeaderReader } from '@g2c/tunnel';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Allowlist } from './allowlist.js';
import { serveStream } from './dialer.js';

// The tunnel stream is stood in for by a loopback TCP connection: `relay` is the relay's end,
// the other end is handed to serveStream as the agent's stream. FIN maps to FIN.
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

async function streamPair(): Promise<{ relay: Socket; agent: Socket }> {
  const server = createServer({ allowHalfOpen: true });
  const port = await listen(server);
  const accepted = once(server, 'connection');
  const relay = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const [agent] = (await accepted) as [Socket];
  cleanup.push(() => {
    relay.destroy();
    agent.destroy();
  });
  return { relay, agent };
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Reads the agent's reply header and whatever follows it until the relay end ends. */
async function readReply(relay: Socket): Promise<{ reply: unknown; rest: Promise<Buffer> }> {
  const reader = new OpenHeaderReader();
  const after: Buffer[] = [];
  let reply: unknown;
  let resolveHeader!: () => void;
  const header = new Promise<void>((r) => {
    resolveHeader = r;
  });
  const rest = new Promise<Buffer>((resolve, reject) => {
    relay.on('data', (chunk: Buffer) => {
      if (reply === undefined) {
        const out = reader.push(chunk);
        if (out) {
          reply = out.value;
          after.push(out.rest);
          resolveHeader();
        }
      } else after.push(chunk);
    });
    relay.on('end', () => resolve(Buffer.concat(after)));
    relay.on('error', reject);
  });
  await header;
  return { reply, rest };
}

const logger = pino({ level: 'silent' });

describe('serveStream', () => {
  it('refuses a target outside the allowlist with not_allowed, without dialing', async () => {
    let dialed = false;
    const target = createServer(() => {
      dialed = true;
    });
    const port = await listen(target);
    const { relay, agent } = await streamPair();
    void serveStream(agent, { allowlist: new Allowlist(['127.0.0.1:1']), dialTimeoutMs: 2000, logger });
    relay.write(encodeOpenHeader({ v: 1, host: '127.0.0.1', port }));
    const { reply, rest } = await readReply(relay);
    expect(reply).toMatchObject({ ok: false, code: 'not_allowed' });
    expect((reply as { message: string }).message).toMatch(/--allow 127\.0\.0\.1:\d+/);
    relay.end();
    expect((await rest).length).toBe(0);
    expect(dialed).toBe(false);
  });

  it('answers connect_refused for a port where nothing listens', async () => {
    const port = await freePort();
    const { relay, agent } = await streamPair();
    void serveStream(agent, { allowlist: new Allowlist(['127.0.0.1:*']), dialTimeoutMs: 2000, logger });
    relay.write(encodeOpenHeader({ v: 1, host: '127.0.0.1', port }));
    const { reply } = await readReply(relay);
    expect(reply).toMatchObject({ ok: false, code: 'connect_refused' });
  });

  it('answers dns_failed when the name does not resolve', async () => {
    const { relay, agent } = await streamPair();
    void serveStream(agent, {
      allowlist: new Allowlist(['db.invalid:5432']),
      dialTimeoutMs: 2000,
      logger,
      lookup: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND db.invalid'), { code: 'ENOTFOUND' });
      },
    });
    relay.write(encodeOpenHeader({ v: 1, host: 'db.invalid', port: 5432 }));
    const { reply } = await readReply(relay);
    expect(reply).toMatchObject({ ok: false, code: 'dns_failed' });
  });

  it('resolves names on the agent, tries each address, and splices bytes with half-close both ways', async () => {
    const target = createServer({ allowHalfOpen: true }, (socket) => {
      const got: Buffer[] = [];
      socket.on('data', (c: Buffer) => got.push(c));
      socket.on('end', () => {
        // The relay's FIN arrived as a TCP half-close; the target can still answer.
        socket.end(`echo:${Buffer.concat(got).toString()}`);
      });
    });
    const port = await listen(target);
    const { relay, agent } = await streamPair();
    const lookedUp: string[] = [];
    void serveStream(agent, {
      allowlist: new Allowlist([`db.internal:${port}`]),
      dialTimeoutMs: 2000,
      logger,
      lookup: async (host) => {
        lookedUp.push(host);
        return [
          { address: '127.0.0.1', family: 4 },
          { address: '127.0.0.1', family: 4 },
        ];
      },
    });
    // Header and first payload bytes in one write: nothing may be lost.
    relay.write(Buffer.concat([encodeOpenHeader({ v: 1, host: 'DB.internal', port }), Buffer.from('hello ')]));
    const { reply, rest } = await readReply(relay);
    expect(reply).toEqual({ ok: true });
    relay.end('world');
    expect((await rest).toString()).toBe('echo:hello world');
    expect(lookedUp).toEqual(['DB.internal']);
  });

  it('a target that resets the connection resets the stream', async () => {
    const target = createServer((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    const port = await listen(target);
    const { relay, agent } = await streamPair();
    void serveStream(agent, { allowlist: new Allowlist([`127.0.0.1:${port}`]), dialTimeoutMs: 2000, logger });
    relay.write(encodeOpenHeader({ v: 1, host: '127.0.0.1', port }));
    const { rest } = await readReply(relay);
    const closed = new Promise((r) => agent.once('close', r));
    relay.write('x');
    await closed;
    await rest.catch(() => {});
    expect(agent.destroyed).toBe(true);
  });

  it('a stream that goes away resets the target connection', async () => {
    let targetSide: Socket | undefined;
    const targetClosed = new Promise<string>((resolve) => {
      const target = createServer((socket) => {
        targetSide = socket;
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        socket.on('close', () => resolve('close'));
      });
      void listen(target).then((port) => portReady(port));
    });
    let portReady!: (p: number) => void;
    const port = await new Promise<number>((r) => {
      portReady = r;
    });
    const { relay, agent } = await streamPair();
    void serveStream(agent, { allowlist: new Allowlist([`127.0.0.1:${port}`]), dialTimeoutMs: 2000, logger });
    relay.write(encodeOpenHeader({ v: 1, host: '127.0.0.1', port }));
    await readReply(relay);
    agent.destroy(new Error('stream reset'));
    expect(await targetClosed).toBe('ECONNRESET');
    expect(targetSide).toBeDefined();
  });

  it('resets a stream whose header is malformed', async () => {
    const { relay, agent } = await streamPair();
    void serveStream(agent, { allowlist: new Allowlist(['127.0.0.1:1']), dialTimeoutMs: 2000, logger });
    const closed = new Promise((r) => agent.once('close', r));
    relay.on('error', () => {});
    relay.write(Buffer.from([0xff, 0xff]));
    await closed;
  });
});
