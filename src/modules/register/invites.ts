// XEP-0401: Ad-hoc Account Invitation Generation <https://xmpp.org/extensions/xep-0401.html> 0.6.0 (the invitation
// URI and token) and XEP-0445: Pre-Authenticated In-Band Registration <https://xmpp.org/extensions/xep-0445.html>
// 0.2.0 (redeeming a token before XEP-0077 registration). Tokens are kept only as SHA-256 digests, in the key-value
// store under the empty username (no account can have an empty localpart), one key per token.
import { createHash, randomBytes } from 'node:crypto';
import type { KeyValueStore } from '../../storage/types.ts';

/** The stream feature of a server that accepts invitation tokens (XEP-0445 §3). */
export const NS_IBR_TOKEN = 'urn:xmpp:ibr-token:0';
/** The <preauth/> request (XEP-0445 §4). */
export const NS_PARS = 'urn:xmpp:pars:0';

const KV_NS = 'urn:xmpp:invite';
const KV_USER = '';

export type Invite = {
  /** The secret: shown once, never stored. */
  token: string;
  /** xmpp:HOST?register;preauth=TOKEN (XEP-0445 §2.2). */
  uri: string;
  /** Undefined when the invitation does not expire. */
  expires: Date | undefined;
};

type Stored = { created: number; expires: number | null };

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Creates a single-use invitation to register an account on `host`, valid for `expiresDays` (none: no expiry). */
export async function createInvite(kv: KeyValueStore, host: string, opts: { expiresDays?: number; now?: number } = {}): Promise<Invite> {
  const now = opts.now ?? Date.now();
  // XEP-0401 §5.1: a securely generated random alphanumeric string; 128 bits.
  const token = randomBytes(16).toString('hex');
  const expires = opts.expiresDays !== undefined ? now + Math.round(opts.expiresDays * 86_400_000) : null;
  const record: Stored = { created: now, expires };
  await kv.set(host, KV_USER, KV_NS, tokenDigest(token), JSON.stringify(record));
  return { token, uri: `xmpp:${host}?register;preauth=${token}`, expires: expires === null ? undefined : new Date(expires) };
}

/** The digest of a token that may be redeemed now, or undefined (unknown, or expired). */
export async function validInvite(kv: KeyValueStore, host: string, token: string, now = Date.now()): Promise<string | undefined> {
  if (token === '' || token.length > 256) return undefined;
  const digest = tokenDigest(token);
  const raw = await kv.get(host, KV_USER, KV_NS, digest);
  if (raw === undefined) return undefined;
  let record: Stored;
  try {
    record = JSON.parse(raw) as Stored;
  } catch {
    return undefined;
  }
  if (record.expires !== null && record.expires <= now) {
    await kv.set(host, KV_USER, KV_NS, digest, undefined);
    return undefined;
  }
  return digest;
}

/** Whether the invitation still exists (it may have been used by another connection meanwhile). */
export async function inviteExists(kv: KeyValueStore, host: string, digest: string): Promise<boolean> {
  return (await kv.get(host, KV_USER, KV_NS, digest)) !== undefined;
}

/** Uses the invitation up: single use, once the registration succeeded (XEP-0445 §4). */
export async function consumeInvite(kv: KeyValueStore, host: string, digest: string): Promise<void> {
  await kv.set(host, KV_USER, KV_NS, digest, undefined);
}

/** Invitations not yet used (expired ones included until someone tries them). */
export async function countInvites(kv: KeyValueStore, host: string): Promise<number> {
  return (await kv.entries(host, KV_USER, KV_NS)).length;
}
