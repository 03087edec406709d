// The tunnels API (DESIGN 5.3): create (the token is shown only then), list and get with the
// live status of their agents, rotate the token, delete. Every call is authenticated with
// User + Organization secrets; another organization's tunnel is 404, never 403.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { API_BASE, type AppDeps } from '../app.js';
import { authenticate } from '../auth/credentials.js';
import { DEFAULTS } from '../config.js';
import { ApiError } from '../errors.js';
import { TUNNEL_NAME as NAME_PATTERN, type Tunnel, TunnelNameTakenError } from '../store/tunnels.js';

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type IdParams = { id: string };

function parseName(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('bad_request', 'expected a JSON object such as {"name": "plant-db"}');
  }
  const { name } = body as { name?: unknown };
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || UUID_SHAPE.test(name)) {
    throw new ApiError(
      'invalid_parameter',
      'name: 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit (and not shaped like an id)',
    );
  }
  return name;
}

export function tunnelView(tunnel: Tunnel, deps: Pick<AppDeps, 'hub'>) {
  const live = deps.hub.status(tunnel.id);
  return {
    id: tunnel.id,
    name: tunnel.name,
    createdAt: tunnel.createdAt.toISOString(),
    status: live.status,
    agents: live.agents,
  };
}

export function tunnelRoutes(app: FastifyInstance, deps: AppDeps): void {
  const { store, tokens, hub } = deps;

  async function findTunnel(request: FastifyRequest<{ Params: IdParams }>): Promise<Tunnel> {
    const { orgId } = await authenticate(request, store);
    const tunnel = await store.tunnels.find(orgId, request.params.id);
    if (!tunnel) {
      throw new ApiError(
        'not_found',
        `no tunnel "${request.params.id}" in this organization (GET ${API_BASE}/tunnels lists them)`,
      );
    }
    return tunnel;
  }

  app.post(`${API_BASE}/tunnels`, async (request) => {
    const { orgId } = await authenticate(request, store);
    const name = parseName(request.body);
    // A bound on what one organization can make the relay keep (rows, status work per list).
    // Not transactional: concurrent creations may overshoot by a few, which is harmless.
    const max = deps.config.maxTunnelsPerOrg ?? DEFAULTS.maxTunnelsPerOrg;
    if ((await store.tunnels.count(orgId)) >= max) {
      throw new ApiError(
        'conflict',
        `this organization already has ${max} tunnels, the most allowed: delete unused ones`,
      );
    }
    let tunnel: Tunnel;
    try {
      // The placeholder jti is replaced by issue() before anyone sees a token.
      tunnel = await store.tunnels.create(orgId, name, 'unissued');
    } catch (err) {
      if (err instanceof TunnelNameTakenError) throw new ApiError('conflict', `${err.message}: choose another name`);
      throw err;
    }
    const token = await tokens.issue(tunnel);
    request.log.info({ tunnelId: tunnel.id, name }, 'tunnel created');
    return { id: tunnel.id, name: tunnel.name, token, createdAt: tunnel.createdAt.toISOString() };
  });

  app.get(`${API_BASE}/tunnels`, async (request) => {
    const { orgId } = await authenticate(request, store);
    return (await store.tunnels.list(orgId)).map((t) => tunnelView(t, deps));
  });

  app.get<{ Params: IdParams }>(`${API_BASE}/tunnels/:id`, async (request) =>
    tunnelView(await findTunnel(request), deps),
  );

  app.post<{ Params: IdParams }>(`${API_BASE}/tunnels/:id/token`, async (request) => {
    const tunnel = await findTunnel(request);
    const token = await tokens.issue(tunnel);
    hub.disconnectTunnel(tunnel.id, 'token rotated');
    request.log.info({ tunnelId: tunnel.id }, 'tunnel token rotated; agents using the old token disconnected');
    return { token };
  });

  app.delete<{ Params: IdParams }>(`${API_BASE}/tunnels/:id`, async (request) => {
    const tunnel = await findTunnel(request);
    const inUse = (message: string) =>
      new ApiError('conflict', `${message}: delete or change those instances first (GET ${API_BASE}/instances)`);
    const used = await store.tunnels.instancesUsing(tunnel.id);
    if (used > 0) throw inUse(`${used} instance${used === 1 ? ' uses' : 's use'} tunnel "${tunnel.name}"`);
    try {
      await store.tunnels.delete(tunnel.orgId, tunnel.id);
    } catch (err) {
      // An instance created between the check and the delete (foreign key).
      if ((err as { code?: string }).code === '23503') throw inUse(`instances use tunnel "${tunnel.name}"`);
      throw err;
    }
    hub.disconnectTunnel(tunnel.id, 'tunnel deleted');
    request.log.info({ tunnelId: tunnel.id }, 'tunnel deleted; its token is revoked');
    return { id: tunnel.id, deleted: true };
  });
}
