// RFC 7519 JSON Web Tokens, signed (RFC 7515 compact form) with ES256 or RS256 (RFC 7518 §3.3, §3.4).
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';

export type JwtAlgorithm = 'ES256' | 'RS256';

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/** Parses a PEM private key (PKCS#8, as in an APNs .p8 file or a Google service account), failing with a clear message. */
export function loadPrivateKey(pem: string, alg: JwtAlgorithm, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new Error(`${what}: not a PEM private key (${(err as Error).message})`);
  }
  const type = key.asymmetricKeyType;
  if (alg === 'ES256' && (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')) {
    throw new Error(`${what}: ES256 needs a P-256 EC key, got ${type}`);
  }
  if (alg === 'RS256' && type !== 'rsa') throw new Error(`${what}: RS256 needs an RSA key, got ${type}`);
  return key;
}

/** Signs a JWT; ES256 signatures are the raw r||s pair JOSE requires, not DER. */
export function signJwt(alg: JwtAlgorithm, key: KeyObject, header: Record<string, string>, claims: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify({ alg, typ: 'JWT', ...header }))}.${b64url(JSON.stringify(claims))}`;
  const sig = alg === 'ES256'
    ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', Buffer.from(input), key);
  return `${input}.${b64url(sig)}`;
}
