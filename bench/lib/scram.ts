// RFC 5802 (SCRAM, with RFC 7677 for SHA-256): the client side, for the load generator.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import saslprep from '@mongodb-js/saslprep';

export type ScramHashName = 'SHA-1' | 'SHA-256';

const NODE_HASH = { 'SHA-1': 'sha1', 'SHA-256': 'sha256' } as const;
const HASH_LEN = { 'SHA-1': 20, 'SHA-256': 32 } as const;

type Keys = { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer };

/**
 * SaltedPassword and the keys derived from it, per (hash, password, salt, iterations), as real clients keep
 * them (RFC 5802 §5.1 allows caching ClientKey/ServerKey): PBKDF2 is meant to cost the attacker, not every
 * login, and the generator must not be CPU-bound on it.
 */
const keyCache = new Map<string, Keys>();
const KEY_CACHE_MAX = 200_000;

function keysFor(hash: ScramHashName, password: string, salt: string, iterations: number): Keys {
  const cacheKey = `${hash}\0${iterations}\0${salt}\0${password}`;
  let keys = keyCache.get(cacheKey);
  if (!keys) {
    const prepared = saslprep(password);
    const salted = pbkdf2Sync(Buffer.from(prepared, 'utf8'), Buffer.from(salt, 'base64'), iterations, HASH_LEN[hash], NODE_HASH[hash]);
    const clientKey = hmac(hash, salted, 'Client Key');
    keys = { clientKey, storedKey: createHash(NODE_HASH[hash]).update(clientKey).digest(), serverKey: hmac(hash, salted, 'Server Key') };
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
    keyCache.set(cacheKey, keys);
  }
  return keys;
}

function hmac(hash: ScramHashName, key: Buffer, data: string): Buffer {
  return createHmac(NODE_HASH[hash], key).update(data).digest();
}

/** RFC 5802 §5.1: ',' and '=' in a saslname are escaped. */
function saslname(s: string): string {
  return s.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

/** One SCRAM exchange without channel binding (gs2 flag 'n'). */
export class ScramClient {
  private readonly hash: ScramHashName;
  private readonly password: string;
  private readonly clientFirstBare: string;
  private authMessage = '';
  private serverKey: Buffer | undefined;

  constructor(hash: ScramHashName, username: string, password: string) {
    this.hash = hash;
    this.password = password;
    this.clientFirstBare = `n=${saslname(saslprep(username))},r=${randomBytes(18).toString('base64')}`;
  }

  /** client-first-message */
  first(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** client-final-message for the server-first-message; throws if it is malformed or the nonce is not ours. */
  final(serverFirst: string): string {
    const attrs = parseAttrs(serverFirst);
    const nonce = attrs.get('r');
    const salt = attrs.get('s');
    const iterations = Number(attrs.get('i'));
    const ourNonce = this.clientFirstBare.slice(this.clientFirstBare.indexOf(',r=') + 3);
    if (!nonce || !salt || !Number.isSafeInteger(iterations) || iterations < 1) throw new Error(`malformed SCRAM server-first-message: ${serverFirst}`);
    if (!nonce.startsWith(ourNonce) || nonce.length === ourNonce.length) throw new Error('SCRAM server nonce does not extend ours');
    const keys = keysFor(this.hash, this.password, salt, iterations);
    const withoutProof = `c=biws,r=${nonce}`; // biws = base64('n,,')
    this.authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(this.hash, keys.storedKey, this.authMessage);
    const proof = Buffer.allocUnsafe(signature.length);
    for (let i = 0; i < signature.length; i++) proof[i] = (keys.clientKey[i] as number) ^ (signature[i] as number);
    this.serverKey = keys.serverKey;
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final-message (v=ServerSignature), so a login only counts once the server proved itself. */
  verify(serverFinal: string): void {
    const attrs = parseAttrs(serverFinal);
    const err = attrs.get('e');
    if (err) throw new Error(`SCRAM server error: ${err}`);
    const v = attrs.get('v');
    if (!v || !this.serverKey) throw new Error(`malformed SCRAM server-final-message: ${serverFinal}`);
    const expected = hmac(this.hash, this.serverKey, this.authMessage);
    const got = Buffer.from(v, 'base64');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) throw new Error('SCRAM server signature mismatch');
  }
}

function parseAttrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    if (part.length >= 2 && part[1] === '=') out.set(part[0] as string, part.slice(2));
  }
  return out;
}

/** RFC 4616: PLAIN's message, authzid empty. */
export function plainMessage(username: string, password: string): string {
  return Buffer.from(`\0${username}\0${password}`, 'utf8').toString('base64');
}
