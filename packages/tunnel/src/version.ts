// What both ends agree on before any byte of yamux: the path the agent connects to, the
// WebSocket subprotocol that names this protocol version, the WebSocket close codes, and the
// liveness defaults. A relay and an agent that disagree on SUBPROTOCOL never talk (426).

/** WebSocket subprotocol of this wire version; a new incompatible version gets a new name. */
export const SUBPROTOCOL = 'g2c.v1';

/** Path of the agent endpoint on the relay. */
export const AGENT_PATH = '/agent/v1/connect';

/** Version string the agent sends in `G2C-Agent: <version>; host=<hostname>`. */
export const AGENT_VERSION = '0.1.0';

/** Header the agent identifies itself with. */
export const AGENT_HEADER = 'g2c-agent';

/** Builds the `G2C-Agent` header value. */
export function formatAgentHeader(version: string, hostname: string): string {
  return `${version}; host=${hostname}`;
}

/** Parses a `G2C-Agent` header value; unknown or missing parts come back as ''. */
export function parseAgentHeader(value: string | undefined): { version: string; hostname: string } {
  if (!value) return { version: '', hostname: '' };
  const [version = '', ...params] = value.split(';').map((s) => s.trim());
  let hostname = '';
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === 'host') hostname = p.slice(eq + 1).trim();
  }
  // Both end up in logs and in the API: keep them short and printable.
  const clean = (s: string) => s.replace(/[^\x20-\x7e]/g, '').slice(0, 255);
  return { version: clean(version), hostname: clean(hostname) };
}

/** WebSocket close codes used on the agent connection. */
export const CloseCode = {
  /** Orderly shutdown with nothing left to do. */
  NORMAL: 1000,
  /** The closing side is shutting down (agent drain, relay stop). */
  GOING_AWAY: 1001,
  /** The peer broke the protocol (text message, bad yamux frame). */
  PROTOCOL_ERROR: 1002,
  /** Unexpected failure on the closing side. */
  INTERNAL_ERROR: 1011,
  /** The relay closed the session because its token was rotated away or the tunnel deleted. */
  TOKEN_REVOKED: 4001,
  /** The relay found the session dead (keepalive) or otherwise dropped it. */
  SESSION_LOST: 4002,
} as const;

/** Liveness and shutdown defaults shared by agent and relay (DESIGN 4.3). */
export const KEEPALIVE_INTERVAL_MS = 10_000;
export const KEEPALIVE_TIMEOUT_MS = 25_000;
export const DRAIN_TIMEOUT_MS = 30_000;
/** How long the agent waits for a TCP connect to a target. */
export const DIAL_TIMEOUT_MS = 10_000;
/** How long the relay waits for the agent's answer to a stream-open header. */
export const OPEN_TIMEOUT_MS = 15_000;
