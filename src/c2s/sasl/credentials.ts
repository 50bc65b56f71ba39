// RFC 5802 §3 (with RFC 7677 for SHA-256): SCRAM stored credentials, and SASLprep (RFC 4013) for SASL strings.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';
import { SaslFailure } from '../../core/errors.ts';

export type ScramHash = 'SHA-1' | 'SHA-256';
export type ScramCredentials = { hash: ScramHash; salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer };

const NODE_HASH = { 'SHA-1': 'sha1', 'SHA-256': 'sha256' } as const satisfies Record<ScramHash, string>;
/** Output length in bytes of each hash, which is also the length of every SCRAM key and proof. */
export const SCRAM_HASH_LENGTH = { 'SHA-1': 20, 'SHA-256': 32 } as const satisfies Record<ScramHash, number>;

const DEFAULT_SALT_BYTES = 16;

/**
 * SASLprep (RFC 4013) a username or password. 'query' allows unassigned code points, as
 * RFC 5802 §5.1 and RFC 4616 want for what a client presents; 'stored' refuses them (RFC 3454 §7),
 * for what we put in the database. A prohibited or empty result -> SaslFailure('malformed-request').
 */
export function prepareSaslString(input: string, kind: 'query' | 'stored'): string {
  let out: string;
  try {
    out = saslprep(input, { allowUnassigned: kind === 'query' });
  } catch {
    throw new SaslFailure('malformed-request', 'string is not allowed by SASLprep');
  }
  if (out === '') throw new SaslFailure('malformed-request', 'string is empty after SASLprep');
  return out;
}

export function scramHmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(NODE_HASH[hash], key).update(data).digest();
}

export function scramDigest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(NODE_HASH[hash]).update(data).digest();
}

/** Constant-time equality; unequal lengths answer false at once (lengths here are public). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** RFC 5802 §3: SaltedPassword := Hi(Normalize(password), salt, i); the keys follow from it. */
function keysFor(prepared: string, hash: ScramHash, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(prepared, 'utf8'), salt, iterations, SCRAM_HASH_LENGTH[hash], NODE_HASH[hash]);
  const clientKey = scramHmac(hash, salted, 'Client Key');
  return { storedKey: scramDigest(hash, clientKey), serverKey: scramHmac(hash, salted, 'Server Key') };
}

/** SASLprep the password (throws SaslFailure('malformed-request') if it is prohibited), then derive keys with PBKDF2. */
export function deriveScramCredentials(
  password: string,
  hash: ScramHash,
  iterations: number,
  salt: Buffer = randomBytes(DEFAULT_SALT_BYTES),
): ScramCredentials {
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new RangeError(`bad SCRAM iteration count: ${iterations}`);
  if (salt.length === 0) throw new RangeError('SCRAM salt must not be empty');
  const prepared = prepareSaslString(password, 'stored');
  return { hash, salt: Buffer.from(salt), iterations, ...keysFor(prepared, hash, salt, iterations) };
}

/** Constant-time check of a plaintext password against stored SCRAM keys (used by PLAIN). */
export function verifyPasswordWithScram(password: string, creds: ScramCredentials): boolean {
  let prepared: string;
  try {
    prepared = prepareSaslString(password, 'query');
  } catch {
    return false;
  }
  const keys = keysFor(prepared, creds.hash, creds.salt, creds.iterations);
  // Both comparisons always run, so the answer's timing does not say which key differed.
  const storedOk = safeEqual(keys.storedKey, creds.storedKey);
  const serverOk = safeEqual(keys.serverKey, creds.serverKey);
  return storedOk && serverOk;
}
