// Resource API calls about the instance itself (DESIGN 6): /ping, /objects and
// /objects/{name}/metadata. Authenticated like every resource call (User, Organization, Element).
import type { FastifyInstance } from 'fastify';
import { API_BASE, type EngineDeps, engineContext, resourceRuntime } from '../engine/context.js';
import { toApiError } from '../engine/errors.js';
import { withSchemaRetry } from '../engine/instances.js';
import { tableMetadata } from '../engine/metadata.js';
import { ApiError } from '../errors.js';

export function objectRoutes(app: FastifyInstance, deps: EngineDeps): void {
  const context = engineContext(app, deps);

  app.get(`${API_BASE}/ping`, async (request) => {
    const runtime = await resourceRuntime(context, request);
    const started = process.hrtime.bigint();
    try {
      await runtime.pool.query('select 1');
    } catch (err) {
      throw toApiError(err, runtime.label);
    }
    const latencyMs = Number(process.hrtime.bigint() - started) / 1e6;
    return { status: 'ok', connection: runtime.config.connectionType, latencyMs: Math.round(latencyMs * 100) / 100 };
  });

  app.get(`${API_BASE}/objects`, async (request) => {
    const runtime = await resourceRuntime(context, request);
    const tables = await withSchemaRetry(runtime, () => runtime.schema.all());
    return [...tables.keys()].sort();
  });

  app.get<{ Params: { name: string } }>(`${API_BASE}/objects/:name/metadata`, async (request) => {
    const runtime = await resourceRuntime(context, request);
    const table = await withSchemaRetry(runtime, () => runtime.schema.table(request.params.name));
    if (!table) {
      throw new ApiError('not_found', `Unknown object "${request.params.name}": GET ${API_BASE}/objects lists them.`);
    }
    return tableMetadata(table);
  });
}
