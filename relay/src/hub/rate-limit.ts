// Failed agent upgrades per remote address, so that a caller guessing tokens (or a broken
// agent in a tight loop) gets 429 instead of a token check per attempt. Memory is bounded:
// at most `maxAddresses` entries, the oldest dropped first.

export interface RateLimitOptions {
  /** Failures allowed per address in one window (default 10). */
  failures: number;
  /** Window length in ms (default 60 s). */
  windowMs: number;
  /** Addresses tracked at once (default 10,000). */
  maxAddresses?: number;
}

interface Entry {
  count: number;
  resetAt: number;
}

export class FailureRateLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly max: number;

  constructor(
    private readonly options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.max = options.maxAddresses ?? 10_000;
  }

  /** Seconds until `address` may try again, or 0 if it may try now. */
  retryAfter(address: string): number {
    const entry = this.entries.get(address);
    if (!entry) return 0;
    const now = this.now();
    if (now >= entry.resetAt) {
      this.entries.delete(address);
      return 0;
    }
    return entry.count >= this.options.failures ? Math.ceil((entry.resetAt - now) / 1000) : 0;
  }

  /** Records a failed attempt. */
  fail(address: string): void {
    const now = this.now();
    let entry = this.entries.get(address);
    if (!entry || now >= entry.resetAt) {
      this.entries.delete(address);
      entry = { count: 0, resetAt: now + this.options.windowMs };
      if (this.entries.size >= this.max) this.evict(now);
      this.entries.set(address, entry);
    }
    entry.count++;
  }

  /** A successful attempt forgets the address's failures. */
  succeed(address: string): void {
    this.entries.delete(address);
  }

  get size(): number {
    return this.entries.size;
  }

  private evict(now: number): void {
    for (const [address, entry] of this.entries) {
      if (now >= entry.resetAt) this.entries.delete(address);
    }
    // Map iteration is in insertion order: the first keys are the oldest windows.
    for (const address of this.entries.keys()) {
      if (this.entries.size < this.max) break;
      this.entries.delete(address);
    }
  }
}
