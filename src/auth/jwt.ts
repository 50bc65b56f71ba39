// RFC 7519: JSON Web Token (JWT) as a SASL PLAIN password; signatures (RFC 7515/7518: HS256, RS256, ES256) via jose.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errors, jwtVerify, type JWSHeaderParameters } from 'jose';
import type { z } from 'zod';
import type { JwtAuthSchema } from '../config/auth-schema.ts';
import { ConfigError } from '../core/errors.ts';
import { prepareDomainpart, prepareLocalpart } from '../xmpp/precis.ts';
import type { AuthBackend, AuthBackendContext } from './types.ts';

export type JwtAuthOptions = z.infer<typeof JwtAuthSchema>;
type JwtAlgorithm = JwtAuthOptions['algorithms'][number];

function localpart(s: string): string | undefined {
  try {
    return prepareLocalpart(s);
  } catch {
    return undefined;
  }
}

/** `public_key` holds the PEM text itself or the path of a PEM file. */
function loadPublicKey(source: string): KeyObject {
  let pem = source;
  if (!source.trimStart().startsWith('-----BEGIN')) {
    try {
      pem = readFileSync(source, 'utf8');
    } catch (err) {
      throw new ConfigError([`auth.jwt.public_key: cannot read ${source}: ${(err as Error).message}`]);
    }
  }
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new ConfigError([`auth.jwt.public_key: not a PEM public key: ${(err as Error).message}`]);
  }
}

/** The asymmetric algorithm a key can verify: a key serves exactly one, so RS256 and ES256 cannot share it. */
function algorithmOf(key: KeyObject): JwtAlgorithm | undefined {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

/**
 * Each algorithm has its own key, chosen from the header's alg only after jose has checked alg against the
 * configured list: the public key is never used as an HMAC secret, which is what algorithm confusion relies on.
 */
function keyResolver(opts: JwtAuthOptions): (header: JWSHeaderParameters) => Uint8Array | KeyObject {
  const keys = new Map<string, Uint8Array | KeyObject>();
  if (opts.algorithms.includes('HS256')) {
    if (!opts.secret) throw new ConfigError(['auth.jwt.secret: HS256 needs a secret']);
    keys.set('HS256', new TextEncoder().encode(opts.secret));
  }
  const asymmetric = opts.algorithms.filter((a) => a !== 'HS256');
  if (asymmetric.length > 0) {
    if (!opts.public_key) throw new ConfigError(['auth.jwt.public_key: RS256/ES256 need a public_key']);
    const key = loadPublicKey(opts.public_key);
    const alg = algorithmOf(key);
    for (const a of asymmetric) {
      if (a !== alg) throw new ConfigError([`auth.jwt.public_key: the key (${key.asymmetricKeyType}) cannot verify ${a}; configure only ${alg ?? 'RS256 with an RSA key or ES256 with a P-256 key'}`]);
    }
    keys.set(alg as string, key);
  }
  return (header) => {
    const key = header.alg === undefined ? undefined : keys.get(header.alg);
    if (key === undefined) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    return key;
  };
}

export function createJwtBackend(opts: JwtAuthOptions, ctx: AuthBackendContext): AuthBackend {
  const log = ctx.log.child({ backend: 'jwt' });
  const host = prepareDomainpart(ctx.host);
  const getKey = keyResolver(opts);
  const verifyOptions = {
    algorithms: [...opts.algorithms],
    issuer: opts.issuer,
    audience: opts.audience,
    clockTolerance: opts.clock_tolerance,
    requiredClaims: ['exp'],
  };

  /** The claim names a bare JID on this host or a bare localpart; anything else is refused. */
  const userOf = (claimed: string): string | undefined => {
    if (!claimed.includes('@') && !claimed.includes('/')) return localpart(claimed);
    if (claimed.includes('/')) return undefined;
    const at = claimed.indexOf('@');
    let domain: string;
    try {
      domain = prepareDomainpart(claimed.slice(at + 1));
    } catch {
      return undefined;
    }
    if (domain !== host) return undefined;
    return localpart(claimed.slice(0, at));
  };

  return {
    method: 'jwt',
    verification: 'plain',
    async checkPassword(user, token) {
      if (token === '') return false;
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(token, getKey, verifyOptions));
      } catch (err) {
        // A bad token is a wrong password, never a backend failure. The token itself is not logged.
        log.debug({ user, reason: err instanceof errors.JOSEError ? err.code : String(err) }, 'JWT refused');
        return false;
      }
      const claimed = payload[opts.claim];
      if (typeof claimed !== 'string') {
        log.debug({ user, claim: opts.claim }, 'JWT refused: the user claim is missing or not a string');
        return false;
      }
      const local = userOf(claimed);
      if (local === undefined) {
        log.info({ user, claimed }, 'JWT refused: the claim does not name a user of this host');
        return false;
      }
      // PLAIN needs an authcid; clients repeat the localpart. Any other name is a mix-up or an attempt, so refuse.
      if (user !== '' && localpart(user) !== local) {
        log.info({ user, claimed }, 'JWT refused: the authcid differs from the claim');
        return false;
      }
      return local;
    },
    // JWT users are known only while connected: routing finds their sessions before it asks.
    userExists: async () => false,
  };
}
