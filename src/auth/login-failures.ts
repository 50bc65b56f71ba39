// Brute-force protection in the spirit of mod_fail2ban: failed logins are counted per IP and per (IP, account).
// After a few failures for one account from one address, that address must wait before trying that account
// again, the wait doubling with each further failure; past many failures in all the IP is refused for a while.
// The account itself is never locked, so its owner can still log in from elsewhere.
import { normalizeIp } from './access.ts';
import { SaslFailure } from '../core/errors.ts';

export type LoginFailureOptions = {
  max_failures: number;
  window: number;
  ban_seconds: number;
  /** Failures for one account from one IP before waits start (default 3). */
  backoff_after?: number;
  /** Seconds of the first wait (default 1); each further failure doubles it, up to backoff_max (default 300). */
  backoff_base?: number;
  backoff_max?: number;
};

/** Tracked addresses are bounded, so a flood of addresses cannot grow memory without limit. */
const MAX_TRACKED = 100_000;

type Entry = { failures: number; firstAt: number; bannedUntil: number };
type PairEntry = { failures: number; lastAt: number };

/** An attempt refused because its address must still wait for that account: not itself counted as a failure. */
export class LoginBackoff extends SaslFailure {
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number) {
    super('not-authorized', `Too many failed logins for this account from your address; try again in ${Math.ceil(retryAfterMs / 1000)} seconds`);
    this.retryAfterMs = retryAfterMs;
  }
}

export class LoginFailures {
  private readonly byIp = new Map<string, Entry>();
  private readonly byAccount = new Map<string, number>();
  /** "ip\0account" -> failures; the map is ordered by last failure (re-inserted on each). */
  private readonly byPair = new Map<string, PairEntry>();
  private readonly opts: LoginFailureOptions;
  private readonly backoffAfter: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;

  constructor(opts: LoginFailureOptions, now: () => number = Date.now) {
    this.opts = opts;
    this.backoffAfter = opts.backoff_after ?? 3;
    this.baseMs = (opts.backoff_base ?? 1) * 1000;
    this.maxMs = (opts.backoff_max ?? 300) * 1000;
    this.now = now;
  }

  isBanned(ip: string): boolean {
    const e = this.byIp.get(normalizeIp(ip));
    return e !== undefined && e.bannedUntil > this.now();
  }

  /** Milliseconds before `ip` may try `account` again (0: now). */
  retryAfter(ip: string, account: string): number {
    const e = this.byPair.get(pairKey(ip, account));
    if (!e || e.failures < this.backoffAfter) return 0;
    const left = e.lastAt + this.delay(e.failures) - this.now();
    return left > 0 ? left : 0;
  }

  /** Throws LoginBackoff while `ip` must wait before trying `account` again. */
  checkBackoff(ip: string, account: string): void {
    const ms = this.retryAfter(ip, account);
    if (ms > 0) throw new LoginBackoff(ms);
  }

  /** The wait after `failures` failures: base, doubled for each failure past the threshold, capped. */
  private delay(failures: number): number {
    const doublings = Math.min(30, failures - this.backoffAfter);
    return Math.min(this.maxMs, this.baseMs * 2 ** doublings);
  }

  /** Records a failure; returns true when this failure got the address banned. */
  recordFailure(ip: string, account?: string): boolean {
    const key = normalizeIp(ip);
    const now = this.now();
    let e = this.byIp.get(key);
    if (!e || now - e.firstAt > this.opts.window * 1000) {
      if (!e && this.byIp.size >= MAX_TRACKED) this.prune(now);
      e = { failures: 0, firstAt: now, bannedUntil: e?.bannedUntil ?? 0 };
      this.byIp.set(key, e);
    }
    e.failures++;
    if (account !== undefined) {
      if (this.byAccount.size >= MAX_TRACKED && !this.byAccount.has(account)) this.byAccount.clear();
      this.byAccount.set(account, (this.byAccount.get(account) ?? 0) + 1);
      this.recordPair(key, account, now);
    }
    if (e.failures >= this.opts.max_failures && e.bannedUntil <= now) {
      e.bannedUntil = now + this.opts.ban_seconds * 1000;
      e.failures = 0;
      e.firstAt = now;
      return true;
    }
    return false;
  }

  /** A successful login forgets the address's failures for that account. */
  recordSuccess(ip: string, account: string): void {
    this.byPair.delete(pairKey(ip, account));
  }

  private recordPair(ip: string, account: string, now: number): void {
    const k = `${ip}\0${account}`;
    let p = this.byPair.get(k);
    // A pair quiet for longer than the longest wait plus the window starts over.
    if (p && now - p.lastAt > this.maxMs + this.opts.window * 1000) p = undefined;
    this.byPair.delete(k);
    if (this.byPair.size >= MAX_TRACKED) {
      // Forget the pairs whose last failure is oldest.
      let drop = this.byPair.size - MAX_TRACKED + 1;
      for (const old of this.byPair.keys()) {
        if (drop-- <= 0) break;
        this.byPair.delete(old);
      }
    }
    this.byPair.set(k, { failures: (p?.failures ?? 0) + 1, lastAt: now });
  }

  accountFailures(account: string): number {
    return this.byAccount.get(account) ?? 0;
  }

  private prune(now: number): void {
    for (const [k, e] of this.byIp) {
      if (e.bannedUntil <= now && now - e.firstAt > this.opts.window * 1000) this.byIp.delete(k);
    }
    // Still full: forget the oldest half rather than grow.
    if (this.byIp.size >= MAX_TRACKED) {
      let drop = this.byIp.size / 2;
      for (const k of this.byIp.keys()) {
        if (drop-- <= 0) break;
        this.byIp.delete(k);
      }
    }
  }
}

function pairKey(ip: string, account: string): string {
  return `${normalizeIp(ip)}\0${account}`;
}
