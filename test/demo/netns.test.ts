// test/helpers/netns.ts does what the firewall end-to-end test relies on: a namespace with its
// own interfaces, processes running inside it, a link that goes silent and comes back, a
// firewall that drops inbound connections, and nothing left behind.
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNetns, type Netns, netnsSkipReason } from '../helpers/netns.js';
import { type RunningProcess, startProcess } from '../helpers/processes.js';

const skip = netnsSkipReason();
if (skip) console.warn(`netns helper tests skipped: ${skip}`);

/** Connects, reads one line; 'timeout' when nothing answers in `ms` (a dropped packet). */
function probe(host: string, port: number, ms = 800): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (what: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(what);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    socket.setEncoding('utf8');
    socket.once('data', (line: string) => done(line.trim()));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? 'error'));
  });
}

/** A line server inside the namespace: it answers each connection with the name of its peer. */
const echoServer = (host: string, port: number) => [
  '-e',
  `require('net').createServer((s) => s.end('hello ' + s.remoteAddress + '\\n'))` +
    `.listen(${port}, '${host}', () => console.log('listening'))`,
];

const hostLinks = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe.skipIf(skip)('network namespace helper', () => {
  let ns: Netns | undefined;
  let server: RunningProcess | undefined;
  afterEach(async () => {
    await server?.stop();
    await ns?.destroy();
    server = undefined;
    ns = undefined;
  });

  it('creates a namespace joined by a veth pair and runs processes inside it', async () => {
    ns = await createNetns();
    expect(namespaces()).toContain(ns.name);
    expect(hostLinks()).toContain(ns.hostInterface);
    // Inside, only its loopback and its end of the pair exist.
    const { stdout } = await ns.exec('ip', ['-o', 'link', 'show']);
    const inside = stdout
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1]!.trim().split('@')[0]);
    expect(inside.sort()).toEqual([ns.nsInterface, 'lo'].sort());

    server = await startProcess('echo', ...ns.wrap(process.execPath, echoServer('0.0.0.0', 7001)), {
      ready: /listening/,
    });
    expect(await probe(ns.nsAddress, 7001)).toBe(`hello ${ns.hostAddress}`);
  });

  it('takes the link down silently and brings it back with the same server', async () => {
    ns = await createNetns();
    server = await startProcess('echo', ...ns.wrap(process.execPath, echoServer(ns.nsAddress, 7002)), {
      ready: /listening/,
    });
    expect(await probe(ns.nsAddress, 7002)).toMatch(/^hello/);
    await ns.setLink(false);
    // No RST, no ICMP: a connection attempt just hears nothing.
    expect(await probe(ns.nsAddress, 7002)).toBe('timeout');
    await ns.setLink(true);
    expect(await probe(ns.nsAddress, 7002, 3000)).toMatch(/^hello/);
    expect(server.lines.filter((l) => l === 'listening')).toHaveLength(1);
  });

  it('with the firewall, drops inbound connections while outbound ones still work', async () => {
    ns = await createNetns({ firewall: true });
    server = await startProcess('echo', ...ns.wrap(process.execPath, echoServer('0.0.0.0', 5432)), {
      ready: /listening/,
    });
    // From outside: dropped, as by a firewall (a timeout, not a refusal).
    expect(await probe(ns.nsAddress, 5432)).toBe('timeout');
    // Inside, the same server answers on either address.
    const inside = async (host: string) =>
      (
        await ns!.exec(process.execPath, [
          '-e',
          `require('net').connect(5432, '${host}').on('data', (d) => { process.stdout.write(d); process.exit(0); })`,
        ])
      ).stdout.trim();
    expect(await inside('127.0.0.1')).toBe('hello 127.0.0.1');
    expect(await inside(ns.nsAddress)).toBe(`hello ${ns.nsAddress}`);
    // Outbound: a process inside reaches a server in the root namespace (on the pair's address).
    const { createServer } = await import('node:net');
    const outside = createServer((s) => s.end('from root\n'));
    await new Promise<void>((r) => outside.listen(0, ns!.hostAddress, r));
    try {
      const port = (outside.address() as { port: number }).port;
      const { stdout } = await ns.exec(process.execPath, [
        '-e',
        `require('net').connect(${port}, '${ns.hostAddress}').on('data', (d) => { process.stdout.write(d); process.exit(0); })`,
      ]);
      expect(stdout.trim()).toBe('from root');
    } finally {
      outside.close();
    }
  });

  it('leaves nothing behind, even processes still running inside', async () => {
    const own = await createNetns();
    ns = own;
    server = await startProcess('echo', ...own.wrap(process.execPath, echoServer('0.0.0.0', 7003)), {
      ready: /listening/,
    });
    await own.destroy();
    expect(await server.exited).toBeDefined();
    expect(namespaces()).not.toContain(own.name);
    expect(hostLinks()).not.toContain(own.hostInterface);
    await own.destroy(); // twice is harmless
  });

  it('removes the namespaces of a test run that was killed', async () => {
    // A run killed with SIGKILL cannot clean up; its namespace names carry its pid.
    const helper = new URL('../dist/helpers/netns.js', import.meta.url).href;
    const killed = await startProcess(
      'killed-run',
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { createNetns } = await import(${JSON.stringify(helper)});
         const ns = await createNetns();
         console.log('created ' + ns.name + ' ' + ns.hostInterface);
         setInterval(() => {}, 1000);`,
      ],
      { ready: /^created / },
    );
    const [, name, hostInterface] = (await killed.waitForLine(/^created /)).split(' ');
    killed.signal('SIGKILL');
    await killed.exited;
    expect(namespaces()).toContain(name);
    expect(hostLinks()).toContain(`${hostInterface}@`);
    ns = await createNetns();
    expect(namespaces()).not.toContain(name);
    expect(hostLinks()).not.toContain(`${hostInterface}@`);
  });
});
