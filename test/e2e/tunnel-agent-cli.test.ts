// The g2c-agent binary as an operator meets it: refusing to start on bad options (exit 2,
// one line naming the option), the health endpoint, a token the relay rejects (keep
// retrying) or revokes (stop, exit 3), and TLS: wss:// is verified, --ca trusts a private CA,
// and nothing turns verification off.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer as createTcpServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { agentBin, type RunningProcess, startProcess } from '../helpers/processes.js';
import { startAgent, startTestRelay, type TestRelay, until } from './tunnel-setup.js';

const run = promisify(execFile);
let dir: string;
let target: TestPostgres;
let relay: TestRelay;
let tlsRelay: TestRelay;
let caFile: string;
const agents: RunningProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'g2c-agent-cli-'));
  target = await startTestPostgres();
  // Many deliberate failures from 127.0.0.1 in this file: keep the 429 limiter out of the way.
  relay = await startTestRelay(target, dir, { rateLimit: { failures: 1000, windowMs: 60_000 } });
  // A private CA and a relay certificate signed by it.
  const ca = { key: join(dir, 'ca.key'), cert: join(dir, 'ca.crt') };
  const leaf = { key: join(dir, 'relay.key'), csr: join(dir, 'relay.csr'), cert: join(dir, 'relay.crt') };
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-days',
      '2',
      '-subj',
      '/CN=g2c test CA',
      '-keyout',
      ca.key,
      '-out',
      ca.cert,
    ]),
  );
  await run(
    'openssl',
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'].concat([
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      leaf.key,
      '-out',
      leaf.csr,
    ]),
  );
  const ext = join(dir, 'ext.cnf');
  await writeFile(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await run(
    'openssl',
    ['x509', '-req', '-in', leaf.csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial'].concat([
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      leaf.cert,
    ]),
  );
  caFile = ca.cert;
  tlsRelay = await startTestRelay(
    target,
    dir,
    {},
    {
      cert: await readFile(leaf.cert, 'utf8'),
      key: await readFile(leaf.key, 'utf8'),
    },
  );
}, 60_000);

afterEach(async () => {
  await Promise.allSettled(agents.splice(0).map((a) => a.stop()));
});

