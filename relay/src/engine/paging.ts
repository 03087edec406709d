// Page tokens and the shape of a list response. A token is opaque to clients:
//
//   base64url(JSON payload) "." base64url(first 16 bytes of HMAC-SHA256(binding, payload))
//
// payload = {"v":1,"k":[...],"n":n} (keyset: the text of the last row's order keys, and the
// number of rows before the next page) or {"v":1,"o":n} (offset). A keyset token that would be
// longer than MAX_TOKEN_LENGTH (sorting by long texts) becomes an offset token: a token must
// fit in a URL and a response header. `binding` is an HMAC (or, without a key, a SHA-256) of the
// canonical query (object, where, fields, orderBy, pageSize), so a token presented with
// any other query fails its check -> 400 invalid_page_token. With a key, clients cannot
// forge or alter tokens either (a forged cursor would only be another filter value anyway).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import pg from 'pg';
import { ApiError } from '../errors.js';
import type { ListPlan } from './plan.js';

export type PageCursor =
  | { kind: 'keyset'; values: (string | null)[]; position: number }
  | { kind: 'offset'; offset: number };

const MAC_BYTES = 16;
/** Longest keyset token handed out; longer ones become offset tokens. */
export const MAX_TOKEN_LENGTH = 2048;

/**
 * Bindings remembered per key: clients page through the same few queries over and over, and
 * an HMAC per call is a measurable part of a list call. Bounded (oldest first out); canonical
 * texts longer than BINDING_CACHE.maxCanonicalLength (long where clauses) are not kept.
 */
export const BINDING_CACHE = { maxEntries: 1000, maxCanonicalLength: 2048 };
const bindingCaches = new WeakMap<Uint8Array, Map<string, Uint8Array>>();

/** What tokens of the query whose canonical text is `canonical` are bound to. */
export function queryBinding(canonical: string, key?: string | Uint8Array): Uint8Array {
  if (key === undefined || key.length === 0) return createHash('sha256').update(canonical).digest();
  if (typeof key === 'string' || canonical.length > BINDING_CACHE.maxCanonicalLength) {
    return createHmac('sha256', key).update(canonical).digest();
  }
  let cache = bindingCaches.get(key);
  if (!cache) {
    cache = new Map();
    bindingCaches.set(key, cache);
  }
  let binding = cache.get(canonical);
  if (!binding) {
    binding = createHmac('sha256', key).update(canonical).digest();
    if (cache.size >= BINDING_CACHE.maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(canonical, binding);
  }
  return binding;
}

export function encodePageToken(cursor: PageCursor, binding: Uint8Array): string {
  const payload = Buffer.from(
    JSON.stringify(
      cursor.kind === 'keyset' ? { v: 1, k: cursor.values, n: cursor.position } : { v: 1, o: cursor.offset },
    ),
  ).toString('base64url');
  return `${payload}.${mac(payload, binding).toString('base64url')}`;
}

/** Reads a token of the query `binding` was made for; anything else -> 400 invalid_page_token. */
export function decodePageToken(token: string, binding: Uint8Array): PageCursor {
  const invalid = (why: string) =>
    new ApiError(
      'invalid_page_token',
      `The nextPage token ${why}. Send it unchanged, with the same where, fields, orderBy and pageSize as the request that returned it.`,
    );
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(token);
  if (!match) throw invalid('is malformed');
  const [, payload, signature] = match as unknown as [string, string, string];
  const expected = mac(payload, binding);
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw invalid('belongs to another query or was altered');
  }
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid('is malformed');
  }
  const d = data as { v?: unknown; k?: unknown; o?: unknown; n?: unknown };
  const position = d?.n === undefined ? 0 : d.n;
  if (
    d?.v === 1 &&
    Array.isArray(d.k) &&
    d.k.every((x) => x === null || typeof x === 'string') &&
    Number.isSafeInteger(position) &&
    (position as number) >= 0
  ) {
    return { kind: 'keyset', values: d.k as (string | null)[], position: position as number };
  }
  if (d?.v === 1 && Number.isSafeInteger(d.o) && (d.o as number) >= 0) {
    return { kind: 'offset', offset: d.o as number };
  }
  throw invalid('is malformed');
}

function mac(payload: string, binding: Uint8Array): Buffer {
  return createHmac('sha256', binding).update(payload).digest().subarray(0, MAC_BYTES);
}

/**
 * One row of buildListSql(plan) as pg returns it with `rowMode: 'array'` and TEXT_RESULTS
 * (sql.ts): the row's JSON text and, for keyset plans, its order keys as PostgreSQL's text[]
 * literal (or already parsed). Only the last row shown needs its keys, so only its literal is
 * parsed.
 */
export type ListRow = readonly [row: string, cursor?: string | (string | null)[] | null];

export interface ListPage {
  /** The JSON array, rows spliced in as PostgreSQL wrote them (never re-parsed). */
  body: string;
  /** For the elements-returned-count header. */
  returnedCount: number;
  /** For the elements-next-page-token header; absent when no row follows. */
  nextPageToken?: string;
}

/** pg's own parser of a text[] literal (oid 1009). */
const parseTextArray = (pg.types.getTypeParser as (oid: number, format: 'text') => (text: string) => (string | null)[])(
  1009,
  'text',
);

/** Shapes the rows of buildListSql(plan) (up to pageSize + 1 of them) into the response. */
export function finishList(plan: ListPlan, rows: readonly ListRow[]): ListPage {
  const more = rows.length > plan.pageSize;
  const count = more ? plan.pageSize : rows.length;
  let body = '[';
  for (let i = 0; i < count; i++) body += i === 0 ? (rows[i] as ListRow)[0] : `,${(rows[i] as ListRow)[0]}`;
  const result: ListPage = { body: `${body}]`, returnedCount: count };
  if (more) {
    const position = plan.position + plan.pageSize;
    let keyset: string | false = false;
    if (plan.paging === 'keyset') {
      const cursor = (rows[count - 1] as ListRow)[1];
      const values = typeof cursor === 'string' ? parseTextArray(cursor) : (cursor ?? []);
      keyset = encodePageToken({ kind: 'keyset', values, position }, plan.binding);
    }
    result.nextPageToken =
      keyset && keyset.length <= MAX_TOKEN_LENGTH
        ? keyset
        : encodePageToken({ kind: 'offset', offset: position }, plan.binding);
  }
  return result;
}
