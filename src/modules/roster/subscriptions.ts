// The presence subscription state machine (RFC 6121 §3 and Appendix A): outbound requests from the user,
// inbound ones from contacts, each moving the roster item and pushing it.
import { Element, xml } from '../../xml/element.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import type { Host } from '../../core/host.ts';
import type { RosterItem } from '../../storage/types.ts';
import type { Jid } from '../../xmpp/jid.ts';
import { hasFrom, hasTo, newItem, type RosterService } from './roster-service.ts';
import type { PresenceBroadcaster } from './presence.ts';

type SubType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export class Subscriptions {
  private readonly host: Host;
  private readonly roster: RosterService;
  private readonly presence: PresenceBroadcaster;

  constructor(host: Host, roster: RosterService, presence: PresenceBroadcaster) {
    this.host = host;
    this.roster = roster;
    this.presence = presence;
  }

  private get requests() {
    return this.host.server.storage.roster;
  }

  /** The user sends a subscription stanza: stamp bare JIDs, update the roster, route when the spec says so. */
  async outbound(e: StanzaEvent, type: SubType): Promise<void> {
    const user = e.from.bare;
    const contact = e.to.bare;
    const stanza = e.stanza;
    stanza.attrs.from = user.toString();
    stanza.attrs.to = contact.toString();
    const existing = await this.roster.item(user, contact);
    const item: RosterItem = existing ? { ...existing } : newItem(contact);
    let route = true;
    switch (type) {
      case 'subscribe':
        if (!hasTo(item.subscription)) item.ask = true;
        break;
      case 'subscribed': {
        const pending = await this.pendingFrom(user, contact);
        if (hasFrom(item.subscription)) {
          route = false; // already approved: nothing to tell
        } else if (pending) {
          item.subscription = item.subscription === 'to' ? 'both' : 'from';
          item.approved = false;
        } else {
          // Pre-approval (RFC 6121 §3.4): remembered, not routed.
          item.approved = true;
          route = false;
        }
        if (pending) await this.requests.setPendingRequest(this.host.name, user.local, contact.bareString, null);
        break;
      }
      case 'unsubscribe':
        item.ask = false;
        if (item.subscription === 'to') item.subscription = 'none';
        else if (item.subscription === 'both') item.subscription = 'from';
        break;
      case 'unsubscribed': {
        const pending = await this.pendingFrom(user, contact);
        if (pending) await this.requests.setPendingRequest(this.host.name, user.local, contact.bareString, null);
        const hadFrom = hasFrom(item.subscription);
        item.approved = false;
        if (item.subscription === 'from') item.subscription = 'none';
        else if (item.subscription === 'both') item.subscription = 'to';
        // §3.2.2: the contact stops seeing the user, so it gets unavailable from each available resource.
        if (hadFrom) this.presence.sendUnavailableTo(user, contact);
        break;
      }
    }
    if (existing || item.ask || item.approved || item.subscription !== 'none') {
      if (!existing || changed(existing, item)) await this.roster.put(user, item);
    }
    if (route) await this.host.server.router.route(stanza, user, contact);
    // §3.1.5: after approving, the contact gets the user's current presence.
    if (type === 'subscribed' && route) this.presence.sendCurrentTo(user, contact);
  }

  /** A contact's subscription stanza arrives for a local user. Returns after delivering or dropping it. */
  async inbound(e: StanzaEvent, type: SubType): Promise<void> {
    const user = e.to.bare;
    const contact = e.from.bare;
    const { router, sessions } = this.host.server;
    if (sessions.resources(user).length === 0 && !(await this.host.auth.userExists(user.local))) {
      // §3.1.3: a request to an account that does not exist is answered with unsubscribed.
      if (type === 'subscribe') {
        await router.route(xml('presence', { type: 'unsubscribed', from: user.toString(), to: contact.toString() }), user, contact);
      }
      return;
    }
    const stanza = e.stanza;
    stanza.attrs.to = user.toString();
    const existing = await this.roster.item(user, contact);
    const deliver = (): void => {
      for (const s of sessions.available(user)) s.send(stanza);
    };
    switch (type) {
      case 'subscribe': {
        if (existing && hasFrom(existing.subscription)) {
          // Already subscribed: answer for the user (§3.1.3).
          await router.route(xml('presence', { type: 'subscribed', from: user.toString(), to: contact.toString() }), user, contact);
          return;
        }
        if (existing?.approved) {
          await this.roster.put(user, { ...existing, approved: false, subscription: existing.subscription === 'to' ? 'both' : 'from' });
          await router.route(xml('presence', { type: 'subscribed', from: user.toString(), to: contact.toString() }), user, contact);
          this.presence.sendCurrentTo(user, contact);
          return;
        }
        // Kept until the user answers, and delivered again at each login (§3.1.3).
        await this.requests.setPendingRequest(this.host.name, user.local, contact.bareString, stanza.toString());
        deliver();
        return;
      }
      case 'subscribed': {
        if (!existing || !existing.ask) return; // not requested: ignored (§3.1.6)
        await this.roster.put(user, { ...existing, ask: false, subscription: existing.subscription === 'from' ? 'both' : 'to' });
        deliver();
        return;
      }
      case 'unsubscribe': {
        const pending = await this.pendingFrom(user, contact);
        if (pending) await this.requests.setPendingRequest(this.host.name, user.local, contact.bareString, null);
        if (existing && hasFrom(existing.subscription)) {
          await this.roster.put(user, { ...existing, subscription: existing.subscription === 'both' ? 'to' : 'none' });
          deliver();
        } else if (pending) deliver();
        return;
      }
      case 'unsubscribed': {
        if (!existing || (!hasTo(existing.subscription) && !existing.ask)) return;
        await this.roster.put(user, { ...existing, ask: false, subscription: existing.subscription === 'both' ? 'from' : existing.subscription === 'from' ? 'from' : 'none' });
        deliver();
        // The user no longer sees the contact: tell each resource it is gone.
        for (const s of sessions.available(user)) {
          for (const r of sessions.available(contact)) {
            s.send(xml('presence', { type: 'unavailable', from: r.jid?.toString(), to: s.jid?.toString() }));
          }
        }
        return;
      }
    }
  }

  private async pendingFrom(user: Jid, contact: Jid): Promise<boolean> {
    const list = await this.requests.pendingRequests(this.host.name, user.local);
    return list.some((r) => r.from === contact.bareString);
  }

  /** Redelivers stored inbound requests to a resource that just became available. */
  async redeliver(user: Jid, send: (el: Element) => void, parse: (s: string) => Element | undefined): Promise<void> {
    for (const r of await this.requests.pendingRequests(this.host.name, user.local)) {
      const el = parse(r.stanza);
      if (el) send(el);
    }
  }
}

function changed(a: RosterItem, b: RosterItem): boolean {
  return a.subscription !== b.subscription || a.ask !== b.ask || a.approved !== b.approved;
}
