// A private network for one test: a Linux network namespace joined to the root namespace by a
// veth pair with a /30 of 10.213.0.0/16 (addresses used only inside this machine), the means
// to run processes inside it, to cut the link silently (no FIN, no RST), and an optional
// firewall that drops every inbound TCP connection to the namespace's service ports, as the
// firewall in front of a private database does. Everything is torn down by destroy(), on
// process exit, and (for namespaces of runs that were killed) by the next run.
//
//   const reason = netnsSkipReason();             // root and `ip` are needed
//   const ns = await createNetns({ firewall: true });
//   const pg = await startProcess('pg', ...ns.wrap('/path/postgres', ['-D', dir]));
//   await ns.setLink(false);                      // black-hole the link
//   await ns.destroy();
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PREFIX = 'g2ct';
/** 10.213.0.0/16 split into /30s: 16384 slots. */
const SLOTS = 16384;

/** Why namespaces cannot be used here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root, as CI does)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return '`ip` (iproute2) is not installed: apt-get install iproute2';
  }
  return undefined;
}

export interface Netns {
  /** The namespace's name (`ip netns exec <name> ...`). */
  name: string;
  /** The veth end in the root namespace and its address. */
  hostInterface: string;
  hostAddress: string;
  /** The veth end inside the namespace and its address. */
  nsInterface: string;
  nsAddress: string;
  /** `[command, args]` that run `command args` inside the namespace; spread into startProcess. */
  wrap(command: string, args: string[]): [string, string[]];
  /** Runs a command inside the namespace to completion; rejects when it exits non-zero. */
  exec(command: string, args: string[]): Promise<{ stdout: string; stderr: string }>;
  /** Takes the link down or up. Down drops packets silently (no FIN, no RST); nothing restarts. */
  setLink(up: boolean): Promise<void>;
  /** Kills what still runs inside, deletes the namespace and the veth pair. Safe to call twice. */
  destroy(): Promise<void>;
}

export interface NetnsOptions {
  /**
   * Drop (not refuse) every TCP connection arriving over the veth for a port below the
   * namespace's ephemeral range: nothing inside can be reached from outside, while
   * connections made from inside (whose replies come back to ephemeral ports) still work.
   */
  firewall?: boolean;
}

const created = new Map<string, Netns>();
let counter = 0;

// A test runner that exits without running its afterAll still removes its namespaces.
process.once('exit', () => {
  for (const ns of created.values()) destroySync(ns);
});

