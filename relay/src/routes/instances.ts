// Platform calls on element instances (DESIGN 5.3, 5.4): create, list, read, change, delete.
// Creating or changing connects to the database and introspects it before anything is stored;
// the element token is returned once, the password never.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseConfiguration, publicConfiguration } from '../engine/config.js';
import {
  API_BASE,
  type EngineContext,
  type EngineDeps,
  engineContext,
  forgetInstanceCredentials,
  platformPrincipal,
} from '../engine/context.js';
import { ApiError } from '../errors.js';
import type { InstanceInput, InstanceRecord } from '../store/instances.js';

export const ELEMENT_KEYS = ['postgresql'];

interface InstanceBody {
  element?: { key?: unknown };
  name?: unknown;
  tags?: unknown;
  configuration?: unknown;
}

/** How an instance is shown: everything but the password (and the token, shown once by POST). */
export function instanceView(record: InstanceRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    element: { key: record.elementKey },
    tags: record.tags,
    configuration: publicConfiguration(record.configuration),
    connectionType: record.configuration['connection.type'] ?? 'direct',
    ...(record.tunnelId ? { tunnelId: record.tunnelId } : {}),
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
  };
}

function bodyOf(request: FastifyRequest): InstanceBody {
  const body = request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError(
      'bad_request',
      'The body must be a JSON object: {"element":{"key":"postgresql"},"name":...,"configuration":{...}}.',
    );
  }
  return body as InstanceBody;
}

/**
 * Checks a create/change body (merged over `previous` on PATCH), connects and introspects.
 * Returns what to store and the probed pool to install.
 */
async function validate(context: EngineContext, orgId: string, body: InstanceBody, previous?: InstanceRecord) {
  const elementKey = body.element?.key ?? previous?.elementKey ?? 'postgresql';
  if (body.element !== undefined && (typeof body.element !== 'object' || body.element === null)) {
    throw new ApiError('bad_request', '"element" must be an object such as {"key":"postgresql"}.');
  }
  if (typeof elementKey !== 'string' || !ELEMENT_KEYS.includes(elementKey)) {
    throw new ApiError('bad_request', `"element.key" must be one of: ${ELEMENT_KEYS.join(', ')}.`);
  }
  const name = body.name ?? previous?.name;
  if (typeof name !== 'string' || !name.trim() || name.length > 200) {
    throw new ApiError('bad_request', '"name" is required: a non-empty string of at most 200 characters.');
  }
  const tags = body.tags ?? previous?.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
    throw new ApiError('bad_request', '"tags" must be an array of strings.');
  }
  if (!previous && body.configuration === undefined) {
    throw new ApiError(
      'invalid_configuration',
      '"configuration" is required (db.host, db.name, username, password, ...).',
    );
  }
  if (
    body.configuration !== undefined &&
    (typeof body.configuration !== 'object' || body.configuration === null || Array.isArray(body.configuration))
  ) {
    throw new ApiError('invalid_configuration', '"configuration" must be an object of configuration keys.');
  }
  // PATCH: keys not sent keep their value (the password too); a key sent as null is removed.
  const merged: Record<string, unknown> = previous ? { ...previous.configuration, password: previous.password } : {};
  for (const [key, value] of Object.entries((body.configuration as Record<string, unknown>) ?? {})) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  if (merged['connection.type'] !== 'ground2cloud') delete merged['ground2cloud.tunnel'];
  const config = parseConfiguration(merged);
  let tunnelId: string | null = null;
  if (config.connectionType === 'ground2cloud') {
    const tunnel = await context.deps.store.tunnels.find(orgId, config.tunnel as string);
    if (!tunnel) {
      throw new ApiError(
        'invalid_configuration',
        `configuration."ground2cloud.tunnel": no tunnel "${config.tunnel}" in this organization (GET ${API_BASE}/tunnels lists them).`,
      );
    }
    tunnelId = tunnel.id;
  }
  const probed = await context.runtimes.probe(config, tunnelId);
  const { password, ...stored } = merged;
  const input: InstanceInput = {
    name: name.trim(),
    elementKey,
    tags,
    configuration: stored,
    password: password as string,
    tunnelId,
  };
  return { input, probed };
}

async function notFound(id: string): Promise<never> {
  throw new ApiError('not_found', `No instance ${JSON.stringify(id)} in this organization.`);
}

export function instanceRoutes(app: FastifyInstance, deps: EngineDeps): void {
  const context = engineContext(app, deps);

  app.post(`${API_BASE}/instances`, async (request) => {
    const { orgId } = await platformPrincipal(context, request);
    const { input, probed } = await validate(context, orgId, bodyOf(request));
    let created: Awaited<ReturnType<typeof context.instances.create>>;
    try {
      created = await context.instances.create(orgId, input);
    } catch (err) {
      await probed.pool.end().catch(() => {});
      throw err;
    }
    context.runtimes.install(created.record, probed);
    return { ...instanceView(created.record), token: created.token };
  });

  app.get(`${API_BASE}/instances`, async (request) => {
    const { orgId } = await platformPrincipal(context, request);
    return (await context.instances.list(orgId)).map(instanceView);
  });

  app.get<{ Params: { id: string } }>(`${API_BASE}/instances/:id`, async (request) => {
    const { orgId } = await platformPrincipal(context, request);
    const record = await context.instances.get(orgId, request.params.id);
    return record ? instanceView(record) : notFound(request.params.id);
  });

  app.patch<{ Params: { id: string } }>(`${API_BASE}/instances/:id`, async (request) => {
    const { orgId } = await platformPrincipal(context, request);
    const previous = await context.instances.get(orgId, request.params.id);
    if (!previous) return notFound(request.params.id);
    const { input, probed } = await validate(context, orgId, bodyOf(request), previous);
    let record: InstanceRecord | undefined;
    try {
      record = await context.instances.update(orgId, previous.id, input);
    } catch (err) {
      await probed.pool.end().catch(() => {});
      throw err;
    }
    if (!record) {
      await probed.pool.end().catch(() => {});
      return notFound(request.params.id);
    }
    // The new pool takes over at once; the old one drains (other instances are untouched).
    context.runtimes.install(record, probed);
    return instanceView(record);
  });

  app.delete<{ Params: { id: string } }>(`${API_BASE}/instances/:id`, async (request) => {
    const { orgId } = await platformPrincipal(context, request);
    const deleted = await context.instances.delete(orgId, request.params.id);
    if (!deleted) return notFound(request.params.id);
    context.runtimes.evict(request.params.id);
    forgetInstanceCredentials(context, request.params.id);
    return { id: request.params.id, deleted: true };
  });
}
