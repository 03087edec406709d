// The engine's state inside one relay app, shared by the instance, object, resource and docs
// routes: the instances store, the live runtimes (pools + schema caches) and the key that
// signs page tokens. Built once per app from its dependencies, closed with the app.
import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticate } from '../auth/credentials.js';
import type { MasterKey } from '../auth/crypto.js';
import { ApiError } from '../errors.js';
import type { Store } from '../store/db.js';
import { InstanceStore } from '../store/instances.js';
import { type InstanceRuntime, InstanceRuntimes } from './instances.js';
import type { PoolLogger, TunnelSocketFactory } from './pools.js';

/** Base path of the platform and resource APIs. */
export const API_BASE = '/elements/api-v2';

/** What the engine needs from the relay app. */
export interface EngineDeps {
  store: Store;
  /** The master key: encrypts database passwords; page tokens are signed with a key derived from it. */
  masterKey: Pick<MasterKey, 'encrypt' | 'decrypt' | 'toBase64'>;
  /** Socket factory of a tunnel (hub/pg-socket.ts); absent: ground2cloud instances are refused. */
  tunnelSocket?: TunnelSocketFactory;
  logger?: PoolLogger;
}

export interface EngineContext {
  deps: EngineDeps;
  instances: InstanceStore;
  runtimes: InstanceRuntimes;
  /** HMAC key of nextPage tokens: the same on every relay sharing the master key. */
  pageTokenKey: Buffer;
}

const contexts = new WeakMap<FastifyInstance, EngineContext>();

/** The engine context of `app` (created on first call; its pools close with the app). */
export function engineContext(app: FastifyInstance, deps: EngineDeps): EngineContext {
  let context = contexts.get(app);
  if (context) return context;
  const runtimes = new InstanceRuntimes({ tunnelSocket: deps.tunnelSocket, logger: deps.logger });
  context = {
    deps,
    instances: new InstanceStore(deps.store.pool, deps.masterKey),
    runtimes,
    pageTokenKey: createHmac('sha256', deps.masterKey.toBase64()).update('g2c page token v1').digest(),
  };
  contexts.set(app, context);
  app.addHook('onClose', async () => {
    await runtimes.close();
  });
  return context;
}

/** Authenticates a resource call (User, Organization, Element) and returns its instance's runtime. */
export async function resourceRuntime(context: EngineContext, request: FastifyRequest): Promise<InstanceRuntime> {
  const principal = await authenticate(request, context.deps.store, { element: true });
  const id = principal.instanceId as string;
  const runtime = await context.runtimes.get(id, () => context.instances.get(principal.orgId, id));
  if (!runtime) throw new ApiError('unauthorized', 'The Element token is wrong or its instance was deleted.');
  return runtime;
}
