import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors.js';
import type { ColumnInfo } from './schema.js';
import { isOrderable, outputExpr, parseRowBody, quoteIdent, valueSchema } from './values.js';

function column(name: string, type: string, extra: Partial<ColumnInfo> = {}): ColumnInfo {
  return { name, type, nativeType: type, nullable: true, hasDefault: false, readOnly: false, isArray: false, ...extra };
}

describe('quoting', () => {
  it('always quotes identifiers, doubling quotes inside', () => {
    expect(quoteIdent('id')).toBe('"id"');
    expect(quoteIdent('Odd "Name"; DROP')).toBe('"Odd ""Name""; DROP"');
    expect(() => quoteIdent('a\0b')).toThrow(ApiError);
  });
});

describe('parseRowBody', () => {
  it('keeps the exact text and lists the keys', () => {
    const text = '{"i8": 9007199254740993, "n": 1.50, "Odd \\"k\\"": null}';
    expect(parseRowBody(text)).toEqual({ keys: ['i8', 'n', 'Odd "k"'], json: text });
  });

  it('accepts an already parsed object (digits beyond 2^53 are then already lost)', () => {
    expect(parseRowBody({ a: 1, b: 'x' })).toEqual({ keys: ['a', 'b'], json: '{"a":1,"b":"x"}' });
  });

  it('refuses anything but one JSON object with 400 invalid_json', () => {
    for (const text of ['', 'nul', '[1]', '"x"', '1', 'null', '{"a":1} {"b":2}', "{'a':1}"]) {
      let caught: unknown;
      try {
        parseRowBody(text);
      } catch (err) {
        caught = err;
      }
      expect(caught, text).toBeInstanceOf(ApiError);
      expect([(caught as ApiError).status, (caught as ApiError).code]).toEqual([400, 'invalid_json']);
    }
  });
});

describe('encodings', () => {
  it('bytea leaves as one base64 line; other types as PostgreSQL writes them to JSON', () => {
    expect(outputExpr(column('b', 'bytea'), 't')).toBe(`translate(encode(t."b", 'base64'), E'\\n', '')`);
    expect(outputExpr(column('n', 'int8'), 't')).toBe('t."n"');
  });

  it('json, geometric and xml columns cannot be sorted', () => {
    expect(isOrderable(column('j', 'json'))).toBe(false);
    expect(isOrderable(column('j', '_json', { isArray: true }))).toBe(false);
    expect(isOrderable(column('j', 'jsonb'))).toBe(true);
    expect(isOrderable(column('p', 'point'))).toBe(false);
    expect(isOrderable(column('t', '_text', { isArray: true }))).toBe(true);
  });

  it('value schemas say how each type is written', () => {
    expect(valueSchema(column('a', 'int8'))).toEqual({ type: 'integer', format: 'int64' });
    expect(valueSchema(column('a', 'numeric'))).toEqual({ type: 'number', format: 'decimal' });
    expect(valueSchema(column('a', 'bytea'))).toEqual({ type: 'string', format: 'byte' });
    expect(valueSchema(column('a', 'timestamptz'))).toEqual({ type: 'string', format: 'date-time' });
    expect(valueSchema(column('a', 'jsonb'))).toEqual({});
    expect(valueSchema(column('a', 'interval'))).toEqual({ type: 'string' });
    expect(valueSchema(column('a', '_int4', { isArray: true }))).toEqual({
      type: 'array',
      items: { type: 'integer', format: 'int32' },
    });
    expect(valueSchema(column('a', 'mood', { enumValues: ['sad', 'ok'] }))).toEqual({
      type: 'string',
      enum: ['sad', 'ok'],
    });
  });
});
