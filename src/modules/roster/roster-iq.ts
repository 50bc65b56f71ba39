// Roster get and set (RFC 6121 §2) with versioning (XEP-0237, RFC 6121 §2.6).
import type { Element } from '../../xml/element.ts';
import { xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { StanzaError } from '../../core/errors.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import { Jid } from '../../xmpp/jid.ts';
import { hasFrom, hasTo, itemElement, newItem, type RosterService } from './roster-service.ts';
import type { Router } from '../../core/router.ts';

const MAX_GROUP_LENGTH = 1023;
const MAX_NAME_LENGTH = 1023;

export async function rosterGet(roster: RosterService, e: StanzaEvent, query: Element, versioning: boolean): Promise<Element | undefined> {
  if (!e.to.equals(e.from.bare)) throw StanzaError.forbidden('Only your own roster');
  if (e.origin) e.origin.rosterRequested = true;
  const { version, items } = await roster.get(e.from);
  const requested = query.attrs.ver;
  if (versioning && requested !== undefined && requested === String(version)) {
    // Up to date: an empty result, changes follow as pushes (RFC 6121 §2.6.3).
    return undefined;
  }
  return xml('query', { xmlns: NS.ROSTER, ver: versioning ? String(version) : undefined }, items.map(itemElement));
}

export async function rosterSet(roster: RosterService, router: Router, e: StanzaEvent, query: Element): Promise<undefined> {
  if (!e.to.equals(e.from.bare)) throw StanzaError.forbidden('Only your own roster');
  const items = query.getElements();
  const el = items[0];
  if (items.length !== 1 || !el || el.name !== 'item') throw StanzaError.badRequest('Exactly one item');
  const rawJid = el.attrs.jid;
  if (rawJid === undefined) throw StanzaError.badRequest('Item without jid');
  const contact = Jid.parse(rawJid).bare;
  const user = e.from.bare;

  if (el.attrs.subscription === 'remove') {
    if (!(await removeRosterItem(roster, router, user, contact))) throw StanzaError.itemNotFound();
    return undefined;
  }

  const groups: string[] = [];
  for (const g of el.getChildren('group')) {
    const name = g.text();
    if (name === '') throw StanzaError.notAcceptable('Empty group name');
    if (name.length > MAX_GROUP_LENGTH) throw StanzaError.notAcceptable('Group name too long');
    if (groups.includes(name)) throw StanzaError.badRequest('Duplicate group');
    groups.push(name);
  }
  const name = el.attrs.name;
  if (name !== undefined && name.length > MAX_NAME_LENGTH) throw StanzaError.notAcceptable('Name too long');
  // Subscription, ask and approved belong to the server: whatever the client says of them is ignored.
  const existing = (await roster.item(user, contact)) ?? newItem(contact);
  await roster.put(user, { ...existing, name: name === '' ? undefined : name, groups });
  return undefined;
}

/** Removes an item (RFC 6121 §2.5.2): both directions are cancelled before it goes. False when there was none. */
export async function removeRosterItem(roster: RosterService, router: Router, user: Jid, contact: Jid): Promise<boolean> {
  const existing = await roster.item(user, contact);
  if (!existing) return false;
  if (hasTo(existing.subscription) || existing.ask) {
    await router.route(xml('presence', { type: 'unsubscribe', from: user.toString(), to: contact.toString() }), user, contact);
  }
  if (hasFrom(existing.subscription)) {
    await router.route(xml('presence', { type: 'unsubscribed', from: user.toString(), to: contact.toString() }), user, contact);
  }
  await roster.remove(user, contact);
  return true;
}
