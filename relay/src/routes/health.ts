// Liveness and readiness: /healthz answers while the process runs; /readyz only while the
// store answers (a load balancer stops sending work to a relay that lost its store).
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.js';
import { ApiError } from '../errors.js';

const READY_TIMEOUT_MS = 2000;

export function healthRoutes(app: FastifyInstance, deps: AppDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        deps.store.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      throw new ApiError('database_unavailable', `the store is not reachable: ${(err as Error).message}`, undefined, {
        status: 503,
      });
    } finally {
      clearTimeout(timer);
    }
    return { status: 'ready' };
  });
}
