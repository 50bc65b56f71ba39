// Generators shared by the transport fuzzers: stanzas with random payloads (in namespaces the server reads),
// addresses good and bad, and byte-level mutation of a valid document.
import fc from 'fast-check';
import { Element, serialize } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/ns.ts';

export const text = fc.string({ maxLength: 20 }).map((s) => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, ''));
const name = fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/),
  fc.constantFrom('query', 'ping', 'item', 'body', 'vCard', 'enable', 'r', 'a', 'time', 'pubsub', 'block', 'active', 'bind', 'resource'));
/** Namespaces of payloads the server reads (jabber:iq:register left out: it could remove the account under test). */
const payloadNs = fc.constantFrom(undefined, 'urn:xmpp:ping', 'jabber:iq:roster', 'vcard-temp', 'urn:xmpp:time', 'jabber:iq:version',
  NS.DISCO_INFO, NS.DISCO_ITEMS, 'urn:xmpp:mam:2', 'http://jabber.org/protocol/pubsub', 'urn:xmpp:blocking', 'jabber:iq:private',
  'urn:xmpp:carbons:2', 'urn:xmpp:sm:3', 'urn:xmpp:csi:0', 'jabber:iq:last', NS.BIND, 'urn:x-fuzz');
const attrs = fc.dictionary(fc.constantFrom('id', 'type', 'to', 'from', 'jid', 'name', 'node', 'h', 'xml:lang', 'var', 'x'), text, { maxKeys: 3 });
export const payload: fc.Arbitrary<Element> = fc.letrec<{ el: Element }>((tie) => ({
  el: fc.record({
    name, ns: payloadNs, attrs,
    children: fc.array(fc.oneof({ depthSize: 'small' }, text, tie('el')), { maxLength: 3 }),
  }).map(({ name: n, ns, attrs: a, children }) => new Element(n, ns === undefined ? a : { ...a, xmlns: ns }, children)),
})).el;

/** Addresses for generated stanzas; the probe's accounts are never among them. */
export const jidish = fc.constantFrom('fuzz@localhost', 'fuzz@localhost/other', 'nobody@localhost', 'localhost', 'elsewhere.example',
  '', '@localhost', 'a@b@c', 'fuzz@localhost/', 'localhost/res', 'FUZZ@LOCALHOST', 'x'.repeat(1100) + '@localhost');

export const stanza = fc.record({
  kind: fc.constantFrom('message', 'presence', 'iq'),
  type: fc.option(fc.constantFrom('chat', 'get', 'set', 'result', 'error', 'unavailable', 'subscribe', 'groupchat', 'headline', 'probe', 'bogus')),
  to: fc.option(jidish), from: fc.option(jidish), id: fc.option(text),
  // Mostly stanzas the server routes; sometimes ones in another namespace, which are not stanzas at all.
  ns: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: fc.constant('jabber:client') },
    { weight: 1, arbitrary: fc.constantFrom('jabber:server', 'urn:x-fuzz') }),
  children: fc.array(payload, { maxLength: 3 }),
}).map(({ kind, type, to, from, id, ns, children }) => {
  const a: Record<string, string> = {};
  if (ns !== null) a.xmlns = ns;
  if (type !== null) a.type = type;
  if (to !== null) a.to = to;
  if (from !== null) a.from = from;
  if (id !== null) a.id = id;
  return serialize(new Element(kind, a, children));
});

/** One to three byte edits: at a position (modulo the length), flip to a byte, drop one, or insert one. */
export type ByteEdit = [at: number, byte: number, how: 'flip' | 'drop' | 'insert'];
export const byteEdits: fc.Arbitrary<ByteEdit[]> = fc.array(
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom<ByteEdit[2]>('flip', 'drop', 'insert')), { minLength: 1, maxLength: 3 });

export function applyEdits(data: Buffer, edits: ByteEdit[]): Buffer {
  const bytes = [...data];
  for (const [at, byte, how] of edits) {
    const i = at % (bytes.length + 1);
    if (how === 'flip' && i < bytes.length) bytes[i] = byte;
    else if (how === 'drop') bytes.splice(i, 1);
    else bytes.splice(i, 0, byte);
  }
  return Buffer.from(bytes);
}

/** Bytes of `doc` with one to three bytes flipped, dropped or inserted. */
export const mutation = (doc: fc.Arbitrary<string>): fc.Arbitrary<Buffer> =>
  fc.tuple(doc, byteEdits).map(([d, edits]) => applyEdits(Buffer.from(d, 'utf8'), edits));

/** Pieces of XML syntax, good and bad, to string together. */
export const XMLISH = ['<', '>', '/', '=', "'", '"', '&', ';', '<!--', '-->', '<![CDATA[', ']]>', '<?', '?>', '<!DOCTYPE x>', '&amp;', '&#0;',
  '&#x110000;', '&lt;', 'xmlns', "xmlns=''", 'xmlns:a', 'a:', ':', ' ', 'message', 'body', '\u0000', 'é', '</stream:stream>', '/>',
  "<?xml version='1.0'?>", '\ufeff', '\r\n'];
