// XEP-0280: Message Carbons <https://xmpp.org/extensions/xep-0280.html> 1.0.1, with the XEP-0334 <no-copy/> hint.
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import type { StanzaEvent } from '../core/hook-map.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import type { SessionManager } from '../core/session-manager.ts';
import { Element, xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import type { Jid } from '../xmpp/jid.ts';
import { messageType } from '../xmpp/stanza.ts';

export const CARBONS_NS = {
  CARBONS: 'urn:xmpp:carbons:2',
  FORWARD: 'urn:xmpp:forward:0',
  RECEIPTS: 'urn:xmpp:receipts',
  MARKERS: 'urn:xmpp:chat-markers:0',
  MUC_USER: 'http://jabber.org/protocol/muc#user',
  CONFERENCE: 'jabber:x:conference',
} as const;

/** Set on a session that sent <enable/>; cleared by <disable/>. A new stream starts disabled. */
const ENABLED = new SessionKey<true>('carbons.enabled');

/** Just above the RFC 6121 delivery rules: whatever a feature takes over (blocking, MUC...) is not copied. */
const CARBONS_PRIORITY = PRIORITY.DELIVERY + 10;

export type CarbonDirection = 'sent' | 'received';

/**
 * §6.1: whether a message is copied. `peer` is the other party: the sender of a received message, the recipient
 * of a sent one.
 */
export function carbonEligible(stanza: Element, direction: CarbonDirection, peer: Jid): boolean {
  // §9 and XEP-0334: the sender asked for no copies.
  if (stanza.getChild('private', CARBONS_NS.CARBONS) || stanza.getChild('no-copy', NS.HINTS)) return false;
  const type = messageType(stanza);
  if (type === 'groupchat') return false;
  // Invitations (direct, XEP-0249, and mediated) are copied so every device can join.
  if (stanza.getChild('x', CARBONS_NS.CONFERENCE)) return true;
  const mucUser = stanza.getChild('x', CARBONS_NS.MUC_USER);
  if (mucUser?.getChild('invite')) return true;
  // A private message from a room occupant: the room already sends it to every joined client.
  if (mucUser && direction === 'received' && peer.resource !== '') return false;
  if (type === 'error') {
    // "In response to an eligible message" needs per-message tracking; IM messages go to bare JIDs, so an
    // error bouncing from an account's bare JID is taken as the answer to one.
    return direction === 'received' && peer.local !== '' && peer.resource === '';
  }
  if (type === 'chat') return true;
  if (type === 'normal' && hasBody(stanza)) return true;
  if (type === 'headline') return false;
  // Receipts, chat states and markers keep the other devices' view of the conversation in step.
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns;
    if (ns === CARBONS_NS.RECEIPTS || ns === NS.CHATSTATES || ns === CARBONS_NS.MARKERS) return true;
  }
  return false;
}

function hasBody(stanza: Element): boolean {
  const body = stanza.getChild('body');
  return body !== undefined && (body.attrs.xmlns === undefined || body.attrs.xmlns === NS.CLIENT);
}

/** §7/§8: the copy comes from the user's bare JID, keeps the type, and forwards the original (XEP-0297). */
export function carbonCopy(direction: CarbonDirection, stanza: Element, user: Jid, to: Jid): Element {
  // Inside <forwarded/> the default namespace is not jabber:client, so the forwarded stanza declares it; its
  // child list is copied so later changes to the original (a stanza id, say) cannot race the serialization.
  const original = new Element('message', { ...stanza.attrs, xmlns: NS.CLIENT }, stanza.children.slice());
  return xml('message', { from: user.bareString, to: to.toString(), type: stanza.attrs.type },
    xml(direction, { xmlns: CARBONS_NS.CARBONS }, xml('forwarded', { xmlns: CARBONS_NS.FORWARD }, original)));
}

/**
 * The resources RFC 6121 §8.5 gives the original to (mirrors the delivery rules in core/delivery.ts): the
 * addressed resource if it is online, else the highest-priority non-negative available resources (all
 * non-negative ones for headlines).
 */
