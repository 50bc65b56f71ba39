// draft-schmaus-kitten-sasl-ht-09: The Hashed Token SASL Mechanism, server side (HT-SHA-256-NONE, as XEP-0484 uses it).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SaslFailure } from '../../core/errors.ts';
import type { SaslStep } from './mechanism.ts';

export const HT_MECHANISM_NAMES = ['HT-SHA-256-NONE'] as const;
export type HtMechanismName = (typeof HT_MECHANISM_NAMES)[number];

export function isHtMechanismName(name: string): name is HtMechanismName {
  return (HT_MECHANISM_NAMES as readonly string[]).includes(name);
}

export interface HtContext {
  /**
   * Finds the stored token key of `username` that makes `check` true (the proof matches), or undefined.
   * The key is what HMAC uses: the token, or its SHA-256 hash when the token is longer than the block.
   */
  findKey(username: string, check: (key: Buffer) => boolean): Promise<Buffer | undefined>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** HMAC over the role label; channel-binding data is empty for the -NONE variants (§3.1). */
export function htProof(key: Buffer, role: 'Initiator' | 'Responder'): Buffer {
  return createHmac('sha256', key).update(role, 'utf8').digest();
}

/** One exchange: initial response `authcid NUL initiator-hashed-token`, success with the responder's proof. */
export function createHtMechanism(name: HtMechanismName, ctx: HtContext): { readonly name: HtMechanismName; step(data: Buffer | undefined): Promise<SaslStep> } {
  let done = false;
  return {
    name,
    async step(data) {
      if (done) throw new SaslFailure('malformed-request', 'HT exchange already finished');
      done = true;
      // HT is client-first: no initial response is an error, not a request for a challenge.
      if (data === undefined || data.length === 0) throw new SaslFailure('malformed-request', 'HT needs an initial response');
      const nul = data.indexOf(0);
      if (nul <= 0) throw new SaslFailure('malformed-request', 'HT message is authcid NUL token-hash');
      let username: string;
      try {
        username = utf8.decode(data.subarray(0, nul));
      } catch {
        throw new SaslFailure('malformed-request', 'HT authcid is not valid UTF-8');
      }
      const proof = data.subarray(nul + 1);
      const key = await ctx.findKey(username, (k) => {
        const expected = htProof(k, 'Initiator');
        return expected.length === proof.length && timingSafeEqual(expected, proof);
      });
      if (!key) throw new SaslFailure('not-authorized');
      return { kind: 'success', username, data: htProof(key, 'Responder') };
    },
  };
}
