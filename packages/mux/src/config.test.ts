import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, verifyConfig } from './config.js';
import { MuxError } from './errors.js';

describe('verifyConfig', () => {
  it('fills in the documented defaults', () => {
    expect(verifyConfig()).toEqual({
      keepaliveIntervalMs: 10_000,
      keepaliveTimeoutMs: 25_000,
      acceptBacklog: 256,
      maxStreams: 1024,
      initialWindow: 256 * 1024,
      maxWindow: 16 * 1024 * 1024,
      maxSessionWindowGrowth: 64 * 1024 * 1024,
      maxFrameSize: 64 * 1024,
      streamHighWaterMark: 64 * 1024,
      maxControlBacklog: 1024 * 1024,
    });
    expect(verifyConfig()).toEqual(DEFAULT_CONFIG);
  });

  it('keeps given values', () => {
    const config = verifyConfig({ keepaliveIntervalMs: 0, maxStreams: 5, initialWindow: 512 * 1024 });
    expect(config.keepaliveIntervalMs).toBe(0);
    expect(config.maxStreams).toBe(5);
    expect(config.initialWindow).toBe(512 * 1024);
  });

  const bad: [string, Record<string, unknown>][] = [
    ['initialWindow', { initialWindow: 1000 }],
    ['maxWindow', { maxWindow: 100_000 }],
    ['maxWindow', { maxWindow: 2 ** 32 }],
    ['maxFrameSize', { maxFrameSize: 10 }],
    ['maxStreams', { maxStreams: 0 }],
    ['keepaliveTimeoutMs', { keepaliveTimeoutMs: -1 }],
    ['acceptBacklog', { acceptBacklog: 1.5 }],
    ['keepaliveIntervalMs', { keepaliveIntervalMs: '10s' }],
  ];
  for (const [key, options] of bad) {
    it(`rejects a bad ${key} (${JSON.stringify(options)}) naming the option`, () => {
      let error: unknown;
      try {
        verifyConfig(options);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(MuxError);
      expect((error as MuxError).code).toBe('ERR_INVALID_CONFIG');
      expect((error as MuxError).message).toContain(key);
    });
  }
});
