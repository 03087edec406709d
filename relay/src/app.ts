// Builds the relay's HTTP application (fastify) from its dependencies; server.ts listens.
// Everything every route shares is decided here: request ids (`elements-request-id` on every
// response), one JSON error format (errors.ts) for every failure including unknown routes,
// bad JSON, too large bodies (413) and unsupported content types (415), and the logger.
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { MasterKey } from './auth/crypto.js';
import type { TokenService } from './auth/tokens.js';
import type { RelayConfig } from './config.js';
import { ApiError } from './errors.js';
import type { Hub } from './hub/hub.js';
import { tunnelSocketFactory } from './hub/pg-socket.js';
import type { Logger } from './logger.js';
import { docsRoutes } from './routes/docs.js';
import { forwardRoutes } from './routes/forward.js';
import { healthRoutes } from './routes/health.js';
import { instanceRoutes } from './routes/instances.js';
import { objectRoutes } from './routes/objects.js';
import { resourceRoutes } from './routes/resources.js';
import { tunnelRoutes } from './routes/tunnels.js';
import type { Store } from './store/db.js';

export const API_BASE = '/elements/api-v2';
export const REQUEST_ID_HEADER = 'elements-request-id';

export interface AppDeps {
  config: RelayConfig;
  logger: Logger;
  store: Store;
  tokens: TokenService;
  hub: Pick<Hub, 'openStream' | 'status' | 'disconnectTunnel'>;
  /** Encrypts stored database passwords; derives the page-token key. */
  masterKey: MasterKey;
}

/**
 * A failure to reach the relay's own store (the engine maps its databases' errors itself):
 * connection refused or reset, pool connect timeout, server shutting down.
 */
function storeUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03'].includes(e.code ?? '')) {
    return true;
  }
  return /^(timeout exceeded when trying to connect|Connection terminated)/.test(e.message ?? '');
}

/** Maps anything thrown in a request to the error catalogue. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & { validation?: unknown };
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('payload_too_large', `${e.message}: send a smaller request body`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(
        'unsupported_media_type',
        'unsupported Content-Type: send the body as JSON with Content-Type: application/json',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError('invalid_json', 'the body is empty but Content-Type says JSON: send a JSON document');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('invalid_json', `the body is not valid JSON: ${e.message}`);
  }
  if (e instanceof SyntaxError && (e as { statusCode?: number }).statusCode === 400) {
    return new ApiError('invalid_json', `the body is not valid JSON: ${e.message}`);
  }
  if (e?.validation) return new ApiError('bad_request', e.message);
  if (storeUnavailable(err)) {
    return new ApiError(
      'database_unavailable',
      "the relay's store is not reachable right now: retry shortly",
      undefined,
      {
        status: 503,
        headers: { 'Retry-After': '5' },
        cause: err,
      },
    );
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code =
      status === 404
        ? 'not_found'
        : status === 405
          ? 'method_not_allowed'
          : status === 429
            ? 'rate_limited'
            : 'bad_request';
    return new ApiError(code, e.message, undefined, { status });
  }
  return new ApiError('internal_error', 'internal error: the relay logged it under this request id', undefined, {
    cause: err,
  });
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger,
    genReqId: () => randomUUID(),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    // One trusted hop: request.ip is the X-Forwarded-For entry our proxy appended (as the hub does).
    trustProxy: config.trustProxy ? (_address: string, hop: number) => hop === 0 : false,
    ...(config.tls ? { https: { cert: config.tls.cert, key: config.tls.key } } : {}),
  }) as unknown as FastifyInstance;

  // JSON only: without this, text/plain bodies would reach the routes as strings.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });

  app.setErrorHandler((err, request, reply) => {
    const error = toApiError(err);
    if (error.status >= 500 && error.code === 'internal_error') {
      request.log.error({ err }, 'request failed');
    } else {
      request.log.info({ code: error.code, status: error.status }, error.message);
    }
    if (error.headers) reply.headers(error.headers);
    reply.status(error.status).send(error.toBody(String(request.id)));
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError('not_found', `no such route: ${request.method} ${request.url.split('?')[0]}`);
    reply.status(404).send(error.toBody(String(request.id)));
  });

  healthRoutes(app, deps);
  tunnelRoutes(app, deps);
  // Element engine (engine-api): instances, docs, /ping, /objects, then the /{name} catch-alls.
  const engine = {
    store: deps.store,
    masterKey: deps.masterKey,
    logger: deps.logger,
    // ground2cloud pools differ from direct ones only by this socket factory (DESIGN 4.4).
    tunnelSocket: (tunnelId: string) => tunnelSocketFactory(deps.hub, tunnelId),
  };
  instanceRoutes(app, engine);
  docsRoutes(app, engine);
  objectRoutes(app, engine);
  resourceRoutes(app, engine);
  forwardRoutes(app, deps);
  return app;
}
