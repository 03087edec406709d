// --health-listen: the agent's state as JSON for humans, monitors and orchestrators.
// GET (any path) -> 200 while connected to the relay, 503 otherwise; the body is the same.
import { createServer, type Server } from 'node:http';
import type { AgentState } from './agent.js';

export async function startHealthServer(
  listen: { host: string; port: number },
  state: () => AgentState,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const s = state();
    const body = `${JSON.stringify(s)}\n`;
    res.writeHead(s.connected ? 200 : 503, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address ? address.port : listen.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
