// A token bucket in integer arithmetic: a token is worth `period` units (its refill period in milliseconds), so
// refilling at `rate` tokens per period adds exactly `rate` units per elapsed millisecond. No allocation after
// construction: one per connection.

export class TokenBucket {
  /** In units (a token is `period` units); negative while in debt. */
  private level: number;
  private last: number;
  /** Tokens per period (units per millisecond); 0 means unlimited. */
  private rate: number;
  private cap: number;
  private readonly period: number;

  /** `rate` tokens per `period` milliseconds (a second by default), at most `burst` at once. */
  constructor(rate: number, burst: number, now: number, period = 1000) {
    this.period = period;
    this.rate = rate;
    this.cap = burst * period;
    this.level = this.cap;
    this.last = now;
  }

  get unlimited(): boolean {
    return this.rate === 0;
  }

  /** New rate and burst (after authentication); the level is kept, within the new cap. */
  reset(rate: number, burst: number, now: number): void {
    this.refill(now);
    this.rate = rate;
    this.cap = burst * this.period;
    if (this.level > this.cap) this.level = this.cap;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    this.last = now;
    if (elapsed <= 0) return;
    this.level += elapsed * this.rate;
    if (this.level > this.cap) this.level = this.cap;
  }

  /** Takes `n` tokens, going into debt if need be; returns the debt in whole tokens (0: none). */
  take(n: number, now: number): number {
    if (this.rate === 0) return 0;
    this.refill(now);
    this.level -= n * this.period;
    return this.level >= 0 ? 0 : Math.ceil(-this.level / this.period);
  }

  /** Takes one token only if there is one: false when the bucket is empty (nothing taken). */
  tryTake(now: number): boolean {
    if (this.rate === 0) return true;
    this.refill(now);
    if (this.level < this.period) return false;
    this.level -= this.period;
    return true;
  }

  /** Milliseconds until the debt is paid off (0 when there is none). */
  waitMs(): number {
    if (this.level >= 0 || this.rate === 0) return 0;
    return Math.ceil(-this.level / this.rate);
  }
}
