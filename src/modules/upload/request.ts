// XEP-0363: HTTP File Upload <https://xmpp.org/extensions/xep-0363.html> 1.1.0, §4: reading and checking a
// slot request (filename, size, content-type) before anything is granted.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';

export const NS_UPLOAD = 'urn:xmpp:http:upload:0';

/** Longest file name kept, in UTF-8 bytes: what common file systems take for one path component. */
export const MAX_FILENAME_BYTES = 255;
const MAX_CONTENT_TYPE = 255;

export type SlotRequest = { filename: string; size: number; contentType: string | null };

// C0 controls, DEL and C1 controls: never part of a name that is shown or stored.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Invisible and bidirectional formatting characters, which can make "gpj.exe" display as "exe.jpg".
const FORMATTING = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/**
 * The name a file is stored and served under: NFC, without invisible formatting characters or surrounding
 * spaces. Undefined when the name cannot be one path component: empty, "." or "..", with a slash, backslash,
 * NUL or other control character, or longer than MAX_FILENAME_BYTES.
 */
export function sanitizeFilename(raw: string): string | undefined {
  if (CONTROL.test(raw) || raw.includes('/') || raw.includes('\\')) return undefined;
  const name = raw.normalize('NFC').replace(FORMATTING, '').trim();
  if (name === '' || name === '.' || name === '..') return undefined;
  if (Buffer.byteLength(name, 'utf8') > MAX_FILENAME_BYTES) return undefined;
  return name;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// RFC 9110 §8.3.1 media-type: type "/" subtype, then parameters (token or quoted-string values).
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\u0000-\\u001f\\u007f]*"))*$`);

/** A media type as the client declared it (trimmed), or undefined when it is not one. */
export function parseContentType(raw: string): string | undefined {
  const v = raw.trim();
  if (v.length === 0 || v.length > MAX_CONTENT_TYPE || !MEDIA_TYPE.test(v)) return undefined;
  return v;
}

/** "type/subtype" in lower case, without parameters: what two content types are compared on. */
export function mediaEssence(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}

/** Reads `<request filename size content-type/>`; bad-request for anything it cannot take. */
export function readSlotRequest(request: Element): SlotRequest {
  const { filename: rawName, size: rawSize } = request.attrs;
  if (rawName === undefined) throw StanzaError.badRequest('The request has no filename');
  const filename = sanitizeFilename(rawName);
  if (filename === undefined) {
    throw StanzaError.badRequest(`The filename must be one name of at most ${MAX_FILENAME_BYTES} bytes, without slashes or control characters`);
  }
  if (rawSize === undefined || !/^[0-9]{1,16}$/.test(rawSize) || !Number.isSafeInteger(Number(rawSize))) {
    throw StanzaError.badRequest('The size must be a whole number of bytes');
  }
  const rawType = request.attrs['content-type'];
  let contentType: string | null = null;
  if (rawType !== undefined && rawType.trim() !== '') {
    const parsed = parseContentType(rawType);
    if (parsed === undefined) throw StanzaError.badRequest('The content-type is not a media type');
    contentType = parsed;
  }
  return { filename, size: Number(rawSize), contentType };
}

/** §5: the file is larger than the service takes. */
export function fileTooLarge(max: number): StanzaError {
  return new StanzaError('not-acceptable', `File too large. The maximum file size is ${max} bytes`, {
    app: xml('file-too-large', { xmlns: NS_UPLOAD }, xml('max-file-size', null, String(max))),
  });
}

/** §5: a temporary refusal, with the time (XEP-0082, UTC) the client may try again when it is known. */
export function retryLater(text: string, retryAt: number | undefined): StanzaError {
  const stamp = retryAt === undefined ? undefined : new Date(Math.ceil(retryAt / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return new StanzaError('resource-constraint', text, {
    type: 'wait',
    ...(stamp ? { app: xml('retry', { xmlns: NS_UPLOAD, stamp }) } : {}),
  });
}
