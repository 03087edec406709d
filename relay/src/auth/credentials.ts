// Platform and resource credentials (DESIGN 5.2):
//   Authorization: User <user secret>, Organization <org secret>[, Element <element token>]
// Keywords are case-insensitive and the parts may come in any order. Any failure is a 401
// with the JSON error body; the message says what is wrong, never echoes a secret.
import { ApiError } from '../errors.js';
import type { Store } from '../store/db.js';
import { sha256 } from './crypto.js';

export interface Credentials {
  user: string;
  organization: string;
  element?: string;
}

export interface Principal {
  orgId: string;
  userId: string;
  instanceId?: string;
}

const SCHEME_HINT = 'expected Authorization: User <user secret>, Organization <organization secret>';
const KEYWORDS = { user: 'user', organization: 'organization', element: 'element' } as const;

function unauthorized(message: string): ApiError {
  return new ApiError('unauthorized', message);
}

/** Pure parse of the header value; throws ApiError 401. */
export function parseAuthorization(header: string | string[] | undefined): Credentials {
  const value = Array.isArray(header) ? header.join(', ') : header;
  if (!value?.trim()) throw unauthorized(`missing credentials: ${SCHEME_HINT}`);
  const parts: Partial<Record<keyof typeof KEYWORDS, string>> = {};
  for (const piece of value.split(',')) {
    const trimmed = piece.trim();
    if (!trimmed) continue;
    const match = /^([A-Za-z]+)\s+(\S+)$/.exec(trimmed);
    if (!match) throw unauthorized(`malformed credentials: ${SCHEME_HINT}`);
    const keyword = match[1]!.toLowerCase() as keyof typeof KEYWORDS;
    if (!(keyword in KEYWORDS)) {
      throw unauthorized(`unknown credential keyword "${match[1]!.slice(0, 20)}": ${SCHEME_HINT}`);
    }
    if (parts[keyword] !== undefined) throw unauthorized(`credential "${match[1]}" given twice`);
    parts[keyword] = match[2]!;
  }
  if (!parts.user || !parts.organization) {
    throw unauthorized(`both User and Organization secrets are required: ${SCHEME_HINT}`);
  }
  return { user: parts.user, organization: parts.organization, element: parts.element };
}

/**
 * Checks the request's credentials against the store. With `element: true` an element token
 * is required too and must belong to the same organization (the engine's `instances` table:
 * columns id, org_id, token_hash = hex SHA-256 of the token).
 */
export async function authenticate(
  request: { headers: Record<string, string | string[] | undefined> },
  store: Store,
  options: { element?: boolean } = {},
): Promise<Principal> {
  const credentials = parseAuthorization(request.headers.authorization);
  const principal = await store.orgs.authenticate(credentials.organization, credentials.user);
  if (!principal)
    throw unauthorized('the User or Organization secret is wrong (or they belong to different organizations)');
  if (!options.element) return principal;
  if (!credentials.element) {
    throw unauthorized(`missing element token: add ", Element <element token>" to the Authorization header`);
  }
  const { rows } = await store.pool.query<{ id: string }>(
    'select id from instances where org_id = $1 and token_hash = $2',
    [principal.orgId, sha256(credentials.element)],
  );
  if (!rows[0]) throw unauthorized('the Element token is wrong or its instance was deleted');
  return { ...principal, instanceId: rows[0].id };
}
