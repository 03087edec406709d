import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { encodeOpenHeader } from './open-header.js';
import { readOpenHeader } from './read-open-header.js';

describe('readOpenHeader', () => {
  it('reads the header and leaves the payload in the stream, in order', async () => {
    const stream = new PassThrough();
    const header = encodeOpenHeader({ ok: true });
    stream.write(Buffer.concat([header.subarray(0, 3)]));
    const value = readOpenHeader(stream);
    stream.write(Buffer.concat([header.subarray(3), Buffer.from('abc')]));
    stream.end(Buffer.from('def'));
    expect(await value).toEqual({ ok: true });
    const rest: Buffer[] = [];
    for await (const chunk of stream) rest.push(chunk as Buffer);
    expect(Buffer.concat(rest).toString()).toBe('abcdef');
  });

  it('rejects when the stream ends first, and on timeout', async () => {
    const ended = new PassThrough();
    const p = readOpenHeader(ended);
    ended.end(Buffer.from([0, 5, 1]));
    await expect(p).rejects.toMatchObject({ code: 'ERR_OPEN_HEADER' });

    const silent = new PassThrough();
    await expect(readOpenHeader(silent, { timeoutMs: 20 })).rejects.toMatchObject({
      code: 'ERR_OPEN_HEADER_TIMEOUT',
    });
  });

  it('rejects on a stream error and on a bad header', async () => {
    const failing = new PassThrough();
    const p = readOpenHeader(failing);
    failing.destroy(Object.assign(new Error('reset'), { code: 'ERR_STREAM_RESET' }));
    await expect(p).rejects.toMatchObject({ code: 'ERR_STREAM_RESET' });

    const bad = new PassThrough();
    const q = readOpenHeader(bad);
    bad.write(Buffer.from([0xff, 0xff]));
    await expect(q).rejects.toMatchObject({ code: 'ERR_OPEN_HEADER' });
  });
});
