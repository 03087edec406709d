// Mux benchmark (`npm run bench -- mux`): throughput and peak RSS on loopback for raw TCP,
// raw WebSocket, our mux over WebSocket (1 stream; 100 concurrent echo streams) and
// @libp2p/yamux over the same WebSocket adapter. Every byte is hashed (sha256) at both ends
// and the digests must match.
//
// Fairness: each measurement runs in two fresh processes, a server (WebSocket/TCP server,
// the mux server side) and a client (dials, opens the streams), so each end has its own
// event loop like the relay and the agent, and peak RSS is per process and per row.
// "up" = client -> server, "down" = server -> client, "echo" = 100 streams each sending
// their share to the server, which echoes it back; echo MiB/s is per direction.
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Session } from '@g2c/mux';
import { websocketDuplex } from '@g2c/tunnel';
import WebSocket, { WebSocketServer } from 'ws';
import { libp2pMuxer, type YamuxMuxer } from './mux-peers.js';

type Transport = 'tcp' | 'ws' | 'wsduplex' | 'mux' | 'libp2p';
type Direction = 'up' | 'down' | 'echo';

interface Scenario {
  transport: Transport;
  direction: Direction;
  /** Bytes per direction in total (split over the streams for echo). */
  bytes: number;
  streams: number;
}

interface Report {
  /** Digests of what this process sent and received, per stream. */
  sent: string[];
  received: string[];
  seconds: number;
  peakRss: number;
}

const MiB = 1024 * 1024;
/** Extra mux options for experiments, e.g. MUX_BENCH_CONFIG='{"maxFrameSize":262144}'. */
const extraConfig = JSON.parse(process.env.MUX_BENCH_CONFIG ?? '{}') as Record<string, number>;
const CHUNK = 64 * 1024;
const ROLE_FLAG = '--mux-bench-role';

// ---------------------------------------------------------------- endpoints

/** One byte pipe of any kind, with back-pressure, as both ends of a measurement see it. */
interface Pipe {
  write(chunk: Buffer): Promise<void> | undefined;
  end(): Promise<void> | undefined;
  /** Calls `onChunk` for every chunk received, resolves at the peer's end of stream. */
  read(onChunk: (chunk: Buffer) => void): Promise<void>;
  /** Stop / restart delivering chunks (the echo server's back-pressure). */
  pause(): void;
  resume(): void;
}

function duplexPipe(d: Duplex): Pipe {
  return {
    write: (chunk) => (d.write(chunk) ? undefined : once(d, 'drain').then(() => undefined)),
    end: () => void d.end(),
    read: (onChunk) =>
      new Promise((resolve, reject) => {
        d.on('data', onChunk);
        d.once('end', resolve);
        d.once('error', reject);
      }),
    pause: () => void d.pause(),
    resume: () => void d.resume(),
  };
}

/** Raw ws: one binary message per chunk; waits while more than 1 MiB is buffered. */
function websocketPipe(ws: WebSocket): Pipe {
  return {
    write: (chunk) => {
      if (ws.bufferedAmount < MiB) {
        ws.send(chunk);
        return undefined;
      }
      return new Promise((resolve, reject) => ws.send(chunk, (err) => (err ? reject(err) : resolve())));
    },
    end: () => {
      ws.close(1000);
      return undefined;
    },
    read: (onChunk) =>
      new Promise((resolve) => {
        ws.on('message', (data: Buffer) => onChunk(data));
        ws.once('close', () => resolve());
      }),
    pause: () => ws.pause(),
    resume: () => ws.resume(),
  };
}

type Libp2pStream = Awaited<ReturnType<YamuxMuxer['createStream']>>;

function libp2pPipe(stream: Libp2pStream): Pipe {
  return {
    write: (chunk) => (stream.send(chunk) ? undefined : stream.onDrain()),
    end: () => stream.close(),
    read: async (onChunk) => {
      for await (const chunk of stream) onChunk(Buffer.from(chunk.subarray()));
    },
    pause: () => stream.pause(),
    resume: () => stream.resume(),
  };
}

async function sendBytes(pipe: Pipe, bytes: number, source: Buffer, hash: ReturnType<typeof createHash>) {
  for (let sent = 0, at = 0; sent < bytes; sent += CHUNK) {
    if (at + CHUNK > source.length) at = (at + 4099) % (source.length - CHUNK);
    const chunk = source.subarray(at, at + Math.min(CHUNK, bytes - sent));
    at += CHUNK;
    hash.update(chunk);
    const wait = pipe.write(chunk);
    if (wait) await wait;
  }
  await pipe.end();
}

