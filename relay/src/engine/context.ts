// The engine's state inside one relay app, shared by the instance, object, resource and docs
// routes: the instances store, the live runtimes (pools + schema caches) and the key that
// signs page tokens. Built once per app from its dependencies, closed with the app.
import * as crypto from 'node:crypto';
import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticate } from '../auth/credentials.js';
import type { MasterKey } from '../auth/crypto.js';
import { ApiError } from '../errors.js';
import { FailureRateLimiter } from '../hub/rate-limit.js';
import type { Store } from '../store/db.js';
import { InstanceStore } from '../store/instances.js';
import { type InstanceRuntime, InstanceRuntimes } from './instances.js';
import { ListPlanCache } from './plan-cache.js';
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
  /** List plans and their SQL, remembered per table and parameters (signed with pageTokenKey). */
  plans: ListPlanCache;
}

const contexts = new WeakMap<FastifyInstance, EngineContext>();

/** The engine context of `app` (created on first call; its pools close with the app). */
export function engineContext(app: FastifyInstance, deps: EngineDeps): EngineContext {
  let context = contexts.get(app);
  if (context) return context;
  const runtimes = new InstanceRuntimes({ tunnelSocket: deps.tunnelSocket, logger: deps.logger });
  const pageTokenKey = createHmac('sha256', deps.masterKey.toBase64()).update('g2c page token v1').digest();
  context = {
    deps,
    instances: new InstanceStore(deps.store.pool, deps.masterKey),
    runtimes,
    pageTokenKey,
    plans: new ListPlanCache(pageTokenKey),
  };
  contexts.set(app, context);
  app.addHook('onClose', async () => {
    await runtimes.close();
  });
  return context;
}

/** Failed authentications allowed per client address and window before 429 (platform and resource calls of the engine). */
export const AUTH_FAILURE_LIMIT = { failures: 30, windowMs: 60_000 };

const limiters = new WeakMap<EngineContext, FailureRateLimiter>();

/**
 * Runs an authentication for `request`: an address that failed too often recently gets 429
 * rate_limited (with Retry-After) without a store lookup; a 401 counts as a failure, a success
 * forgets the address's failures.
 */
async function limited<T>(context: EngineContext, request: FastifyRequest, check: () => Promise<T>): Promise<T> {
  let limiter = limiters.get(context);
  if (!limiter) {
    limiter = new FailureRateLimiter(AUTH_FAILURE_LIMIT);
    limiters.set(context, limiter);
  }
  const address = request.ip;
  const wait = limiter.retryAfter(address);
  if (wait > 0) {
    throw new ApiError(
      'rate_limited',
      `Too many failed authentications from ${address}; retry in ${wait} s.`,
      undefined,
      {
        headers: { 'retry-after': String(wait) },
      },
    );
  }
  try {
    const result = await check();
    limiter.succeed(address);
    return result;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) limiter.fail(address);
    throw err;
  }
}

/** Authenticates a platform call (User, Organization), rate-limited like resource calls. */
export function platformPrincipal(
  context: EngineContext,
  request: FastifyRequest,
): Promise<{ orgId: string; userId: string }> {
  return limited(context, request, () => authenticate(request, context.deps.store));
}

/** How long a verified resource credential is trusted without asking the store again. */
export const PRINCIPAL_CACHE = { ttlMs: 5_000, maxEntries: 10_000 };

interface CachedPrincipal {
  orgId: string;
  instanceId: string;
  expiresAt: number;
}

// Resource calls are the hot path: checking User, Organization and Element against the store
// costs two queries per call, more than the call itself. A verified header is remembered for
// a few seconds, keyed by its SHA-256 (no secret is kept in memory); failures are never
// remembered. Deleting an instance forgets its entries here at once; another relay sharing
// the store stops accepting its token within ttlMs.
const principalCaches = new WeakMap<EngineContext, Map<string, CachedPrincipal>>();

function principalCache(context: EngineContext): Map<string, CachedPrincipal> {
  let cache = principalCaches.get(context);
  if (!cache) {
    cache = new Map();
    principalCaches.set(context, cache);
  }
  return cache;
}

/** Forgets every remembered credential of an instance (it was deleted or its token changed). */
export function forgetInstanceCredentials(context: EngineContext, instanceId: string): void {
  const cache = principalCache(context);
  for (const [key, entry] of cache) if (entry.instanceId === instanceId) cache.delete(key);
}

// crypto.hash (Node >= 20.12) digests without building a Hash object: ~3x cheaper per call.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash;
const sha256Base64 = oneShot
  ? (text: string) => oneShot('sha256', text, 'base64')
  : (text: string) => crypto.createHash('sha256').update(text).digest('base64');

function principalKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  return typeof header === 'string' ? sha256Base64(header) : undefined;
}

async function resourcePrincipal(
  context: EngineContext,
  request: FastifyRequest,
  key: string | undefined,
): Promise<CachedPrincipal> {
  const cache = principalCache(context);
  const now = Date.now();
  if (key) {
    const hit = cache.get(key);
    if (hit && hit.expiresAt > now) return hit;
    if (hit) cache.delete(key);
  }
  const principal = await limited(context, request, () => authenticate(request, context.deps.store, { element: true }));
  const entry = {
    orgId: principal.orgId,
    instanceId: principal.instanceId as string,
    expiresAt: now + PRINCIPAL_CACHE.ttlMs,
  };
  if (key) {
    if (cache.size >= PRINCIPAL_CACHE.maxEntries) cache.clear();
    cache.set(key, entry);
  }
  return entry;
}

/**
 * Authenticates a resource call (User, Organization, Element) and returns its instance's runtime.
 * The usual case (a credential verified a moment ago, its instance live and recently checked)
 * answers at once, without a promise.
 */
export function resourceRuntime(
  context: EngineContext,
  request: FastifyRequest,
): InstanceRuntime | Promise<InstanceRuntime> {
  const key = principalKey(request);
  const hit = key === undefined ? undefined : principalCache(context).get(key);
  if (hit && hit.expiresAt > Date.now()) {
    const runtime = context.runtimes.fresh(hit.instanceId);
    if (runtime && runtime.orgId === hit.orgId) return runtime;
  }
  return loadResourceRuntime(context, request, key);
}

async function loadResourceRuntime(
  context: EngineContext,
  request: FastifyRequest,
  key: string | undefined,
): Promise<InstanceRuntime> {
  const principal = await resourcePrincipal(context, request, key);
  const id = principal.instanceId;
  const runtime = await context.runtimes.get(id, () => context.instances.getById(id));
  if (!runtime || runtime.orgId !== principal.orgId) {
    forgetInstanceCredentials(context, id);
    throw new ApiError('unauthorized', 'The Element token is wrong or its instance was deleted.');
  }
  return runtime;
}
