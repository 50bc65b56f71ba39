// A per-address budget of successful registrations within a sliding window, with bounded memory.
import { isIPv4, isIPv6 } from 'node:net';
import { normalizeIp } from '../../auth/access.ts';

/** The budget key of an address: IPv4 as is, IPv6 by its /64, since one host or home usually holds a whole /64. */
export function rateKey(ip: string): string {
  const addr = normalizeIp(ip.split('%')[0] ?? ip);
  if (isIPv4(addr) || !isIPv6(addr)) return addr;
  const [head = '', tail] = addr.split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const right = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 tail takes two groups.
    const width = right.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    while (groups.length + width < 8) groups.push('0');
    groups.push(...right);
  }
  return groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64';
}

export type RateLimitOptions = {
  /** Registrations allowed per key within the window. */
  count: number;
  windowMs: number;
  /** Keys remembered at most; the one whose last registration is oldest is forgotten first. */
  maxKeys?: number;
  now?: () => number;
};

export class RegistrationRateLimit {
  /** key -> registration times, oldest first, at most `count`; the map is ordered by last registration. */
  private readonly hits = new Map<string, number[]>();
  private readonly count: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(opts: RateLimitOptions) {
    this.count = opts.count;
    this.windowMs = opts.windowMs;
    this.maxKeys = opts.maxKeys ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.hits.size;
  }

  /**
   * Takes a slot for a registration about to be attempted, so concurrent attempts cannot overrun the budget.
   * Returns a function that gives the slot back (the registration failed), or undefined when the budget is spent.
   */
  reserve(ip: string): (() => void) | undefined {
    const key = rateKey(ip);
    const now = this.now();
    const recent = (this.hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= this.count) {
      this.hits.set(key, recent);
      return undefined;
    }
    recent.push(now);
    this.hits.delete(key);
    this.hits.set(key, recent);
    if (this.hits.size > this.maxKeys) {
      this.prune();
      // Still full: forget the address whose last registration is the oldest.
      for (const k of this.hits.keys()) {
        if (this.hits.size <= this.maxKeys) break;
        this.hits.delete(k);
      }
    }
    return () => {
      const list = this.hits.get(key);
      const i = list?.indexOf(now) ?? -1;
      if (!list || i < 0) return;
      list.splice(i, 1);
      if (list.length === 0) this.hits.delete(key);
    };
  }

  /** Forgets addresses with no registration inside the window. */
  prune(): void {
    const now = this.now();
    for (const [k, list] of this.hits) {
      const last = list[list.length - 1];
      if (last === undefined || now - last >= this.windowMs) this.hits.delete(k);
    }
  }
}
