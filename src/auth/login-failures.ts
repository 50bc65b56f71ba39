// Brute-force protection in the spirit of mod_fail2ban: failed logins are counted per IP (and per account, for
// the logs); past the threshold the IP is refused for a while. The account itself is never locked, so its owner
// can still log in from elsewhere.
import { normalizeIp } from './access.ts';

export type LoginFailureOptions = { max_failures: number; window: number; ban_seconds: number };

/** Tracked addresses are bounded, so a flood of addresses cannot grow memory without limit. */
const MAX_TRACKED = 100_000;

type Entry = { failures: number; firstAt: number; bannedUntil: number };

export class LoginFailures {
  private readonly byIp = new Map<string, Entry>();
  private readonly byAccount = new Map<string, number>();
  private readonly opts: LoginFailureOptions;
  private readonly now: () => number;

  constructor(opts: LoginFailureOptions, now: () => number = Date.now) {
    this.opts = opts;
    this.now = now;
  }

  isBanned(ip: string): boolean {
    const e = this.byIp.get(normalizeIp(ip));
    return e !== undefined && e.bannedUntil > this.now();
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
    }
    if (e.failures >= this.opts.max_failures && e.bannedUntil <= now) {
      e.bannedUntil = now + this.opts.ban_seconds * 1000;
      e.failures = 0;
      e.firstAt = now;
      return true;
    }
    return false;
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
