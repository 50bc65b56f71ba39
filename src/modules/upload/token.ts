// The capability in an upload URL: an HMAC-SHA256 over everything the slot grants, so a URL cannot be forged
// or bent to another file, size, type or expiry, and needs no separate header (XEP-0363 §4).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { UploadSlot } from '../../storage/types.ts';

/** base64url of a SHA-256 HMAC. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function slotToken(key: Buffer, slot: Pick<UploadSlot, 'host' | 'id' | 'filename' | 'size' | 'contentType' | 'expiresAt'>): string {
  // JSON keeps the fields apart whatever characters they hold.
  const data = JSON.stringify(['urn:xmpp:http:upload:0', slot.host, slot.id, slot.filename, slot.size, slot.contentType ?? '', slot.expiresAt]);
  return createHmac('sha256', key).update(data, 'utf8').digest('base64url');
}

/** Constant-time comparison of a token from a URL with the slot's. */
export function tokenMatches(key: Buffer, slot: UploadSlot, given: string): boolean {
  if (!TOKEN_PATTERN.test(given)) return false;
  return timingSafeEqual(Buffer.from(slotToken(key, slot), 'utf8'), Buffer.from(given, 'utf8'));
}
