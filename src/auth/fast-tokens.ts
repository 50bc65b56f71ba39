// XEP-0484: Fast Authentication Streamlining Tokens <https://xmpp.org/extensions/xep-0484.html> 0.2.0 — the token store.
// Tokens are kept per account and user-agent id, hashed: a token is longer than SHA-256's 64-byte HMAC block,
// so RFC 2104 hashes it before use as a key, and HMAC(SHA-256(token), m) = HMAC(token, m). The server can
// verify HT-SHA-256-* proofs while never storing the token itself.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KeyValueStore } from '../storage/types.ts';

export const FAST_NS = 'urn:xmpp:fast:0';
/** Token mechanisms Parley issues, strongest first. */
export const FAST_MECHANISMS = ['HT-SHA-256-NONE'] as const;
export type FastMechanism = (typeof FAST_MECHANISMS)[number];

/** How long an issued token is valid. */
export const FAST_TOKEN_TTL_MS = 14 * 24 * 60 * 60 * 1000;

type StoredToken = { mech: string; hash: string; expiry: number };
/** The current token and, until the client has used the current one, the previous (§4.3 rotation). */
type Record = { current?: StoredToken; previous?: StoredToken };

export type IssuedToken = { token: string; expiry: Date; mechanism: FastMechanism };

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function parse(raw: string | undefined): Record {
  if (raw === undefined) return {};
  try {
    return JSON.parse(raw) as Record;
  } catch {
    return {};
  }
}

export class FastTokens {
  private readonly kv: KeyValueStore;
  private readonly host: string;

  constructor(kv: KeyValueStore, host: string) {
    this.kv = kv;
    this.host = host;
  }

  /** Issues a fresh token for this account and user agent; the previous one stays valid until the new one is used. */
  async issue(user: string, agentId: string, mechanism: FastMechanism, now = Date.now()): Promise<IssuedToken> {
    // 72 random bytes make 96 characters: over the 64-byte block, which storing only the hash relies on.
    const token = randomBytes(72).toString('base64url');
    const expiry = now + FAST_TOKEN_TTL_MS;
    const rec = parse(await this.kv.get(this.host, user, FAST_NS, agentId));
    const live = rec.current && rec.current.expiry > now ? rec.current : undefined;
    const next: Record = { current: { mech: mechanism, hash: hashToken(token).toString('hex'), expiry }, previous: live };
    await this.kv.set(this.host, user, FAST_NS, agentId, JSON.stringify(next));
    return { token, expiry: new Date(expiry), mechanism };
  }

  /**
   * Finds the key (the hashed token) that verifies a proof, trying the current and then the previous token.
   * `check` gets the HMAC key; the first match wins. Using the current token retires the previous one.
   */
  async verify(user: string, agentId: string, mechanism: string, check: (key: Buffer) => boolean, now = Date.now()):
    Promise<{ key: Buffer; expiry: number; current: boolean } | undefined> {
    const rec = parse(await this.kv.get(this.host, user, FAST_NS, agentId));
    for (const which of ['current', 'previous'] as const) {
      const t = rec[which];
      if (!t || t.mech !== mechanism || t.expiry <= now) continue;
      const key = Buffer.from(t.hash, 'hex');
      if (!check(key)) continue;
      if (which === 'current' && rec.previous) {
        await this.kv.set(this.host, user, FAST_NS, agentId, JSON.stringify({ current: t }));
      }
      return { key, expiry: t.expiry, current: which === 'current' };
    }
    return undefined;
  }

  /** Forgets every token of an account (password change, administrator); returns how many user agents had one. */
  async revokeAll(user: string): Promise<number> {
    const entries = await this.kv.entries(this.host, user, FAST_NS);
    for (const [agent] of entries) await this.kv.set(this.host, user, FAST_NS, agent, undefined);
    return entries.length;
  }

  /** Forgets the token of one user agent (the client asked with <fast invalidate='true'/>). */
  async revoke(user: string, agentId: string): Promise<void> {
    await this.kv.set(this.host, user, FAST_NS, agentId, undefined);
  }
}

/** Constant-time comparison of two MACs. */
export function macEquals(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
