import { describe, expect, it } from 'vitest';
import {
  encodeOpenHeader,
  OPEN_HEADER_MAX,
  OpenHeaderReader,
  parseOpenReply,
  parseOpenRequest,
} from './open-header.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('encodeOpenHeader', () => {
  it('writes a 2-byte big-endian length then the UTF-8 JSON', () => {
    const bytes = encodeOpenHeader({ v: 1, host: '10.0.0.5', port: 5432 });
    const json = '{"v":1,"host":"10.0.0.5","port":5432}';
    expect(bytes.subarray(0, 2)).toEqual(hex('0025'));
    expect(json.length).toBe(0x25);
    expect(bytes.subarray(2).toString('utf8')).toBe(json);
    expect(encodeOpenHeader({ ok: true })).toEqual(Buffer.concat([hex('000b'), Buffer.from('{"ok":true}')]));
  });

  it('counts bytes, not characters', () => {
    const bytes = encodeOpenHeader({ host: 'é' });
    expect(bytes.readUInt16BE(0)).toBe(bytes.length - 2);
    expect(bytes.readUInt16BE(0)).toBe('{"host":"é"}'.length + 1);
  });

  it('refuses a body larger than 4096 bytes', () => {
    expect(OPEN_HEADER_MAX).toBe(4096);
    const fits = 'x'.repeat(4096 - '{"h":""}'.length);
    expect(encodeOpenHeader({ h: fits }).length).toBe(4098);
    expect(() => encodeOpenHeader({ h: `${fits}x` })).toThrow(/1\.\.4096/);
  });
});

describe('OpenHeaderReader', () => {
  const header = encodeOpenHeader({ v: 1, host: 'db.internal', port: 5432 });
  const payload = Buffer.from('payload bytes');
  const wire = Buffer.concat([header, payload]);

  it('decodes a header given in one chunk and returns the bytes that follow', () => {
    const out = new OpenHeaderReader().push(wire);
    expect(out?.value).toEqual({ v: 1, host: 'db.internal', port: 5432 });
    expect(out?.rest).toEqual(payload);
  });

  it('gives the same result for a split at every offset', () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const reader = new OpenHeaderReader();
      const first = reader.push(wire.subarray(0, cut));
      if (cut >= header.length) {
        expect(first?.value).toEqual({ v: 1, host: 'db.internal', port: 5432 });
        expect(first?.rest).toEqual(wire.subarray(header.length, cut));
        continue;
      }
      expect(first).toBeUndefined();
      const second = reader.push(wire.subarray(cut));
      expect(second?.value).toEqual({ v: 1, host: 'db.internal', port: 5432 });
      expect(second?.rest).toEqual(payload);
    }
  });

  it('decodes one byte at a time', () => {
    const reader = new OpenHeaderReader();
    let out: ReturnType<OpenHeaderReader['push']>;
    let i = 0;
    for (; i < header.length; i++) {
      out = reader.push(header.subarray(i, i + 1));
      if (out) break;
    }
    expect(i).toBe(header.length - 1);
    expect(out!.value).toEqual({ v: 1, host: 'db.internal', port: 5432 });
    expect(out!.rest.length).toBe(0);
  });

  it('rejects a zero length, an oversize length, bad UTF-8 and bad JSON', () => {
    expect(() => new OpenHeaderReader().push(hex('0000'))).toThrow(/length 0/);
    expect(() => new OpenHeaderReader().push(hex('1001'))).toThrow(/length 4097/);
    expect(() => new OpenHeaderReader().push(hex('ffff'))).toThrow(/length 65535/);
    expect(() => new OpenHeaderReader().push(hex('0003 22 ff 22'))).toThrow(/UTF-8/);
    expect(() => new OpenHeaderReader().push(Buffer.concat([hex('0002'), Buffer.from('{x')]))).toThrow(/JSON/);
    // The length alone is enough to reject: no waiting for 65535 bytes that will never come.
    const reader = new OpenHeaderReader();
    expect(reader.push(hex('10'))).toBeUndefined();
    expect(() => reader.push(hex('01'))).toThrow(/length 4097/);
  });

  it('errors have code ERR_OPEN_HEADER', () => {
    try {
      new OpenHeaderReader().push(hex('0000'));
      expect.unreachable();
    } catch (err) {
      expect((err as { code: string }).code).toBe('ERR_OPEN_HEADER');
    }
  });
});

describe('parseOpenRequest / parseOpenReply', () => {
  it('accepts a well-formed request and rejects the rest', () => {
    expect(parseOpenRequest({ v: 1, host: 'a', port: 1 })).toEqual({ v: 1, host: 'a', port: 1 });
    expect(parseOpenRequest({ v: 1, host: '::1', port: 65535, extra: 1 })).toEqual({ v: 1, host: '::1', port: 65535 });
    for (const bad of [
      null,
      [],
      'x',
      { v: 2, host: 'a', port: 1 },
      { v: 1, host: '', port: 1 },
      { v: 1, host: 5, port: 1 },
      { v: 1, host: 'a', port: 0 },
      { v: 1, host: 'a', port: 65536 },
      { v: 1, host: 'a', port: 1.5 },
      { v: 1, host: 'a', port: '5432' },
    ]) {
      expect(() => parseOpenRequest(bad), JSON.stringify(bad)).toThrow();
    }
  });

  it('reads replies, keeping the agent code and message', () => {
    expect(parseOpenReply({ ok: true })).toEqual({ ok: true });
    expect(parseOpenReply({ ok: false, code: 'not_allowed', message: 'nope' })).toEqual({
      ok: false,
      code: 'not_allowed',
      message: 'nope',
    });
    // An unknown code from a newer agent still fails the open, as 'unreachable'.
    expect(parseOpenReply({ ok: false, code: 'new_thing' })).toMatchObject({ ok: false, code: 'unreachable' });
    expect(() => parseOpenReply({})).toThrow();
    expect(() => parseOpenReply([])).toThrow();
  });
});
