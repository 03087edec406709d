import { describe, expect, it } from 'vitest';
import { FailureRateLimiter } from './rate-limit.js';

describe('FailureRateLimiter', () => {
  it('blocks an address after N failures until its window ends', () => {
    let now = 0;
    const limiter = new FailureRateLimiter({ failures: 3, windowMs: 10_000 }, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.retryAfter('a')).toBe(0);
      limiter.fail('a');
    }
    expect(limiter.retryAfter('a')).toBe(10);
    expect(limiter.retryAfter('b')).toBe(0);
    now = 9_500;
    expect(limiter.retryAfter('a')).toBe(1);
    now = 10_000;
    expect(limiter.retryAfter('a')).toBe(0);
    expect(limiter.size).toBe(0);
  });

  it('forgets an address that succeeds', () => {
    const limiter = new FailureRateLimiter({ failures: 1, windowMs: 10_000 });
    limiter.fail('a');
    expect(limiter.retryAfter('a')).toBeGreaterThan(0);
    limiter.succeed('a');
    expect(limiter.retryAfter('a')).toBe(0);
  });

  it('keeps its memory bounded', () => {
    const limiter = new FailureRateLimiter({ failures: 1, windowMs: 60_000, maxAddresses: 100 });
    for (let i = 0; i < 10_000; i++) limiter.fail(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBeLessThanOrEqual(100);
    // The newest are still tracked.
    expect(limiter.retryAfter(`10.0.${9999 >> 8}.${9999 & 255}`)).toBeGreaterThan(0);
  });
});
