// A small, independent SCRAM client (RFC 5802 §3, §5) for tests, with knobs to send wrong messages.
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import assert from 'node:assert/strict';
import type { ScramHash } from '../../src/c2s/sasl/credentials.ts';

export const NODE_HASH = { 'SHA-1': 'sha1', 'SHA-256': 'sha256' } as const;
export const HASH_LEN = { 'SHA-1': 20, 'SHA-256': 32 } as const;
export const hmac = (h: ScramHash, key: Buffer, data: string | Buffer): Buffer => createHmac(NODE_HASH[h], key).update(data).digest();
export const digest = (h: ScramHash, data: Buffer): Buffer => createHash(NODE_HASH[h]).update(data).digest();
export const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((x, i) => x ^ b[i]!));
export const b = (s: string): Buffer => Buffer.from(s, 'utf8');


/** A small, independent SCRAM client (RFC 5802 §3, §5). */
export class ScramClient {
  readonly hash: ScramHash;
  readonly password: string;
  readonly gs2Header: string;
  readonly bare: string;
  readonly cbData: Buffer;
  serverFirst = '';
  authMessage = '';
  saltedPassword = Buffer.alloc(0);

  constructor(opts: {
    hash: ScramHash;
    username: string;
    password: string;
    authzid?: string;
    flag?: string; // 'n', 'y' or 'p=<name>'
    cbData?: Buffer;
    nonce?: string;
    extraBare?: string;
  }) {
    const esc = (s: string): string => s.replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.hash = opts.hash;
    this.password = opts.password;
    this.gs2Header = `${opts.flag ?? 'n'},${opts.authzid === undefined ? '' : `a=${esc(opts.authzid)}`},`;
    this.bare = `n=${esc(opts.username)},r=${opts.nonce ?? 'clientNonce+/0123'}${opts.extraBare ?? ''}`;
    this.cbData = opts.cbData ?? Buffer.alloc(0);
  }

  first(): Buffer {
    return b(this.gs2Header + this.bare);
  }

  final(serverFirst: string, over: { c?: string; r?: string; proof?: (p: Buffer) => string; ext?: string } = {}): Buffer {
    this.serverFirst = serverFirst;
    const m = /^r=([^,]+),s=([^,]+),i=(\d+)$/.exec(serverFirst);
    assert.ok(m, `unexpected server-first ${serverFirst}`);
    const [, nonce, salt, iter] = m as unknown as [string, string, string, string];
    const c = over.c ?? Buffer.concat([b(this.gs2Header), this.cbData]).toString('base64');
    const withoutProof = `c=${c},r=${over.r ?? nonce}${over.ext ?? ''}`;
    this.authMessage = `${this.bare},${serverFirst},${withoutProof}`;
    this.saltedPassword = pbkdf2Sync(b(this.password), Buffer.from(salt, 'base64'), Number(iter), HASH_LEN[this.hash], NODE_HASH[this.hash]);
    const clientKey = hmac(this.hash, this.saltedPassword, 'Client Key');
    const storedKey = digest(this.hash, clientKey);
    const proof = xor(clientKey, hmac(this.hash, storedKey, this.authMessage));
    return b(`${withoutProof},p=${over.proof ? over.proof(proof) : proof.toString('base64')}`);
  }

  expectedServerFinal(): string {
    const serverKey = hmac(this.hash, this.saltedPassword, 'Server Key');
    return `v=${hmac(this.hash, serverKey, this.authMessage).toString('base64')}`;
  }
}

