// Presence broadcast (RFC 6121 §4): initial presence with probes, updates, unavailable (sent or implied by a
// closed session), directed presence, and answers to probes.
import type { Element } from '../../xml/element.ts';
import { xml } from '../../xml/element.ts';
import type { Host } from '../../core/host.ts';
import { SessionKey, type C2sSession } from '../../core/session.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import { Jid } from '../../xmpp/jid.ts';
import { hasFrom, hasTo, type RosterService } from './roster-service.ts';

/** Full JIDs this resource sent directed presence to; they get unavailable when it goes away (§4.6.3). */
const DIRECTED = new SessionKey<Set<string>>('roster.directed');

export class PresenceBroadcaster {
  private readonly host: Host;
  private readonly roster: RosterService;

  constructor(host: Host, roster: RosterService) {
    this.host = host;
    this.roster = roster;
  }

  private get sessions() {
    return this.host.server.sessions;
  }
  private get router() {
    return this.host.server.router;
  }

  /** Available or unavailable presence without 'to' from a local resource. */
  async broadcast(session: C2sSession, stanza: Element): Promise<'initial' | 'update' | 'unavailable' | 'ignored'> {
    const jid = session.jid;
    if (!jid) return 'ignored';
    const type = stanza.attrs.type;
    if (type === 'unavailable') {
      if (!session.available) return 'ignored';
      await this.goUnavailable(session, stanza);
      return 'unavailable';
    }
    if (type !== undefined) return 'ignored';
    const initial = !session.available;
    const priority = Number.parseInt(stanza.getChildText('priority') ?? '0', 10);
    session.priority = Number.isFinite(priority) && priority >= -128 && priority <= 127 ? priority : 0;
    session.presence = stanza;
    session.available = true;
    const { items } = await this.roster.get(jid.bare);
    for (const item of items) {
      if (hasFrom(item.subscription)) this.routeFrom(stanza, jid, Jid.parse(item.jid));
    }
    this.toOwnResources(stanza, jid);
    if (initial) {
      for (const item of items) {
        if (hasTo(item.subscription)) {
          const contact = Jid.parse(item.jid);
          void this.router.route(xml('presence', { type: 'probe', from: jid.bareString, to: contact.toString() }), jid.bare, contact);
        }
      }
      // The new resource learns about the account's other available resources.
      for (const other of this.sessions.available(jid.bare)) {
        if (other !== session && other.presence && other.jid) session.send(withAddresses(other.presence, other.jid, jid));
      }
    }
    return initial ? 'initial' : 'update';
  }

  /** The resource goes unavailable: contacts, directed recipients and own resources are told (§4.5.2). */
  async goUnavailable(session: C2sSession, stanza?: Element): Promise<void> {
    const jid = session.jid;
    if (!jid || !session.available) return;
    session.available = false;
    session.presence = undefined;
    const unavailable = stanza ?? xml('presence', { type: 'unavailable', from: jid.toString() });
    unavailable.attrs.from = jid.toString();
    const { items } = await this.roster.get(jid.bare);
    const told = new Set<string>();
    for (const item of items) {
      if (hasFrom(item.subscription)) {
        told.add(item.jid);
        this.routeFrom(unavailable, jid, Jid.parse(item.jid));
      }
    }
    for (const to of session.get(DIRECTED) ?? []) {
      const target = Jid.parse(to);
      if (!told.has(target.bareString)) this.routeFrom(unavailable, jid, target);
    }
    session.set(DIRECTED, undefined);
    this.toOwnResources(unavailable, jid, session);
  }

  /** Directed presence: remembered so the recipient gets unavailable later. */
  directed(e: StanzaEvent): void {
    const s = e.origin;
    if (!s) return;
    const set = s.get(DIRECTED) ?? new Set<string>();
    if (e.stanza.attrs.type === 'unavailable') set.delete(e.to.toString());
    else set.add(e.to.toString());
    s.set(DIRECTED, set.size > 0 ? set : undefined);
  }

  /** A probe for a local user: answered with each available resource's presence if the prober is subscribed. */
  async probe(e: StanzaEvent): Promise<void> {
    const user = e.to.bare;
    const prober = e.from;
    if (user.equals(prober.bare)) {
      for (const s of this.sessions.available(user)) if (s.presence && s.jid) this.routeFrom(s.presence, s.jid, prober);
      return;
    }
    const item = await this.roster.item(user, prober.bare);
    if (!item || !hasFrom(item.subscription)) return; // §4.3.2: never reveal presence to the unsubscribed
    for (const s of this.sessions.available(user)) {
      if (s.presence && s.jid) this.routeFrom(s.presence, s.jid, prober);
    }
  }

  /** After approving a subscription the contact gets the user's current presence (§3.1.5). */
  sendCurrentTo(user: Jid, contact: Jid): void {
    for (const s of this.sessions.available(user)) {
      if (s.presence && s.jid) this.routeFrom(s.presence, s.jid, contact);
    }
  }

  sendUnavailableTo(user: Jid, contact: Jid): void {
    for (const s of this.sessions.available(user)) {
      if (s.jid) void this.router.route(xml('presence', { type: 'unavailable', from: s.jid.toString(), to: contact.toString() }), s.jid, contact);
    }
  }

  private toOwnResources(stanza: Element, from: Jid, also?: C2sSession): void {
    for (const s of this.sessions.available(from.bare)) if (s.jid) s.send(withAddresses(stanza, from, s.jid));
    if (also?.jid && !also.available) also.send(withAddresses(stanza, from, also.jid));
  }

  private routeFrom(stanza: Element, from: Jid, to: Jid): void {
    void this.router.route(withAddresses(stanza, from, to), from, to);
  }
}

/** A copy of a presence with new addresses: the same stanza goes to many recipients. */
function withAddresses(stanza: Element, from: Jid, to: Jid): Element {
  const copy = xml('presence', { ...stanza.attrs, from: from.toString(), to: to.toString() });
  copy.children = stanza.children;
  return copy;
}