async function receiveBytes(pipe: Pipe, hash: ReturnType<typeof createHash>): Promise<number> {
  let n = 0;
  await pipe.read((chunk) => {
    hash.update(chunk);
    n += chunk.length;
  });
  return n;
}

// ---------------------------------------------------------------- the two roles

/** Sends and/or receives over one pipe as the direction says, hashing both ways. The side
 *  that only receives ends its pipe once it has everything, so the sender's clock (which
 *  stops at the peer's end) includes the delivery of the last byte. */
async function exchange(pipe: Pipe, sends: boolean, receives: boolean, bytes: number, source: Buffer, echo: boolean) {
  const sentHash = createHash('sha256');
  const receivedHash = createHash('sha256');
  if (echo) {
    // echo server: hash what arrives and send it back, pausing while the pipe is full
    let waiting = 0;
    await pipe.read((chunk) => {
      receivedHash.update(chunk);
      sentHash.update(chunk);
      const wait = pipe.write(chunk);
      if (wait) {
        if (waiting++ === 0) pipe.pause();
        void wait.then(() => {
          if (--waiting === 0) pipe.resume();
        });
      }
    });
    await pipe.end();
  } else if (sends && receives) {
    await Promise.all([sendBytes(pipe, bytes, source, sentHash), receiveBytes(pipe, receivedHash)]);
  } else if (sends) {
    await Promise.all([sendBytes(pipe, bytes, source, sentHash), pipe.read(() => {})]);
  } else {
    await receiveBytes(pipe, receivedHash);
    await pipe.end();
  }
  return { sent: sentHash.digest('hex'), received: receivedHash.digest('hex') };
}

function rssSampler() {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 25);
  return () => {
    clearInterval(timer);
    return Math.max(peak, process.memoryUsage.rss());
  };
}

async function serverRole(scenario: Scenario): Promise<void> {
  const source = randomBytes(16 * MiB);
  const { transport, direction } = scenario;
  const perStream = scenario.bytes / scenario.streams;
  const sends = direction === 'down';
  const receives = direction === 'up';
  const echo = direction === 'echo';
  const started = performance.now();
  let stopRss = rssSampler();

  const results: { sent: string; received: string }[] = [];
  const serve = async (pipes: AsyncIterable<Pipe> | Pipe[]) => {
    const work: Promise<void>[] = [];
    for await (const pipe of pipes) {
      work.push(exchange(pipe, sends, receives, perStream, source, echo).then((r) => void results.push(r)));
      if (work.length === scenario.streams) break;
    }
    await Promise.all(work);
  };

  const ready = (port: number) => process.send!({ port });
  let finished: Promise<void>;
  if (transport === 'tcp') {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    ready((server.address() as { port: number }).port);
    const [socket] = (await once(server, 'connection')) as [Socket];
    stopRss = rssSampler();
    finished = serve([duplexPipe(socket)]).then(() => void server.close());
  } else {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * MiB });
    await once(wss, 'listening');
    ready((wss.address() as { port: number }).port);
    const [ws] = (await once(wss, 'connection')) as [WebSocket];
    stopRss = rssSampler();
    if (transport === 'ws') {
      finished = serve([websocketPipe(ws)]);
    } else if (transport === 'wsduplex') {
      finished = serve([duplexPipe(websocketDuplex(ws))]);
    } else if (transport === 'mux') {
      const session = new Session(websocketDuplex(ws), { client: false, ...extraConfig });
      const streams = streamQueue<Pipe>();
      session.on('stream', (s) => streams.push(duplexPipe(s)));
      finished = serve(streams.iterate());
    } else {
      const muxer = await libp2pMuxer(websocketDuplex(ws), 'inbound');
      const streams = streamQueue<Pipe>();
      muxer.addEventListener('stream', (evt) => streams.push(libp2pPipe(evt.detail)));
      finished = serve(streams.iterate());
    }
    finished = finished.then(() => wss.close()); // no wait: the client may keep its socket
  }
  await finished;
  const report: Report = {
    sent: results.map((r) => r.sent),
    received: results.map((r) => r.received),
    seconds: (performance.now() - started) / 1000,
    peakRss: stopRss(),
  };
  process.send!({ report });
}