function originalRecipients(sessions: SessionManager, e: StanzaEvent): C2sSession[] {
  if (e.to.resource !== '') {
    const s = sessions.get(e.to);
    if (s) return [s];
  }
  const eligible = sessions.available(e.to.bare).filter((s) => s.priority >= 0);
  if (messageType(e.stanza) === 'headline' || eligible.length === 0) return eligible;
  let top = -1;
  for (const s of eligible) if (s.priority > top) top = s.priority;
  return eligible.filter((s) => s.priority === top);
}

export default defineModule({
  id: 'carbons',
  xeps: [{ xep: 280, version: '1.0.1', status: 'complete' }],
  setup(ctx) {
    const { host, sessions } = ctx;
    // §3: the client asks its own server, so the feature is the host's.
    ctx.disco.feature(CARBONS_NS.CARBONS);

    const toggle = (on: boolean) => (e: StanzaEvent): undefined => {
      const s = e.origin;
      // §4.1/§5.1: only a client of this server changes its own setting.
      const toSelf = e.to.bare.equals(e.from.bare) || e.to.equals(host.jid);
      if (!s || !s.jid?.equals(e.from) || !toSelf) throw StanzaError.notAllowed('Carbons are set by each client for itself');
      s.set(ENABLED, on ? true : undefined);
      return undefined;
    };
    ctx.iq.set(CARBONS_NS.CARBONS, 'enable', toggle(true), { to: ['account', 'host'] });
    ctx.iq.set(CARBONS_NS.CARBONS, 'disable', toggle(false), { to: ['account', 'host'] });
    // XEP-0386 §2.3: <enable/> inside a Bind2 request turns carbons on for the new session.
    ctx.hook('c2s/inline', ({ session, element, context }) => {
      if (context !== 'bind2' || !element.is('enable', CARBONS_NS.CARBONS)) return false;
      session.set(ENABLED, true);
      return true;
    });

    /** The account's carbons-enabled sessions, or undefined (the common case) without an allocation. */
    const enabledOf = (user: Jid): C2sSession[] | undefined => {
      let out: C2sSession[] | undefined;
      for (const s of sessions.resources(user)) if (s.get(ENABLED) && s.jid) (out ??= []).push(s);
      return out;
    };

    // §8: what a client sends is copied to the account's other carbons-enabled resources, whether or not the
    // sender has carbons enabled itself.
    ctx.hook('pre-message', (e) => {
      const origin = e.origin;
      if (!origin) return false;
      // Messages to one's own account are copied on the receiving side; messages to a server or service
      // domain are not instant messaging.
      if (e.to.local === '' || e.to.bareString === e.from.bareString) return false;
      const enabled = enabledOf(e.from.bare);
      if (!enabled || !carbonEligible(e.stanza, 'sent', e.to)) return false;
      for (const s of enabled) {
        if (s !== origin) s.send(carbonCopy('sent', e.stanza, e.from, s.jid as Jid));
      }
      return false;
    }, { priority: CARBONS_PRIORITY });

    // §7: what arrives for a local account is copied to each carbons-enabled resource that does not get the
    // original under RFC 6121. The copies go straight to the sessions: routing them would copy them again.
    const received = (e: StanzaEvent): boolean => {
      const enabled = enabledOf(e.to.bare);
      if (enabled && carbonEligible(e.stanza, 'received', e.from)) {
        const direct = originalRecipients(sessions, e);
        const user = e.to.bare;
        for (const s of enabled) {
          // A message to one's own account is not copied back to the resource that sent it.
          if (direct.includes(s) || s === e.origin) continue;
          s.send(carbonCopy('received', e.stanza, user, s.jid as Jid));
        }
      }
      // §9: the receiving server SHOULD remove <private/> before delivering.
      if (e.stanza.getChild('private', CARBONS_NS.CARBONS)) {
        e.stanza.removeChildren((c) => c.name === 'private' && c.attrs.xmlns === CARBONS_NS.CARBONS);
      }
      return false;
    };
    ctx.hook('message/bare', received, { priority: CARBONS_PRIORITY });
    ctx.hook('message/full', received, { priority: CARBONS_PRIORITY });
  },
});
