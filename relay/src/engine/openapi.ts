// The OpenAPI 3.1 document of one instance, generated from its schema cache: every exposed
// table and view, its fields and their JSON types, and only the routes it really has (by-id
// routes for a single-column primary key, writes for tables, list for everything).
import { columnSchema, isRequired, singleKey } from './metadata.js';
import type { TableInfo } from './schema.js';

/** Path segments taken by the platform and engine routes; tables named so use /resources/{name}. */
export const RESERVED_NAMES = new Set(['objects', 'ping', 'instances', 'tunnels', 'resources']);

/** The path under the API base of a table's collection (URL-encoded; reserved names under /resources). */
export function collectionPath(name: string): string {
  const encoded = encodeURIComponent(name);
  return RESERVED_NAMES.has(name) ? `/resources/${encoded}` : `/${encoded}`;
}

const errorResponse = { $ref: '#/components/responses/Error' };

const listParameters = [
  {
    name: 'where',
    in: 'query',
    schema: { type: 'string' },
    description: "CEQL filter, e.g. name = 'Jon' AND age >= 30",
  },
  { name: 'fields', in: 'query', schema: { type: 'string' }, description: 'Comma-separated columns to return' },
  { name: 'orderBy', in: 'query', schema: { type: 'string' }, description: 'col [asc|desc], ...' },
  { name: 'pageSize', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
  { name: 'page', in: 'query', schema: { type: 'integer', minimum: 1 }, description: '1-based page number' },
  {
    name: 'nextPage',
    in: 'query',
    schema: { type: 'string' },
    description: 'Token from elements-next-page-token; only valid with the same where/fields/orderBy/pageSize',
  },
];

const listHeaders = {
  'elements-returned-count': { schema: { type: 'integer' }, description: 'Rows in this page' },
  'elements-next-page-token': {
    schema: { type: 'string' },
    description: 'Present only when more rows exist: pass it as nextPage',
  },
  'elements-request-id': { schema: { type: 'string' } },
};

function schemaName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

export function buildOpenApi(
  tables: Iterable<TableInfo>,
  info: { title: string; serverUrl: string; description?: string },
): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const table of tables) {
    const ref = schemaName(table.name);
    const rowRef = { $ref: `#/components/schemas/${ref}` };
    const properties: Record<string, unknown> = {};
    for (const column of table.columns) properties[column.name] = columnSchema(column);
    schemas[ref] = { type: 'object', title: table.name, properties };
    const writable = table.kind === 'table';
    if (writable) {
      schemas[`${ref}.input`] = {
        type: 'object',
        properties: Object.fromEntries(table.columns.filter((c) => !c.readOnly).map((c) => [c.name, columnSchema(c)])),
        required: table.columns.filter(isRequired).map((c) => c.name),
      };
    }
    const tag = table.name;
    const base = collectionPath(table.name);
    const rowResponse = { description: 'The row', content: { 'application/json': { schema: rowRef } } };
    const collection: Record<string, unknown> = {
      get: {
        tags: [tag],
        summary: `List ${table.kind === 'view' ? 'view' : 'table'} ${table.name}`,
        parameters: listParameters,
        responses: {
          200: {
            description: 'One page of rows',
            headers: listHeaders,
            content: { 'application/json': { schema: { type: 'array', items: rowRef } } },
          },
          400: errorResponse,
          default: errorResponse,
        },
      },
    };
    if (writable) {
      collection.post = {
        tags: [tag],
        summary: `Insert a row into ${table.name}`,
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}.input` } } },
        },
        responses: { 200: rowResponse, 400: errorResponse, 409: errorResponse, default: errorResponse },
      };
    }
    paths[base] = collection;
    const key = singleKey(table);
    if (key) {
      const keyColumn = table.columns.find((c) => c.name === key);
      const idParam = {
        name: 'id',
        in: 'path',
        required: true,
        description: `Value of the primary key "${key}"`,
        schema: keyColumn
          ? { ...columnSchema({ ...keyColumn, nullable: false }), readOnly: undefined }
          : { type: 'string' },
      };
      paths[`${base}/{id}`] = {
        parameters: [idParam],
        get: {
          tags: [tag],
          summary: `Get one row of ${table.name}`,
          responses: { 200: rowResponse, 404: errorResponse, default: errorResponse },
        },
        patch: {
          tags: [tag],
          summary: `Change some columns of one row of ${table.name}`,
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { ...(schemas[`${ref}.input`] as object), required: [] } } },
          },
          responses: { 200: rowResponse, 404: errorResponse, 409: errorResponse, default: errorResponse },
        },
        delete: {
          tags: [tag],
          summary: `Delete one row of ${table.name}; answers the deleted row`,
          responses: { 200: rowResponse, 404: errorResponse, default: errorResponse },
        },
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: info.title, version: '1', description: info.description },
    servers: [{ url: info.serverUrl }],
    security: [{ elementAuth: [] }],
    paths,
    components: {
      securitySchemes: {
        elementAuth: {
          type: 'apiKey',
          in: 'header',
          name: 'Authorization',
          description: 'User <user secret>, Organization <org secret>, Element <element token>',
        },
      },
      responses: {
        Error: {
          description: 'Error',
          headers: { 'elements-request-id': { schema: { type: 'string' } } },
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['requestId', 'message', 'code'],
                properties: {
                  requestId: { type: 'string' },
                  message: { type: 'string' },
                  code: { type: 'string' },
                  providerMessage: { type: 'string' },
                },
              },
            },
          },
        },
      },
      schemas,
    },
  };
}
