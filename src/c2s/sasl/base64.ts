// RFC 6120 §6.4.2 SASL payloads in strict RFC 4648 §4 base64.
import { SaslFailure } from '../../core/errors.ts';

// Whole quanta, padding only in the last one; no whitespace, no URL-safe alphabet.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Strict RFC 4648 base64 without the XMPP '=' convention (used inside SCRAM messages too).
 * Returns undefined for anything that is not the one canonical encoding of some bytes:
 * non-zero pad bits are refused (RFC 4648 §3.5 allows that) so each payload has a single spelling.
 */
export function decodeStrictBase64(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const out = Buffer.from(text, 'base64');
  if (out.toString('base64') !== text) return undefined;
  return out;
}

/**
 * Strict RFC 4648 base64 as RFC 6120 §6.4.2 wants: '=' alone means empty;
 * whitespace, bad characters, bad padding -> SaslFailure('incorrect-encoding').
 * An empty string also decodes to no bytes: telling "no data" (<auth/> with no text) from
 * "empty data" ('=') is the caller's job, done before calling this.
 */
export function decodeSaslPayload(text: string): Buffer {
  if (text === '=') return Buffer.alloc(0);
  const out = decodeStrictBase64(text);
  if (out === undefined) throw new SaslFailure('incorrect-encoding');
  return out;
}

/** Encodes SASL data for <challenge/>, <response/> or <success/>; empty or missing data -> '='. */
export function encodeSaslPayload(data: Buffer | undefined): string {
  if (data === undefined || data.length === 0) return '=';
  return data.toString('base64');
}