async function clientRole(scenario: Scenario, port: number): Promise<void> {
  const source = randomBytes(16 * MiB);
  const { transport, direction } = scenario;
  const perStream = scenario.bytes / scenario.streams;
  const sends = direction !== 'down';
  const receives = direction !== 'up';
  let pipes: Pipe[];
  let teardown: () => Promise<void> | void = () => {};
  if (transport === 'tcp') {
    const socket = tcpConnect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.setNoDelay(true);
    pipes = [duplexPipe(socket)];
  } else {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload: 64 * MiB });
    await once(ws, 'open');
    if (transport === 'ws') {
      pipes = [websocketPipe(ws)];
    } else if (transport === 'wsduplex') {
      pipes = [duplexPipe(websocketDuplex(ws))];
    } else if (transport === 'mux') {
      const session = new Session(websocketDuplex(ws), { client: true, ...extraConfig });
      pipes = Array.from({ length: scenario.streams }, () => duplexPipe(session.open()));
      teardown = () => session.close();
    } else {
      const muxer = await libp2pMuxer(websocketDuplex(ws), 'outbound');
      pipes = await Promise.all(
        Array.from({ length: scenario.streams }, async () => libp2pPipe(await muxer.createStream())),
      );
      teardown = () => muxer.abort(new Error('benchmark over'));
    }
  }
  const stopRss = rssSampler();
  const started = performance.now();
  const results = await Promise.all(pipes.map((p) => exchange(p, sends, receives, perStream, source, false)));
  const seconds = (performance.now() - started) / 1000;
  await teardown();
  const report: Report = {
    sent: results.map((r) => r.sent),
    received: results.map((r) => r.received),
    seconds,
    peakRss: stopRss(),
  };
  process.send!({ report });
}

