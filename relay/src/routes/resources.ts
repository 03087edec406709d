// The resource API (DESIGN 6): every exposed table as /{name} (list, insert) and, with a
// single-column primary key, /{name}/{id} (get, change, delete). The pipeline of every call is
// visible here: authenticate -> table from the schema cache -> plan (pure) -> SQL (pure) ->
// execute on the instance's pool -> respond with the JSON text PostgreSQL built.
//
// Tables whose name is a reserved path segment (objects, ping, instances, tunnels, resources),
// and in fact every table, are also reachable under /resources/{name}.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_BASE, type EngineDeps, engineContext, resourceRuntime } from '../engine/context.js';
import { type InstanceRuntime, withSchemaRetry } from '../engine/instances.js';
import { lazyChildLogger } from '../engine/lazy-logger.js';
import { singleKey } from '../engine/metadata.js';
import { collectionPath, RESERVED_NAMES } from '../engine/openapi.js';
import { finishList, type ListRow } from '../engine/paging.js';
import type { ListQuery } from '../engine/plan.js';
import type { TableInfo } from '../engine/schema.js';
import {
  buildDeleteSql,
  buildGetSql,
  buildInsertSql,
  buildUpdateSql,
  type SqlQuery,
  textQuery,
} from '../engine/sql.js';
import { parseRowBody } from '../engine/values.js';
import { ApiError } from '../errors.js';

type NameParams = { name: string };
type RowParams = { name: string; id: string };

async function requireTable(runtime: InstanceRuntime, name: string): Promise<TableInfo> {
  const table = await runtime.schema.table(name);
  if (!table) {
    throw new ApiError(
      'not_found',
      `Unknown object "${name}": GET ${API_BASE}/objects lists the tables and views of this instance.`,
    );
  }
  return table;
}

function keyOf(table: TableInfo): string {
  const key = singleKey(table);
  if (key) return key;
  const why =
    table.kind === 'view'
      ? `"${table.name}" is a view`
      : table.primaryKey.length === 0
        ? `table "${table.name}" has no primary key`
        : `table "${table.name}" has a composite primary key (${table.primaryKey.join(', ')})`;
  // HTTP wants an Allow header with a 405: no method exists on /{name}/{id} here.
  throw new ApiError(
    'method_not_allowed',
    `${why}: by-id calls need a single-column primary key; use GET ${API_BASE}${collectionPath(table.name)}?where=... instead.`,
    undefined,
    { headers: { allow: '' } },
  );
}

function writableTable(table: TableInfo): void {
  if (table.kind === 'view') {
    throw new ApiError('method_not_allowed', `"${table.name}" is a view: it is read-only (GET only).`, undefined, {
      headers: { allow: 'GET, HEAD' },
    });
  }
}

function sendRow(reply: FastifyReply, row: string): void {
  reply.header('elements-returned-count', 1).type('application/json; charset=utf-8').send(row);
}

function notFoundRow(table: TableInfo, id: string): ApiError {
  return new ApiError('not_found', `No row of "${table.name}" has ${singleKey(table)} = ${JSON.stringify(id)}.`);
}

/** Runs one engine query: rows as arrays of PostgreSQL's text ([row JSON, cursor?]), nothing parsed by pg. */
async function textRows(runtime: InstanceRuntime, sql: SqlQuery): Promise<ListRow[]> {
  const result = await runtime.pool.query<string[]>(textQuery(sql));
  return result.rows as unknown as ListRow[];
}

/** The one row a by-id call or a write returns, or 404. */
async function oneRow(runtime: InstanceRuntime, sql: SqlQuery, missing: () => Error): Promise<string> {
  const rows = await textRows(runtime, sql);
  if (!rows[0]) throw missing();
  return rows[0][0];
}

/**
 * Runs one call: table lookup, planning and SQL inside the schema retry, so that a stale cache
 * (a table or column added since the last refresh) is reloaded and the call tried once more.
 */
async function run<T>(runtime: InstanceRuntime, name: string, work: (table: TableInfo) => Promise<T>): Promise<T> {
  return withSchemaRetry(runtime, async () => {
    const table = runtime.schema.freshTable(name) ?? (await requireTable(runtime, name));
    try {
      return await work(table);
    } catch (err) {
      // A 400 while planning may come from a column the cache does not know yet.
      if (err instanceof ApiError && err.status === 400 && (await runtime.schema.refreshOnMiss())) {
        return work(await requireTable(runtime, name));
      }
      throw err;
    }
  });
}

