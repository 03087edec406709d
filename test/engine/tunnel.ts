// The ground2cloud half of the engine suite: the relay app listening on loopback (so a real
// agent can connect), a tunnel, and the real g2c-agent binary dialling the test database.
import type { EngineHarness } from './harness.js';

export type Connection = 'direct' | 'ground2cloud';

/** Connection types the suite runs on (G2C_ENGINE_KINDS=direct limits it). */
export function connectionKinds(): Connection[] {
  const wanted = process.env.G2C_ENGINE_KINDS?.split(',') as Connection[] | undefined;
  return wanted ?? ['direct'];
}

export interface TunnelSetup {
  /** Configuration keys that make an instance go through this tunnel. */
  configuration(): Record<string, unknown>;
  /** Lets the agent dial host:port (restarting it if needed). */
  allow(target: string): Promise<void>;
  stopAgent(): Promise<void>;
  startAgent(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTunnel(_h: EngineHarness): Promise<TunnelSetup> {
  throw new Error('the tunnel is not available yet');
}
