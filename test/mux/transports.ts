// The byte streams mux sessions run over in the tests: an in-memory pair, TCP on loopback
// and a real `ws` WebSocket on loopback (through @g2c/tunnel's websocketDuplex). Each link
// can be routed through a gate that, once shut, swallows every byte in both directions
// without closing anything: a black-holed connection.
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { type Duplex, Transform } from 'node:stream';
import { duplexPair } from '@g2c/mux';
import { websocketDuplex } from '@g2c/tunnel';
import WebSocket, { WebSocketServer } from 'ws';

export interface Link {
  /** The dialling side (TCP connector, WebSocket client). */
  a: Duplex;
  /** The accepting side. */
  b: Duplex;
  /** Swallow every byte from now on, both directions; nothing is closed. */
  blackhole(): void;
  close(): Promise<void>;
}

export interface Transport {
  name: string;
  connect(options?: { gated?: boolean }): Promise<Link>;
}

class Gate extends Transform {
  shut = false;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    if (!this.shut) this.push(chunk);
    callback();
  }
}

function shutAll(gates: Gate[]): void {
  for (const gate of gates) gate.shut = true;
}

function destroyAll(streams: Duplex[]): void {
  for (const stream of streams) stream.destroy();
}

/** from -> gate -> to; a shut gate swallows the end of the stream too (a real black hole). */
function through(from: Duplex, gate: Gate, to: Duplex): void {
  from.pipe(gate).pipe(to, { end: false });
  gate.on('end', () => {
    if (!gate.shut) to.end();
  });
}

export const memoryTransport: Transport = {
  name: 'in-memory pair',
  async connect(options = {}) {
    if (!options.gated) {
      const [a, b] = duplexPair();
      return { a, b, blackhole: () => {}, close: async () => destroyAll([a, b]) };
    }
    const [a, x] = duplexPair();
    const [y, b] = duplexPair();
    const gates = [new Gate(), new Gate()];
    through(x, gates[0]!, y);
    through(y, gates[1]!, x);
    return {
      a,
      b,
      blackhole: () => shutAll(gates),
      close: async () => destroyAll([a, b, x, y, ...gates]),
    };
  },
};

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/** A TCP proxy on loopback whose gates can black-hole the connection. */
async function gatedProxy(targetPort: number) {
  const sockets: Socket[] = [];
  const gates: Gate[] = [];
  const server = createServer((inbound) => {
    const outbound = tcpConnect(targetPort, '127.0.0.1');
    const up = new Gate();
    const down = new Gate();
    sockets.push(inbound, outbound);
    gates.push(up, down);
    for (const s of [inbound, outbound]) s.on('error', () => {});
    through(inbound, up, outbound);
    through(outbound, down, inbound);
  });
  const port = await listen(server);
  return {
    port,
    blackhole: () => shutAll(gates),
    close: async () => {
      destroyAll([...sockets, ...gates]);
      server.close();
    },
  };
}

export const tcpTransport: Transport = {
  name: 'TCP loopback',
  async connect(options = {}) {
    const server = createServer();
    const port = await listen(server);
    const proxy = options.gated ? await gatedProxy(port) : undefined;
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    const a = tcpConnect(proxy?.port ?? port, '127.0.0.1');
    await once(a, 'connect');
    const [b] = await accepted;
    a.setNoDelay(true);
    b.setNoDelay(true);
    return {
      a,
      b,
      blackhole: () => proxy?.blackhole(),
      close: async () => {
        a.destroy();
        b.destroy();
        await proxy?.close();
        server.close();
      },
    };
  },
};

export const websocketTransport: Transport = {
  name: 'ws WebSocket',
  async connect(options = {}) {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const port = (wss.address() as { port: number }).port;
    const proxy = options.gated ? await gatedProxy(port) : undefined;
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
    const client = new WebSocket(`ws://127.0.0.1:${proxy?.port ?? port}`);
    await once(client, 'open');
    const [serverSide] = await accepted;
    const a = websocketDuplex(client);
    const b = websocketDuplex(serverSide);
    return {
      a,
      b,
      blackhole: () => proxy?.blackhole(),
      close: async () => {
        a.destroy();
        b.destroy();
        client.terminate();
        serverSide.terminate();
        await proxy?.close();
        await new Promise((resolve) => wss.close(resolve));
      },
    };
  },
};
