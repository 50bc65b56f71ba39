// Roster reads, writes and pushes (RFC 6121 §2.1.6): every change is stored, versioned and pushed to each
// resource that has requested the roster.
import { randomBytes } from 'node:crypto';
import { Element, xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import type { Host } from '../../core/host.ts';
import type { RosterItem, Subscription } from '../../storage/types.ts';
import type { Jid } from '../../xmpp/jid.ts';

export class RosterService {
  private readonly host: Host;
  private readonly versioning: boolean;

  constructor(host: Host, versioning: boolean) {
    this.host = host;
    this.versioning = versioning;
  }

  private get store() {
    return this.host.server.storage.roster;
  }

  get(user: Jid) {
    return this.store.get(this.host.name, user.local);
  }

  item(user: Jid, contact: Jid): Promise<RosterItem | undefined> {
    return this.store.getItem(this.host.name, user.local, contact.bareString);
  }

  /** Stores the item and pushes it to the user's interested resources. */
  async put(user: Jid, item: RosterItem): Promise<void> {
    const version = await this.store.put(this.host.name, user.local, item);
    this.push(user, itemElement(item), version);
  }

  async remove(user: Jid, contact: Jid): Promise<void> {
    const version = await this.store.delete(this.host.name, user.local, contact.bareString);
    this.push(user, xml('item', { jid: contact.bareString, subscription: 'remove' }), version);
  }

  private push(user: Jid, item: Element, version: number): void {
    for (const s of this.host.server.sessions.resources(user)) {
      if (!s.rosterRequested || !s.jid) continue;
      // A roster push has no 'from' (or the user's bare JID): RFC 6121 §2.1.6.
      s.send(xml('iq', { type: 'set', id: `push-${randomBytes(6).toString('base64url')}`, to: s.jid.toString() },
        xml('query', { xmlns: NS.ROSTER, ver: this.versioning ? String(version) : undefined }, item)));
    }
  }
}

export function itemElement(item: RosterItem): Element {
  return xml('item', {
    jid: item.jid,
    name: item.name,
    subscription: item.subscription,
    ask: item.ask ? 'subscribe' : undefined,
    approved: item.approved ? 'true' : undefined,
  }, item.groups.map((g) => xml('group', null, g)));
}

export function newItem(contact: Jid): RosterItem {
  return { jid: contact.bareString, subscription: 'none', ask: false, approved: false, groups: [] };
}

/** Whether the contact receives the user's presence. */
export const hasFrom = (s: Subscription): boolean => s === 'from' || s === 'both';
/** Whether the user receives the contact's presence. */
export const hasTo = (s: Subscription): boolean => s === 'to' || s === 'both';