export function resourceRoutes(app: FastifyInstance, deps: EngineDeps): void {
  const context = engineContext(app, deps);

  app.register(async (scope) => {
    // Request loggers are built when a line is written, not for every call (lazy-logger.ts).
    scope.setChildLoggerFactory(lazyChildLogger);
    // Bodies stay text: int8 and numeric must reach PostgreSQL with every digit (values.ts).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(/^application\/([\w.+-]+\+)?json$/i, { parseAs: 'string' }, (_req, body, done) => {
      done(null, body);
    });

    const checkReserved = (name: string, aliased: boolean) => {
      if (!aliased && RESERVED_NAMES.has(name)) {
        throw new ApiError(
          'not_found',
          `No such route. A table named "${name}" is reached at ${API_BASE}/resources/${encodeURIComponent(name)}.`,
        );
      }
    };

    for (const [prefix, aliased] of [
      [API_BASE, false],
      [`${API_BASE}/resources`, true],
    ] as const) {
      scope.get<{ Params: NameParams; Querystring: ListQuery }>(`${prefix}/:name`, async (request, reply) => {
        const { name } = request.params;
        checkReserved(name, aliased);
        const runtime = await resourceRuntime(context, request);
        const page = await run(runtime, name, async (table) => {
          const { plan, sql } = context.plans.plan(table, request.query ?? {}, runtime.config.filterResponseNulls);
          return finishList(plan, await textRows(runtime, sql));
        });
        reply.header('elements-returned-count', page.returnedCount);
        if (page.nextPageToken) reply.header('elements-next-page-token', page.nextPageToken);
        reply.type('application/json; charset=utf-8').send(page.body);
      });

      scope.post<{ Params: NameParams }>(`${prefix}/:name`, async (request, reply) => {
        const { name } = request.params;
        checkReserved(name, aliased);
        const runtime = await resourceRuntime(context, request);
        const row = await run(runtime, name, async (table) => {
          writableTable(table);
          const input = parseRowBody(bodyText(request));
          const sql = buildInsertSql(table, input, { stripNulls: runtime.config.filterResponseNulls });
          return oneRow(runtime, sql, () => new Error('INSERT returned no row (a trigger skipped it?)'));
        });
        sendRow(reply, row);
      });

      scope.get<{ Params: RowParams }>(`${prefix}/:name/:id`, async (request, reply) => {
        const { name, id } = request.params;
        checkReserved(name, aliased);
        const runtime = await resourceRuntime(context, request);
        const row = await run(runtime, name, async (table) => {
          keyOf(table);
          const sql = buildGetSql(table, id, { stripNulls: runtime.config.filterResponseNulls });
          return oneRow(runtime, sql, () => notFoundRow(table, id));
        });
        sendRow(reply, row);
      });

      scope.patch<{ Params: RowParams }>(`${prefix}/:name/:id`, async (request, reply) => {
        const { name, id } = request.params;
        checkReserved(name, aliased);
        const runtime = await resourceRuntime(context, request);
        const row = await run(runtime, name, async (table) => {
          keyOf(table);
          const input = parseRowBody(bodyText(request));
          const sql = buildUpdateSql(table, id, input, { stripNulls: runtime.config.filterResponseNulls });
          return oneRow(runtime, sql, () => notFoundRow(table, id));
        });
        sendRow(reply, row);
      });

      scope.delete<{ Params: RowParams }>(`${prefix}/:name/:id`, async (request, reply) => {
        const { name, id } = request.params;
        checkReserved(name, aliased);
        const runtime = await resourceRuntime(context, request);
        const row = await run(runtime, name, async (table) => {
          keyOf(table);
          const sql = buildDeleteSql(table, id, { stripNulls: runtime.config.filterResponseNulls });
          return oneRow(runtime, sql, () => notFoundRow(table, id));
        });
        sendRow(reply, row);
      });
    }
  });
}

function bodyText(request: FastifyRequest): string {
  if (request.body === undefined || request.body === null) {
    throw new ApiError('invalid_json', 'The request needs a JSON object body (Content-Type: application/json).');
  }
  return typeof request.body === 'string' ? request.body : String(request.body);
}
