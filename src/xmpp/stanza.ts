// Stanza helpers: kinds, type checks and replies (RFC 6120 §8).
import { Element, xml } from '../xml/element.ts';
import { StanzaError } from '../core/errors.ts';

export const MESSAGE_TYPES = ['chat', 'error', 'groupchat', 'headline', 'normal'] as const;
export const PRESENCE_TYPES = ['error', 'probe', 'subscribe', 'subscribed', 'unavailable', 'unsubscribe', 'unsubscribed'] as const;
export const IQ_TYPES = ['get', 'set', 'result', 'error'] as const;
export const SUBSCRIPTION_TYPES = ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'] as const;

export type MessageType = (typeof MESSAGE_TYPES)[number];
export type PresenceType = (typeof PRESENCE_TYPES)[number];

export function isStanza(el: Element): el is Element & { name: 'message' | 'presence' | 'iq' } {
  return (el.name === 'message' || el.name === 'presence' || el.name === 'iq') && el.attrs.xmlns === undefined;
}

/** Message type with RFC 6121 §5.2.2's rule: missing or unknown means normal. */
export function messageType(el: Element): MessageType {
  const t = el.attrs.type;
  return (MESSAGE_TYPES as readonly string[]).includes(t ?? '') ? (t as MessageType) : 'normal';
}

export function isSubscriptionType(t: string | undefined): t is (typeof SUBSCRIPTION_TYPES)[number] {
  return t === 'subscribe' || t === 'subscribed' || t === 'unsubscribe' || t === 'unsubscribed';
}

/** The error reply to a stanza: addresses swapped, original content kept for context (RFC 6120 §8.3.1). */
export function errorReply(stanza: Element, err: StanzaError, by?: string): Element {
  const attrs: Record<string, string> = { ...stanza.attrs, type: 'error' };
  delete attrs.to;
  delete attrs.from;
  if (stanza.attrs.from !== undefined) attrs.to = stanza.attrs.from;
  if (stanza.attrs.to !== undefined) attrs.from = stanza.attrs.to;
  const reply = new Element(stanza.name, attrs);
  for (const c of stanza.children) if (typeof c === 'string' || c.name !== 'error') reply.children.push(c);
  reply.children.push(err.toElement(by));
  return reply;
}

/** The result reply to an IQ, with an optional payload. */
export function iqResult(iq: Element, payload?: Element): Element {
  return xml('iq', { type: 'result', id: iq.attrs.id, to: iq.attrs.from, from: iq.attrs.to }, payload);
}

/** RFC 6120 §8: what every stanza must look like before it is routed; throws bad-request otherwise. */
export function checkStanzaShape(stanza: Element): void {
  const type = stanza.attrs.type;
  if (stanza.name === 'iq') {
    if (stanza.attrs.id === undefined || stanza.attrs.id === '') throw StanzaError.badRequest('IQ without id');
    if (!(IQ_TYPES as readonly string[]).includes(type ?? '')) throw StanzaError.badRequest('IQ type must be get, set, result or error');
    if ((type === 'get' || type === 'set') && stanza.getElements().length !== 1) {
      throw StanzaError.badRequest('IQ get/set must contain exactly one child element');
    }
  } else if (stanza.name === 'presence') {
    if (type !== undefined && !(PRESENCE_TYPES as readonly string[]).includes(type)) throw StanzaError.badRequest(`Unknown presence type ${type}`);
  }
}
