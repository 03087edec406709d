// openStream(tunnelId, host, port): a byte stream to a target behind a tunnel, ready for
// payload (the agent has answered ok). Agents are tried fewest-active-streams first; when an
// agent refuses, or its session dies or will not take a stream, the next one is tried. The
// error of the last attempt wins: the agent's code (not_allowed, connect_refused, ...), or
// tunnel_offline when no agent could be asked at all.
import type { Stream } from '@g2c/mux';
import {
  encodeOpenHeader,
  OPEN_VERSION,
  parseOpenReply,
  parseOpenRequest,
  readOpenHeader,
  TunnelError,
} from '@g2c/tunnel';
import type { Logger } from 'pino';
import type { AgentSession, Registry } from './registry.js';

export interface OpenStreamOptions {
  openTimeoutMs: number;
  logger: Logger;
}

function pick(candidates: AgentSession[]): AgentSession {
  let best = candidates[0]!;
  for (const c of candidates) if (c.activeStreams < best.activeStreams) best = c;
  return best;
}

export async function openStream(
  registry: Registry,
  tunnelId: string,
  host: string,
  port: number,
  options: OpenStreamOptions,
): Promise<Stream> {
  // A target no agent would accept (empty or over-long host, bad port) is refused here, with
  // what is wrong, instead of each agent resetting the stream and the caller hearing "offline".
  let header: Buffer;
  try {
    header = encodeOpenHeader(parseOpenRequest({ v: OPEN_VERSION, host, port }));
  } catch (err) {
    throw new TunnelError(
      'unreachable',
      `cannot open a stream to ${String(host).slice(0, 64)}:${port}: ${(err as Error).message}`,
    );
  }
  const tried = new Set<AgentSession>();
  let last: TunnelError | undefined;
  for (;;) {
    const agents = registry.agents(tunnelId);
    const candidates = agents.filter((a) => a.usable && !tried.has(a));
    if (candidates.length === 0) {
      if (last) throw last;
      throw new TunnelError(
        'tunnel_offline',
        agents.length > 0
          ? `every agent of tunnel ${tunnelId} is shutting down (draining): retry once one is back`
          : `tunnel ${tunnelId} has no connected agent: start g2c-agent with this tunnel's token next to the database`,
      );
    }
    const agent = pick(candidates);
    tried.add(agent);
    try {
      return await openOn(agent, header, options.openTimeoutMs);
    } catch (err) {
      const e = err as Error & { code?: string };
      last =
        e instanceof TunnelError
          ? e
          : new TunnelError('tunnel_offline', `the agent could not take the stream (${e.code ?? e.message})`, {
              cause: e,
            });
      options.logger.debug(
        { tunnelId, agentSession: agent.id, target: `${host}:${port}`, code: last.code, err: e.message },
        'stream open failed on an agent',
      );
      if (e.code === 'ERR_REMOTE_GOAWAY') agent.draining = true;
    }
  }
}

/** Opens one stream on one agent and waits for its answer. */
async function openOn(agent: AgentSession, header: Buffer, timeoutMs: number): Promise<Stream> {
  const stream = agent.session.open();
  agent.streams.add(stream);
  stream.once('close', () => agent.streams.delete(stream));
  stream.on('error', () => {}); // until the caller takes it over; the promise reports failures
  stream.write(header);
  let reply: ReturnType<typeof parseOpenReply>;
  try {
    reply = parseOpenReply(await readOpenHeader(stream, { timeoutMs }));
  } catch (err) {
    stream.destroy();
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_OPEN_HEADER_TIMEOUT') {
      throw new TunnelError('connect_timeout', `the agent did not answer the stream open within ${timeoutMs} ms`);
    }
    throw err;
  }
  if (!reply.ok) {
    stream.end();
    stream.resume();
    const who = agent.agent.hostname ? `agent ${agent.agent.hostname}` : 'the agent';
    throw new TunnelError(reply.code, `${who}: ${reply.message}`);
  }
  return stream;
}
