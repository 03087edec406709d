import { describe, expect, it } from 'vitest';
import { backoffDelay, MAX_RETRY_AFTER_S, retryDelay } from './agent.js';
import { maskingUseless } from './relay-connection.js';

describe('backoffDelay (exponential, full jitter)', () => {
  it('draws uniformly below min(cap, base * 2^attempt)', () => {
    const top = (attempt: number) => backoffDelay(attempt, 500, 30_000, () => 0.999999);
    expect([0, 1, 2, 3, 4, 5, 6].map(top)).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999]);
    expect(top(7)).toBe(29999);
    expect(top(1000)).toBe(29999);
    expect(backoffDelay(5, 500, 30_000, () => 0)).toBe(0);
    expect(backoffDelay(3, 500, 30_000, () => 0.5)).toBe(2000);
  });

  it('spreads a crowd of agents over the whole interval', () => {
    const delays = Array.from({ length: 1000 }, () => backoffDelay(4, 500, 30_000));
    expect(Math.min(...delays)).toBeLessThan(800);
    expect(Math.max(...delays)).toBeGreaterThan(7200);
    expect(delays.every((d) => d >= 0 && d < 8000)).toBe(true);
  });
});

describe('retryDelay', () => {
  it("honours the relay's Retry-After, within bounds", () => {
    const zero = () => 0;
    expect(retryDelay(0, 500, 30_000, 10, zero)).toBe(10_000);
    expect(retryDelay(0, 500, 30_000, undefined, zero)).toBe(0);
    expect(retryDelay(0, 500, 30_000, -5, zero)).toBe(0);
    expect(retryDelay(0, 500, 30_000, Number.NaN, zero)).toBe(0);
    // A huge value would overflow setTimeout (which then fires at once: a tight loop).
    expect(retryDelay(0, 500, 30_000, 3e9, zero)).toBe(MAX_RETRY_AFTER_S * 1000);
    expect(retryDelay(0, 500, 30_000, Number.POSITIVE_INFINITY, zero)).toBe(0);
    expect(retryDelay(6, 500, 30_000, 1, () => 0.999999)).toBe(29999);
  });
});

describe('maskingUseless', () => {
  it('is true only inside TLS or on loopback', () => {
    expect(maskingUseless('wss://relay.example.com/agent/v1/connect')).toBe(true);
    expect(maskingUseless('ws://127.0.0.1:8080/agent/v1/connect')).toBe(true);
    expect(maskingUseless('ws://[::1]:8080/agent/v1/connect')).toBe(true);
    expect(maskingUseless('ws://localhost:8080/agent/v1/connect')).toBe(true);
    expect(maskingUseless('ws://relay.example.com/agent/v1/connect')).toBe(false);
    expect(maskingUseless('ws://10.0.0.1/agent/v1/connect')).toBe(false);
  });
});
