import { describe, expect, it } from 'vitest';
import { tableMetadata } from './metadata.js';
import { buildOpenApi, collectionPath } from './openapi.js';
import type { ColumnInfo, TableInfo } from './schema.js';

const col = (name: string, type: string, extra: Partial<ColumnInfo> = {}): ColumnInfo => ({
  name,
  type,
  nativeType: type,
  nullable: true,
  hasDefault: false,
  readOnly: false,
  isArray: false,
  ...extra,
});

const people: TableInfo = {
  schema: 'public',
  name: 'people',
  kind: 'table',
  primaryKey: ['id'],
  columns: [
    col('id', 'int4', { nullable: false, hasDefault: true }),
    col('email', 'text', { nullable: false }),
    col('len', 'int4', { readOnly: true, hasDefault: true }),
    col('tags', '_text', { isArray: true }),
  ],
};
const pair: TableInfo = { ...people, name: 'pair', primaryKey: ['id', 'email'] };
const view: TableInfo = {
  ...people,
  name: 'v',
  kind: 'view',
  primaryKey: [],
  columns: people.columns.map((c) => ({ ...c, readOnly: true })),
};
const reserved: TableInfo = { ...people, name: 'objects' };

describe('OpenAPI document', () => {
  const doc = buildOpenApi([people, pair, view, reserved, { ...people, name: 'Mixed Case' }], {
    title: 't',
    serverUrl: 'http://x/elements/api-v2',
  }) as {
    openapi: string;
    paths: Record<string, Record<string, unknown>>;
    // biome-ignore lint/suspicious/noExplicitAny: JSON Schema objects, read in assertions
    components: { schemas: Record<string, any> };
  };

  it('has only the routes each table really has', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/Mixed%20Case',
        '/Mixed%20Case/{id}',
        '/pair',
        '/people',
        '/people/{id}',
        '/resources/objects',
        '/resources/objects/{id}',
        '/v',
      ].sort(),
    );
    expect(Object.keys(doc.paths['/v']!)).toEqual(['get']);
    expect(Object.keys(doc.paths['/pair']!)).toEqual(['get', 'post']);
  });

  it('describes fields: types, nullability, read-only, required on insert', () => {
    const schema = doc.components.schemas.people;
    expect(schema.properties.email.type).toBe('string');
    expect(schema.properties.tags).toMatchObject({ type: ['array', 'null'] });
    expect(schema.properties.len.readOnly).toBe(true);
    expect(doc.components.schemas['people.input'].required).toEqual(['email']);
    expect(doc.components.schemas['people.input'].properties).not.toHaveProperty('len');
  });

  it('collectionPath encodes names and moves reserved ones under /resources', () => {
    expect(collectionPath('a b"c')).toBe('/a%20b%22c');
    expect(collectionPath('ping')).toBe('/resources/ping');
  });
});

describe('tableMetadata', () => {
  it('gives the single key or null', () => {
    expect(tableMetadata(people)).toMatchObject({ primaryKey: 'id' });
    expect(tableMetadata(pair)).toMatchObject({ primaryKey: null, primaryKeyColumns: ['id', 'email'] });
    expect(tableMetadata(view)).toMatchObject({ primaryKey: null, kind: 'view' });
  });
  it('flags required, read-only and createable fields', () => {
    const fields = tableMetadata(people).fields as Record<string, unknown>[];
    expect(fields.find((f) => f.vendorPath === 'email')).toMatchObject({
      vendorRequired: true,
      createable: true,
      type: 'string',
    });
    expect(fields.find((f) => f.vendorPath === 'id')).toMatchObject({ vendorRequired: false, type: 'integer' });
    expect(fields.find((f) => f.vendorPath === 'len')).toMatchObject({
      vendorReadOnly: true,
      createable: false,
      updateable: false,
    });
    expect(fields.find((f) => f.vendorPath === 'tags')).toMatchObject({ type: 'array' });
  });
});