export async function createNetns(options: NetnsOptions = {}): Promise<Netns> {
  const reason = netnsSkipReason();
  if (reason) throw new Error(reason);
  await removeStale();
  const id = `${process.pid.toString(36)}n${counter++}`;
  const slot = await freeSlot();
  const base = `10.213.${Math.floor(slot / 64)}.${(slot % 64) * 4}`;
  const [a, b, c, d] = base.split('.').map(Number) as [number, number, number, number];
  const ns: Netns = {
    name: `${PREFIX}${id}`,
    hostInterface: `${PREFIX}${id}h`,
    nsInterface: `${PREFIX}${id}i`,
    hostAddress: `${a}.${b}.${c}.${d + 1}`,
    nsAddress: `${a}.${b}.${c}.${d + 2}`,
    wrap: (command, args) => ['ip', ['netns', 'exec', ns.name, command, ...args]],
    exec: (command, args) => run('ip', ['netns', 'exec', ns.name, command, ...args], { encoding: 'utf8' }),
    setLink: async (up) => {
      // The namespace's end goes down: the root end stays up without carrier, so its /30 route
      // stays (flagged linkdown) and packets to the namespace are dropped there. Downing the
      // root end instead would remove that route and send them to the default gateway.
      await ip('-n', ns.name, 'link', 'set', ns.nsInterface, up ? 'up' : 'down');
      if (up) await waitForRoute(ns.hostInterface);
    },
    destroy: async () => {
      if (!created.delete(ns.name)) return;
      await killInside(ns.name);
      await ip('netns', 'delete', ns.name).catch(() => {});
      // Deleting the namespace deletes the pair; this is for a namespace that never got its end.
      await ip('link', 'delete', ns.hostInterface).catch(() => {});
    },
  };
  created.set(ns.name, ns);
  try {
    await ip('netns', 'add', ns.name);
    await ip('link', 'add', ns.hostInterface, 'type', 'veth', 'peer', 'name', ns.nsInterface, 'netns', ns.name);
    await ip('addr', 'add', `${ns.hostAddress}/30`, 'dev', ns.hostInterface);
    await ip('link', 'set', ns.hostInterface, 'up');
    await ip('-n', ns.name, 'addr', 'add', `${ns.nsAddress}/30`, 'dev', ns.nsInterface);
    await ip('-n', ns.name, 'link', 'set', ns.nsInterface, 'up');
    await ip('-n', ns.name, 'link', 'set', 'lo', 'up');
    if (options.firewall) await addFirewall(ns);
    await waitForRoute(ns.hostInterface);
  } catch (err) {
    await ns.destroy();
    throw err;
  }
  return ns;
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args, { encoding: 'utf8' });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`ip ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * iproute2 alone, no iptables: a policy rule blackholes inbound TCP to ports below the
 * ephemeral range. Rule 0 ("lookup local") is matched before any other and would deliver
 * the packet first, so it moves behind ours.
 */
async function addFirewall(ns: Netns): Promise<void> {
  const { stdout } = await ns.exec('cat', ['/proc/sys/net/ipv4/ip_local_port_range']);
  const low = Number(stdout.trim().split(/\s+/)[0]);
  if (!(low > 1024)) throw new Error(`unexpected ephemeral port range in ${ns.name}: ${stdout}`);
  await ip(
    '-n',
    ns.name,
    'rule',
    'add',
    'pref',
    '10',
    'iif',
    ns.nsInterface,
    'ipproto',
    'tcp',
    'dport',
    `1-${low - 1}`,
    'blackhole',
  );
  await ip('-n', ns.name, 'rule', 'add', 'pref', '100', 'lookup', 'local');
  await ip('-n', ns.name, 'rule', 'del', 'pref', '0');
}

async function waitForRoute(device: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const { stdout } = await run('ip', ['-4', 'route', 'show', 'dev', device], { encoding: 'utf8' });
    if (stdout.includes('/30') && !stdout.includes('linkdown')) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the route over ${device} did not come up within 1 s`);
}

/** A /30 of 10.213.0.0/16 that no interface of the root namespace uses. */
async function freeSlot(): Promise<number> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  const used = new Set<number>();
  for (const match of stdout.matchAll(/inet 10\.213\.(\d+)\.(\d+)\//g)) {
    used.add(Number(match[1]) * 64 + Math.floor(Number(match[2]) / 4));
  }
  const start = (process.pid * 8 + counter) % SLOTS;
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    if (!used.has(slot)) return slot;
  }
  throw new Error('no free /30 left in 10.213.0.0/16');
}

async function killInside(name: string): Promise<void> {
  const pids = async () => {
    const { stdout } = await run('ip', ['netns', 'pids', name], { encoding: 'utf8' }).catch(() => ({ stdout: '' }));
    return stdout.split('\n').filter(Boolean).map(Number);
  };
  for (const pid of await pids()) signal(pid, 'SIGTERM');
  for (let i = 0; i < 50 && (await pids()).length > 0; i++) await new Promise((r) => setTimeout(r, 40));
  for (const pid of await pids()) signal(pid, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function destroySync(ns: Netns): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' });
    for (const pid of pids.split('\n').filter(Boolean)) signal(Number(pid), 'SIGKILL');
  } catch {}
  try {
    execFileSync('ip', ['netns', 'delete', ns.name], { stdio: 'ignore' });
  } catch {}
  try {
    execFileSync('ip', ['link', 'delete', ns.hostInterface], { stdio: 'ignore' });
  } catch {}
}

/** Namespaces (and their veth ends) left by test runs that were killed: their pid is gone. */
async function removeStale(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const match of stdout.matchAll(new RegExp(`^(${PREFIX}([0-9a-z]+)n\\d+)`, 'gm'))) {
    const pid = Number.parseInt(match[2]!, 36);
    if (pid === process.pid || isAlive(pid)) continue;
    const name = match[1]!;
    destroySync({ name, hostInterface: `${name}h` } as Netns);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
