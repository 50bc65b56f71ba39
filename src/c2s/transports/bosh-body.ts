// XEP-0124: Bidirectional-streams Over Synchronous HTTP (BOSH) <https://xmpp.org/extensions/xep-0124.html> 1.11.2,
// §6 and §17: the <body/> wrapper on the wire. Requests are parsed with Parley's own stream parser (the <body/>
// plays the stream header's part, so the same stanza size, depth and attribute limits apply); responses are
// built as strings around the already serialized payloads.
import type { Attrs, Element } from '../../xml/element.ts';
import { escapeAttr } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { StreamParser, type ParserLimits } from '../../xml/parser.ts';
import { StreamError } from '../../core/errors.ts';

/** XEP-0124 §17.2 terminal binding conditions (the ones Parley sends). */
export const BOSH_CONDITIONS = [
  'bad-request', 'host-unknown', 'improper-addressing', 'item-not-found',
  'policy-violation', 'remote-stream-error', 'see-other-uri', 'system-shutdown',
] as const;
export type BoshCondition = (typeof BOSH_CONDITIONS)[number];

export type BoshBody = {
  /** The wrapper's attributes as sent (prefixed ones by their qualified name, e.g. 'xmpp:restart'). */
  attrs: Attrs;
  /** The payloads, stanzas qualified by jabber:client carrying no xmlns, as on a TCP stream. */
  payloads: Element[];
};

export type BodyParse =
  | { ok: true; body: BoshBody }
  /** `attrs` is set when the wrapper's start tag was read before the error, so the session is known. */
  | { ok: false; error: StreamError; attrs: Attrs | undefined };

/**
 * Parses one request body. `limitsFor` is asked, once the wrapper's start tag is read, which parser limits
 * apply (those of the session its 'sid' names): stanzas are bounded as on the session's TCP stream.
 */
export function parseBody(data: Uint8Array, limitsFor: (attrs: Attrs) => ParserLimits, initial: ParserLimits): BodyParse {
  let attrs: Attrs | undefined;
  let error: StreamError | undefined;
  let ended = false;
  const payloads: Element[] = [];
  const parser: StreamParser = new StreamParser({
    streamStart(name, ns, a) {
      if (name !== 'body' || ns !== NS.HTTPBIND) {
        error ??= new StreamError('invalid-namespace', 'Expected a <body/> in the httpbind namespace');
        return;
      }
      attrs = a;
      parser.setLimits(limitsFor(a));
    },
    stanza(el) {
      if (error) return;
      // XEP-0206 §2: stanzas come qualified by jabber:client, or (as many clients send them) unqualified,
      // i.e. in the wrapper's namespace; both mean what an unqualified stanza on a TCP stream means.
      if (el.attrs.xmlns === NS.CLIENT) delete el.attrs.xmlns;
      payloads.push(el);
    },
    streamEnd() {
      ended = true;
    },
    error(err) {
      error ??= err;
    },
  }, initial);
  // The request is one document (§6): only whitespace may follow the wrapper, whose end is a '>' and so must be
  // the last one. The parser stops reading at the wrapper's end: it must still be open before that last '>'.
  const last = data.lastIndexOf(0x3e);
  parser.write(data.subarray(0, Math.max(last, 0)));
  if (ended) error ??= new StreamError('not-well-formed', 'Content after the <body/>');
  else parser.write(data.subarray(Math.max(last, 0)));
  if (ended && !isBlank(data, last + 1)) error ??= new StreamError('not-well-formed', 'Content after the <body/>');
  if (!error && !ended) error = new StreamError('not-well-formed', 'Incomplete <body/>');
  if (error) return { ok: false, error, attrs };
  return { ok: true, body: { attrs: attrs as Attrs, payloads } };
}

/** Whether data[from..] is XML whitespace only. */
function isBlank(data: Uint8Array, from: number): boolean {
  for (let i = from; i < data.length; i++) {
    const c = data[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

/** Response attributes; undefined values are left out. */
export type BodyAttrs = Record<string, string | number | undefined>;

/**
 * A response <body/>. `payload` is serialized XML; `streamPrefix` declares xmlns:stream for <stream:features/>
 * and <stream:error/> (XEP-0206 §2); an attribute named xmpp:* brings the xbosh namespace declaration.
 */
export function responseBody(attrs: BodyAttrs, payload: string, streamPrefix: boolean): string {
  let s = `<body xmlns='${NS.HTTPBIND}'`;
  let xbosh = false;
  for (const k in attrs) {
    const v = attrs[k];
    if (v === undefined) continue;
    if (k.startsWith('xmpp:')) xbosh = true;
    s += ` ${k}='${escapeAttr(String(v))}'`;
  }
  if (xbosh) s += ` xmlns:xmpp='${NS.XBOSH}'`;
  if (streamPrefix) s += ` xmlns:stream='${NS.STREAM}'`;
  return payload === '' ? s + '/>' : s + '>' + payload + '</body>';
}

/** A terminate body with a binding condition (XEP-0124 §17.2); see-other-uri carries the URI to use. */
export function terminateBody(condition: BoshCondition | undefined, extra: BodyAttrs = {}, payload = '', streamPrefix = false): string {
  return responseBody({ ...extra, type: 'terminate', condition }, payload, streamPrefix);
}

/**
 * Qualifies one serialized top-level element for the response: inside a <body/> the default namespace is
 * httpbind, so a stanza written for a jabber:client stream gets xmlns='jabber:client' (XEP-0206 §2).
 * Elements with their own xmlns, and stream:-prefixed ones (declared on the body), stay as they are.
 */
export function qualify(data: string): string {
  if (data.charCodeAt(0) !== 0x3c || data.startsWith('<stream:')) return data;
  // Attribute values are escaped, so the first '>' ends the start tag.
  const close = data.indexOf('>');
  if (close < 0) return data;
  const tag = data.slice(0, close);
  if (tag.includes(' xmlns="') || tag.includes(" xmlns='")) return data;
  let nameEnd = 1;
  while (nameEnd < close) {
    const c = data.charCodeAt(nameEnd);
    if (c === 0x20 || c === 0x2f || c === 0x09 || c === 0x0a || c === 0x0d) break;
    nameEnd++;
  }
  return `${data.slice(0, nameEnd)} xmlns="${NS.CLIENT}"${data.slice(nameEnd)}`;
}
