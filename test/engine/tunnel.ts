// The ground2cloud half of the engine suite: a tunnel of the test organization and the real
// g2c-agent binary (built dist/: `npx tsc -b`) connected to the harness's relay on loopback,
// allowed to dial the test PostgreSQL. The agent can be stopped, restarted and re-allowed.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { agentBin, type RunningProcess, startProcess } from '../helpers/processes.js';
import { BASE, call, type EngineHarness } from './harness.js';

export type Connection = 'direct' | 'ground2cloud';

/** Connection types the suite runs on (G2C_ENGINE_KINDS=direct limits it). */
export function connectionKinds(): Connection[] {
  const wanted = process.env.G2C_ENGINE_KINDS?.split(',') as Connection[] | undefined;
  return wanted ?? ['direct', 'ground2cloud'];
}

export interface TunnelSetup {
  id: string;
  name: string;
  /** Configuration keys that make an instance go through this tunnel. */
  configuration(): Record<string, unknown>;
  /** (Re)starts the agent allowing exactly `allow` (default: any port of 127.0.0.1). */
  startAgent(allow?: string[]): Promise<void>;
  stopAgent(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTunnel(h: EngineHarness, name = 'onprem'): Promise<TunnelSetup> {
  const res = await call(h.app, 'POST', `${BASE}/tunnels`, { auth: h.org.platform, body: { name } });
  if (res.status !== 200) throw new Error(`POST /tunnels: ${res.status} ${res.body}`);
  const tunnel = res.json as { id: string; name: string; token: string };
  const tokenFile = join(h.db.dir, `tunnel-${tunnel.id}.token`);
  await writeFile(tokenFile, tunnel.token, { mode: 0o600 });
  let agent: RunningProcess | undefined;

  const stopAgent = async () => {
    const running = agent;
    agent = undefined;
    await running?.stop();
  };
  const startAgent = async (allow = ['127.0.0.1:*']) => {
    await stopAgent();
    const args = [
      '--relay',
      h.url,
      '--token-file',
      tokenFile,
      '--keepalive-interval',
      '1s',
      '--keepalive-timeout',
      '4s',
      // Stopping drains open streams (the pools' idle connections) for this long at most.
      '--drain-timeout',
      '1s',
    ];
    for (const target of allow) args.push('--allow', target);
    agent = await startProcess('agent', agentBin, args, { ready: /connected to the relay/ });
    // The hub has the session once the agent says so; wait until the tunnel reports it.
    for (let i = 0; i < 100; i++) {
      const status = await call(h.app, 'GET', `${BASE}/tunnels/${tunnel.id}`, { auth: h.org.platform });
      if ((status.json as { status?: string })?.status === 'online') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the agent connected but the tunnel is not online');
  };
  await startAgent();
  return {
    id: tunnel.id,
    name: tunnel.name,
    configuration: () => ({ 'connection.type': 'ground2cloud', 'ground2cloud.tunnel': tunnel.name }),
    startAgent,
    stopAgent,
    stop: stopAgent,
  };
}
