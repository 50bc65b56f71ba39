// Who may be registered and with what password: reserved names and a minimum password strength.
import { StanzaError } from '../../core/errors.ts';

/** Names that look official or belong to roles (RFC 2142 mailboxes and their XMPP kin). */
export const DEFAULT_RESERVED = ['admin', 'administrator', 'root', 'postmaster', 'abuse', 'webmaster', 'hostmaster', 'support', 'security', 'noc', 'xmpp'] as const;

/**
 * A rough strength estimate in bits: length in code points times log2 of the pool the characters are drawn
 * from (lowercase 26, uppercase 26, digits 10, other ASCII 33, anything else 100). It overrates repetitive
 * passwords, so it is a floor against short or single-class ones, not a measure of real guessability.
 */
export function passwordEntropy(password: string): number {
  let lower = false, upper = false, digit = false, ascii = false, other = false;
  let length = 0;
  for (const ch of password) {
    length++;
    if (ch >= 'a' && ch <= 'z') lower = true;
    else if (ch >= 'A' && ch <= 'Z') upper = true;
    else if (ch >= '0' && ch <= '9') digit = true;
    else if ((ch.codePointAt(0) ?? 0) < 0x80) ascii = true;
    else other = true;
  }
  const pool = (lower ? 26 : 0) + (upper ? 26 : 0) + (digit ? 10 : 0) + (ascii ? 33 : 0) + (other ? 100 : 0);
  return pool === 0 ? 0 : length * Math.log2(pool);
}

export type PasswordRules = { minLength: number; minEntropy: number };

/** Throws not-acceptable, with the rule in the text, for a password the deployment considers too weak. */
export function checkPassword(password: string, rules: PasswordRules): void {
  const length = [...password].length;
  if (length < rules.minLength) {
    throw StanzaError.notAcceptable(`The password must be at least ${rules.minLength} characters long`);
  }
  if (rules.minEntropy > 0 && passwordEntropy(password) < rules.minEntropy) {
    throw StanzaError.notAcceptable('The password is too weak: make it longer or mix lowercase, uppercase, digits and symbols');
  }
}