afterAll(async () => {
  await tlsRelay?.close();
  await relay?.close();
  await target?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function exitOf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [agentBin, ...args], { env: { ...process.env, ...env }, timeout: 10_000 });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

async function health(agent: RunningProcess): Promise<{ status: number; body: Record<string, unknown> }> {
  const line = await agent.waitForLine(/health endpoint listening/);
  const listen = JSON.parse(line).listen as string;
  const res = await fetch(`http://${listen}/`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('start-up checks', () => {
  const base = ['--relay', 'ws://127.0.0.1:1', '--token', 'x'];
  it.each([
    [[...base], 'allow', /at least one allowed target/],
    [[...base, '--allow', 'db'], 'allow', /missing :port/],
    [['--relay', 'ftp://x', '--token', 'x', '--allow', 'db:1'], 'relay', /scheme/],
    [['--relay', 'ws://x', '--allow', 'db:1'], 'token', /required/],
    [['--relay', 'ws://x', '--token-file', '/nonexistent/t', '--allow', 'db:1'], 'token-file', /cannot read/],
    [[...base, '--allow', 'db:1', '--keepalive-interval', 'soon'], 'keepalive-interval', /duration/],
    [[...base, '--allow', 'db:1', '--health-listen', 'nine'], 'health-listen', /HOST:PORT/],
    [[...base, '--allow', 'db:1', '--ca', '/nonexistent/ca.pem'], 'ca', /cannot read/],
    [[...base, '--allow', 'db:1', '--bogus', '1'], 'bogus', /unknown option/],
  ])('%j exits 2 naming --%s', async (args, option, why) => {
    const { code, stderr } = await exitOf(args as string[]);
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith(`--${option}:`)).toBe(true);
    expect(lines[0]).toMatch(why as RegExp);
  });

  it('reads options from the environment and a --config file', async () => {
    const config = join(dir, 'agent.json');
    await writeFile(config, JSON.stringify({ relay: 'ws://127.0.0.1:1', allow: ['db:5432'] }));
    // Valid everywhere except the env token file, which does not exist: proves env and file were read.
    const { code, stderr } = await exitOf(['--config', config], { G2C_TOKEN_FILE: '/nonexistent/env-token' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^--token-file: cannot read \/nonexistent\/env-token/);
  });
});

describe('health endpoint and relay verdicts', () => {
  it('reports connected, since, streams, reconnects and the last error', async () => {
    const tunnel = await relay.createTunnel('health');
    const agent = await startAgent('agent-health', relay.url, tunnel.tokenFile, {
      allow: ['127.0.0.1:1'],
      args: ['--health-listen', '127.0.0.1:0'],
    });
    agents.push(agent);
    const first = await health(agent);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      connected: true,
      relay: relay.url,
      activeStreams: 0,
      reconnects: 0,
      lastError: null,
    });
    expect(Date.parse(first.body.since as string)).toBeGreaterThan(Date.now() - 60_000);
    // The relay drops the session (here: as if the token were rotated, but it is still valid).
    relay.hub.disconnectTunnel(tunnel.id, 'test drop');
    await until('reconnected', async () => (await health(agent)).body.reconnects === 1, 10_000);
    const after = await health(agent);
    expect(after.body.connected).toBe(true);
    expect(after.body.lastError).toMatch(/4001/);
  });

  it('a relay that goes silent (black-holed link) is detected by keepalive; the agent reconnects', async () => {
    // A TCP relay-in-the-middle whose current connections can be black-holed: bytes stop in
    // both directions and nothing is closed, as with a dead NAT entry.
    const live = new Set<{ shut: boolean }>();
    const { port: relayPort } = new URL(relay.url);
    const middle = createTcpServer((inbound) => {
      const gate = { shut: false };
      live.add(gate);
      const outbound = tcpConnect({ host: '127.0.0.1', port: Number(relayPort) });
      for (const [from, to] of [
        [inbound, outbound],
        [outbound, inbound],
      ] as const) {
        from.on('data', (chunk: Buffer) => {
          if (!gate.shut) to.write(chunk);
        });
        from.on('error', () => to.destroy());
        from.on('close', () => to.destroy());
      }
    });
    middle.listen(0, '127.0.0.1');
    await once(middle, 'listening');
    try {
      const tunnel = await relay.createTunnel('black-hole');
      const agent = await startAgent(
        'agent-black-hole',
        `http://127.0.0.1:${(middle.address() as AddressInfo).port}`,
        tunnel.tokenFile,
        {
          allow: ['127.0.0.1:1'],
          args: ['--health-listen', '127.0.0.1:0', '--keepalive-interval', '300ms', '--keepalive-timeout', '1s'],
        },
      );
      agents.push(agent);
      for (const gate of live) gate.shut = true;
      const shutAt = Date.now();
      await agent.waitForLine(/lost the relay session/, 10_000);
      // 300 ms + 1 s, with margin for a busy machine.
      expect(Date.now() - shutAt).toBeLessThan(3500);
      expect(agent.lines.find((l) => l.includes('lost the relay session'))).toMatch(/keepalive/);
      // A fresh connection passes the middle again: the agent is back by itself.
      await until('reconnected', async () => (await health(agent)).body.reconnects === 1, 10_000);
      expect((await health(agent)).body.connected).toBe(true);
    } finally {
      middle.close();
    }
  });

  it('an invalid token: keeps retrying with backoff, says why, never logs the token', async () => {
    const tokenFile = join(dir, 'bad-token');
    const bad = 'eyJhbGciOiJub25lIn0.e30.not-a-real-token';
    await writeFile(tokenFile, bad);
    const agent = await startAgent('agent-bad', relay.url, tokenFile, {
      allow: ['127.0.0.1:1'],
      args: ['--health-listen', '127.0.0.1:0'],
      waitConnected: false,
    });
    agents.push(agent);
    await agent.waitForLine(/token_invalid/, 10_000);
    const h = await health(agent);
    expect(h.status).toBe(503);
    expect(h.body.connected).toBe(false);
    expect(h.body.lastError).toMatch(/token_invalid/);
    await sleep(1000);
    expect(agent.child.exitCode).toBeNull();
    expect(agent.lines.join('\n')).not.toContain(bad);
  });

  it('a revoked token: the agent stops with exit 3 and says what to do', async () => {
    const tunnel = await relay.createTunnel('revoked');
    const agent = await startAgent('agent-revoked', relay.url, tunnel.tokenFile, { allow: ['127.0.0.1:1'] });
    agents.push(agent);
    // Rotate: the old token is revoked and its session closed; the agent's retry is told so.
    await relay.tokens.issue({ id: tunnel.id, orgId: relay.orgId });
    relay.hub.disconnectTunnel(tunnel.id, 'token rotated');
    const code = await Promise.race([agent.exited, sleep(15_000).then(() => 'still running')]);
    expect(code).toBe(3);
    const text = agent.lines.join('\n');
    expect(text).toMatch(/token_revoked/);
    expect(text).toMatch(/issue a new token/);
    expect(text).not.toContain(tunnel.token);
  });
});

describe('token rotation without restart', () => {
  it('a new token written to --token-file is used on the next connection', async () => {
    const tunnel = await relay.createTunnel('rotate-in-place');
    const agent = await startAgent('agent-rotate', relay.url, tunnel.tokenFile, { allow: ['127.0.0.1:1'] });
    agents.push(agent);
    const fresh = await relay.tokens.issue({ id: tunnel.id, orgId: relay.orgId });
    await writeFile(tunnel.tokenFile, `${fresh}\n`);
    relay.hub.disconnectTunnel(tunnel.id, 'token rotated');
    await agent.waitForLine(/token file changed/, 10_000);
    await until('online with the new token', () => relay.hub.status(tunnel.id).status === 'online', 10_000);
    expect(agent.child.exitCode).toBeNull();
    expect(agent.lines.join('\n')).not.toContain(fresh);
  });
});

/** A minimal HTTP CONNECT proxy on loopback; `requireAuth` demands that Proxy-Authorization. */
async function startConnectProxy(requireAuth?: string) {
  const seen: string[] = [];
  const server = createTcpServer((client) => {
    client.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      const text = head.subarray(0, end).toString('latin1');
      const [, target] = /^CONNECT (\S+) HTTP\/1\.1/.exec(text) ?? [];
      seen.push(target ?? '?');
      if (requireAuth && !text.includes(`Proxy-Authorization: ${requireAuth}`)) {
        client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const port = Number(target!.slice(target!.lastIndexOf(':') + 1));
      const upstream = tcpConnect({ host: '127.0.0.1', port }, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length) upstream.write(rest);
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on('error', () => client.destroy());
    };
    client.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
}

describe('through an HTTP proxy (--proxy)', () => {
  it('ws:// and wss:// (TLS end to end inside CONNECT) carry the tunnel', async () => {
    const proxy = await startConnectProxy();
    try {
      for (const r of [relay, tlsRelay]) {
        const tunnel = await r.createTunnel(`via-proxy-${r === relay ? 'ws' : 'wss'}`);
        const agent = await startAgent('agent-proxy', r.url, tunnel.tokenFile, {
          allow: [`127.0.0.1:${target.port}`],
          args: ['--proxy', proxy.url, ...(r === tlsRelay ? ['--ca', caFile] : [])],
        });
        agents.push(agent);
        const client = new pg.Client(r.pgConfig(tunnel.id));
        await client.connect();
        expect((await client.query('select 5 as n')).rows[0].n).toBe(5);
        await client.end();
      }
      // Inside the tunnel TLS is still verified: without --ca the relay's certificate is refused.
      const tunnel = await tlsRelay.createTunnel('via-proxy-untrusted');
      const untrusted = await startAgent('agent-proxy-untrusted', tlsRelay.url, tunnel.tokenFile, {
        allow: ['127.0.0.1:1'],
        args: ['--proxy', proxy.url],
        waitConnected: false,
      });
      agents.push(untrusted);
      expect(await untrusted.waitForLine(/cannot connect to the relay/, 10_000)).toMatch(/certificate|issuer/i);
      const relayPorts = [relay.url, tlsRelay.url].map((u) => `127.0.0.1:${new URL(u).port}`);
      expect(proxy.seen).toEqual(expect.arrayContaining(relayPorts));
    } finally {
      proxy.close();
    }
  });

  it('a proxy that wants credentials: 407 is reported and retried; with them it connects', async () => {
    const auth = `Basic ${Buffer.from('agent:s3cret').toString('base64')}`;
    const proxy = await startConnectProxy(auth);
    try {
      const tunnel = await relay.createTunnel('proxy-auth');
      const refused = await startAgent('agent-407', relay.url, tunnel.tokenFile, {
        allow: ['127.0.0.1:1'],
        args: ['--proxy', proxy.url],
        waitConnected: false,
      });
      agents.push(refused);
      await refused.waitForLine(/proxy refused CONNECT .*407/, 10_000);
      expect(refused.child.exitCode).toBeNull();
      const withCredentials = await startAgent('agent-proxy-auth', relay.url, tunnel.tokenFile, {
        allow: ['127.0.0.1:1'],
        args: ['--proxy', proxy.url.replace('http://', 'http://agent:s3cret@')],
      });
      agents.push(withCredentials);
      expect(withCredentials.lines.join('\n')).not.toContain('s3cret');
      expect(withCredentials.lines.join('\n')).toContain('agent:***@');
    } finally {
      proxy.close();
    }
  });
});

describe('TLS to the relay', () => {
  it('wss:// with an unknown CA is refused, even with NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    const tunnel = await tlsRelay.createTunnel('tls-refused');
    const agent = await startAgent('agent-untrusted', tlsRelay.url, tunnel.tokenFile, {
      allow: ['127.0.0.1:1'],
      args: ['--health-listen', '127.0.0.1:0'],
      env: { NODE_TLS_REJECT_UNAUTHORIZED: '0' },
      waitConnected: false,
    });
    agents.push(agent);
    await agent.waitForLine(/cannot connect to the relay/, 10_000);
    const h = await health(agent);
    expect(h.body.connected).toBe(false);
    expect(h.body.lastError).toMatch(/certificate|self[- ]signed|issuer/i);
    expect(tlsRelay.hub.status(tunnel.id).status).toBe('offline');
  });

  it('--ca trusts a private CA', async () => {
    const tunnel = await tlsRelay.createTunnel('tls-ca');
    const agent = await startProcess(
      'agent-ca',
      agentBin,
      [
        '--relay',
        tlsRelay.url,
        '--token-file',
        tunnel.tokenFile,
        '--allow',
        `127.0.0.1:${target.port}`,
        '--ca',
        caFile,
      ],
      { ready: /connected to the relay/ },
    );
    agents.push(agent);
    await until('online', () => tlsRelay.hub.status(tunnel.id).status === 'online');
    // Bulk data both ways over wss:// (the agent sends with an all-zero mask inside TLS).
    const client = new pg.Client(tlsRelay.pgConfig(tunnel.id));
    await client.connect();
    try {
      const { rows } = await client.query("select md5(repeat('g2c', 1000000)) as h, $1::text as echo", [
        'x'.repeat(100_000),
      ]);
      expect(rows[0].h).toBe(createHash('md5').update('g2c'.repeat(1_000_000)).digest('hex'));
      expect(rows[0].echo).toHaveLength(100_000);
    } finally {
      await client.end();
    }
  });
});
