// Resource binding (RFC 6120 §7): client-requested or server-generated resources.
import { randomBytes } from 'node:crypto';
import { Element, xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { StanzaError } from '../core/errors.ts';
import { Jid } from '../xmpp/jid.ts';
import { errorReply } from '../xmpp/stanza.ts';

export type BindResult = { ok: true; jid: Jid; reply: Element } | { ok: false; reply: Element };

export function bindResource(user: string, host: string, iq: Element, payload: Element): BindResult {
  const requested = payload.getChildText('resource', NS.BIND)?.trim();
  let jid: Jid;
  try {
    // A server-generated resource is random, so it never collides with another session.
    jid = Jid.of(user, host, requested || `parley-${randomBytes(6).toString('base64url')}`);
  } catch {
    // RFC 6120 §7.7.2.1: a resource that cannot be prepared gets bad-request.
    return { ok: false, reply: errorReply(iq, StanzaError.badRequest('Invalid resource')) };
  }
  const reply = xml('iq', { type: 'result', id: iq.attrs.id }, xml('bind', { xmlns: NS.BIND }, xml('jid', null, jid.toString())));
  return { ok: true, jid, reply };
}
