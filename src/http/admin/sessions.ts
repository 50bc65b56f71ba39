// Web admin logins: random session ids kept in memory, each with its CSRF token, ending after an idle time and
// after an absolute lifetime. A restart logs everyone out, which is the safe direction.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export type AdminSession = {
  readonly id: string;
  /** The bare JID of the admin. */
  readonly jid: string;
  /** Sent in every form and checked on every POST. */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
  /** A one-shot notice for the next page (the result of a POST before its redirect). */
  flash: { ok: boolean; text: string } | undefined;
};

export type AdminSessionLimits = { ttlMs: number; idleMs: number; max: number };

/** 256 bits from the CSPRNG, URL-safe. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Compares two tokens in constant time (for equal lengths; a length mismatch is no secret). */
export function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export class AdminSessions {
  private readonly byId = new Map<string, AdminSession>();
  private readonly limits: AdminSessionLimits;
  private readonly now: () => number;

  constructor(limits: AdminSessionLimits, now: () => number = Date.now) {
    this.limits = limits;
    this.now = now;
  }

  create(jid: string): AdminSession {
    const now = this.now();
    this.sweep(now);
    // Full: the oldest login (Map order is insertion order) makes room.
    while (this.byId.size >= this.limits.max) {
      const oldest = this.byId.keys().next().value;
      if (oldest === undefined) break;
      this.byId.delete(oldest);
    }
    const s: AdminSession = { id: randomToken(), jid, csrf: randomToken(), createdAt: now, lastSeen: now, flash: undefined };
    this.byId.set(s.id, s);
    return s;
  }

  /** The live session of an id, touched; undefined (and forgotten) when unknown or expired. */
  get(id: string | undefined): AdminSession | undefined {
    if (!id) return undefined;
    const s = this.byId.get(id);
    if (!s) return undefined;
    const now = this.now();
    if (this.expired(s, now)) {
      this.byId.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  destroy(id: string): void {
    this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }

  private expired(s: AdminSession, now: number): boolean {
    return now - s.createdAt >= this.limits.ttlMs || now - s.lastSeen >= this.limits.idleMs;
  }

  private sweep(now: number): void {
    for (const [id, s] of this.byId) if (this.expired(s, now)) this.byId.delete(id);
  }
}
