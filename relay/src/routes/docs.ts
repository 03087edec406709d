// GET /instances/{id}/docs: the OpenAPI 3.1 document of one instance, generated from its
// schema cache (platform credentials: it describes the instance, it does not read rows).
import type { FastifyInstance } from 'fastify';
import { API_BASE, type EngineDeps, engineContext, platformPrincipal } from '../engine/context.js';
import { withSchemaRetry } from '../engine/instances.js';
import { buildOpenApi } from '../engine/openapi.js';
import { ApiError } from '../errors.js';

export function docsRoutes(app: FastifyInstance, deps: EngineDeps): void {
  const context = engineContext(app, deps);

  app.get<{ Params: { id: string } }>(`${API_BASE}/instances/:id/docs`, async (request) => {
    const { orgId } = await platformPrincipal(context, request);
    const { id } = request.params;
    // Not org-scoped on purpose: another organization's call must not evict a live runtime.
    const runtime = await context.runtimes.get(id, () => context.instances.getById(id));
    if (!runtime || runtime.orgId !== orgId) {
      throw new ApiError('not_found', `No instance ${JSON.stringify(id)} in this organization.`);
    }
    const tables = await withSchemaRetry(runtime, () => runtime.schema.all());
    const host = request.headers.host ?? 'localhost';
    return buildOpenApi(tables.values(), {
      title: `g2c ${runtime.label}`,
      serverUrl: `${request.protocol}://${host}${API_BASE}`,
      description:
        'Generated from the schema of the instance. Every call needs ' +
        '"Authorization: User <secret>, Organization <secret>, Element <token>".',
    });
  });
}