/** Streams accepted by a server, as an async iterable. */
function streamQueue<T>() {
  const items: T[] = [];
  let wake: (() => void) | undefined;
  return {
    push(item: T) {
      items.push(item);
      wake?.();
    },
    async *iterate(): AsyncIterable<T> {
      for (;;) {
        while (items.length > 0) yield items.shift()!;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

// ---------------------------------------------------------------- the parent

const thisFile = fileURLToPath(import.meta.url);

function child(role: 'server' | 'client', scenario: Scenario, port?: number) {
  const proc = fork(thisFile, [ROLE_FLAG, role, JSON.stringify(scenario), String(port ?? 0)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const message = <K extends 'port' | 'report'>(key: K) =>
    new Promise<K extends 'port' ? number : Report>((resolve, reject) => {
      proc.on('message', (m: Record<string, unknown>) => {
        if (key in m) resolve(m[key] as K extends 'port' ? number : Report);
      });
      proc.once('exit', (code) => reject(new Error(`${role} of ${JSON.stringify(scenario)} exited with ${code}`)));
    });
  return { proc, message };
}

interface Measured {
  mibPerSecond: number;
  clientRss: number;
  serverRss: number;
}

async function measure(scenario: Scenario): Promise<Measured> {
  const server = child('server', scenario);
  let client: ReturnType<typeof child> | undefined;
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('no result within 180 s')), 180_000).unref(),
  );
  let c: Report;
  let s: Report;
  try {
    const port = await Promise.race([server.message('port'), timeout]);
    const serverReport = server.message('report');
    client = child('client', scenario, port);
    [c, s] = await Promise.race([Promise.all([client.message('report'), serverReport]), timeout]);
  } finally {
    client?.proc.kill();
    server.proc.kill();
  }
  // every stream's bytes arrived intact: what one side sent, the other received
  const sorted = (xs: string[]) => [...xs].sort();
  const empty = createHash('sha256').digest('hex');
  const clientSent = sorted(c.sent).filter((d) => d !== empty);
  const serverReceived = sorted(s.received).filter((d) => d !== empty);
  const serverSent = sorted(s.sent).filter((d) => d !== empty);
  const clientReceived = sorted(c.received).filter((d) => d !== empty);
  if (JSON.stringify(clientSent) !== JSON.stringify(serverReceived)) {
    throw new Error(`sha256 mismatch client -> server in ${JSON.stringify(scenario)}`);
  }
  if (JSON.stringify(serverSent) !== JSON.stringify(clientReceived)) {
    throw new Error(`sha256 mismatch server -> client in ${JSON.stringify(scenario)}`);
  }
  const perDirection = scenario.bytes;
  return { mibPerSecond: perDirection / MiB / c.seconds, clientRss: c.peakRss / MiB, serverRss: s.peakRss / MiB };
}

export async function run(): Promise<void> {
  const single = Number(process.env.MUX_BENCH_MIB ?? 256) * MiB;
  const echo = Number(process.env.MUX_BENCH_ECHO_MIB ?? 200) * MiB;
  const repeat = Number(process.env.MUX_BENCH_RUNS ?? 3);
  const rows: { name: string; transport: Transport; streams: number }[] = [
    { name: 'raw TCP', transport: 'tcp', streams: 1 },
    { name: 'raw WebSocket', transport: 'ws', streams: 1 },
    { name: 'WebSocket as a Duplex (websocketDuplex, no mux)', transport: 'wsduplex', streams: 1 },
    { name: 'g2c mux over WebSocket, 1 stream', transport: 'mux', streams: 1 },
    { name: '@libp2p/yamux over WebSocket, 1 stream', transport: 'libp2p', streams: 1 },
    { name: 'g2c mux over WebSocket, 100 streams', transport: 'mux', streams: 100 },
    { name: '@libp2p/yamux over WebSocket, 100 streams', transport: 'libp2p', streams: 100 },
  ];
  console.log(
    `loopback, sha256 at both ends; each measurement in 2 fresh processes, median of ${repeat}; ` +
      `${single / MiB} MiB per direction (1 stream), ${echo / MiB} MiB each way in echo; ratios vs raw WebSocket`,
  );
  const results: Record<string, Partial<Record<Direction, Measured>>> = {};
  const failed = new Set<string>();
  for (const row of rows) {
    const directions: Direction[] = row.streams === 1 ? ['up', 'down'] : ['echo'];
    if (row.transport !== 'tcp' && row.streams === 1) directions.push('echo');
    results[row.name] = {};
    for (const direction of directions) {
      const bytes = direction === 'echo' ? echo : single;
      try {
        // the median of several runs: the figures of a shared machine are noisy
        const runs: Measured[] = [];
        for (let i = 0; i < repeat; i++) {
          runs.push(await measure({ transport: row.transport, direction, bytes, streams: row.streams }));
        }
        runs.sort((a, b) => a.mibPerSecond - b.mibPerSecond);
        results[row.name]![direction] = runs[Math.floor(runs.length / 2)]!;
      } catch (err) {
        failed.add(`${row.name}/${direction}`);
        console.log(`  ${row.name} ${direction}: failed: ${(err as Error).message}`);
      }
    }
  }
  const raw = results['raw WebSocket']!;
  const cell = (name: string, direction: Direction, base: Measured | undefined) => {
    const m = results[name]![direction];
    if (failed.has(`${name}/${direction}`)) return 'failed';
    if (!m) return '-';
    const ratio = base ? ` (${(m.mibPerSecond / base.mibPerSecond).toFixed(2)}x)` : '';
    return `${m.mibPerSecond.toFixed(0)} MiB/s${ratio}`;
  };
  const rssOf = (r: Partial<Record<Direction, Measured>>) => {
    const all = Object.values(r);
    if (all.length === 0) return '-';
    return `${Math.max(...all.map((m) => m.clientRss)).toFixed(0)} / ${Math.max(...all.map((m) => m.serverRss)).toFixed(0)} MiB`;
  };
  console.log('');
  console.log('| transport | up | down | echo, each way | peak RSS client / server |');
  console.log('|---|---|---|---|---|');
  for (const row of rows) {
    const r = results[row.name]!;
    console.log(
      `| ${row.name} | ${cell(row.name, 'up', raw.up)} | ${cell(row.name, 'down', raw.down)} | ${cell(row.name, 'echo', raw.echo)} | ${rssOf(r)} |`,
    );
  }
}

// ---------------------------------------------------------------- child entry

const roleAt = process.argv.indexOf(ROLE_FLAG);
if (roleAt !== -1) {
  process.on('disconnect', () => process.exit(1)); // the parent went away
  const role = process.argv[roleAt + 1];
  const scenario = JSON.parse(process.argv[roleAt + 2]!) as Scenario;
  const port = Number(process.argv[roleAt + 3]);
  const main = role === 'server' ? serverRole(scenario) : clientRole(scenario, port);
  main.then(
    () => {},
    (err) => {
      console.error(`mux bench ${role}:`, err);
      process.exit(1);
    },
  );
}
