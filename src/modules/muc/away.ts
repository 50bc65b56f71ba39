// Notifications for members away from a members-only room: each message in such a room raises 'muc/member-away'
// on the host of every member (affiliation member, admin or owner) who has no occupant in the room. The offline
// webhook and XEP-0357 push modules listen to it, so each away member gets one notification per message through
// each, none while present, rate-limited per room and member; owners mute a room, members mute themselves.
import type { Logger } from 'pino';
import type { Host, ServerServices } from '../../core/host.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { WindowLimiter } from './limits.ts';
import type { Room } from './room.ts';
import { affiliationRank } from './roles.ts';

export type MemberAwayEvent = {
  /** The member's host, whose modules notify. */
  host: Host;
  /** The member, a bare JID. */
  user: Jid;
  /** The room's bare JID. */
  room: Jid;
  /** The sender's occupant JID (room@service/nick). */
  from: Jid;
  /** The message as the room broadcast it (stanza-id and occupant-id included), addressed to the member's bare JID. */
  stanza: Element;
  /** Messages of this room the member missed since last in it, this one included. */
  count: number;
};

declare module '../../core/hook-map.ts' {
  interface HookMap {
    /**
     * A message was sent in a members-only room while this member had no occupant in it (see muc/away.ts). Handlers
     * notify and return nothing, so every listener (offline webhook, push) gets the event.
     */
    'muc/member-away': MemberAwayEvent;
  }
}

export type AwayOptions = {
  enabled: boolean;
  /** At most this many notifications per room and member within `windowMs`. */
  max: number;
  windowMs: number;
};

export class AwayNotifier {
  private readonly opts: AwayOptions;
  private readonly server: ServerServices;
  private readonly log: Logger;
  private readonly limiter: WindowLimiter;
  /** Missed messages per room and member, reset when the member joins. */
  private readonly unread = new Map<string, number>();

  constructor(opts: AwayOptions, server: ServerServices, log: Logger) {
    this.opts = opts;
    this.server = server;
    this.log = log;
    this.limiter = new WindowLimiter(opts.max, opts.windowMs);
  }

  /** The member is in the room again: its count of missed messages starts over. */
  present(room: Room, member: Jid): void {
    this.unread.delete(`${room.jid.bareString}\u0000${member.bareString}`);
  }

  /** The room is gone: nothing is kept for it. */
  forget(room: Room): void {
    const prefix = `${room.jid.bareString}\u0000`;
    for (const k of this.unread.keys()) if (k.startsWith(prefix)) this.unread.delete(k);
  }

  sweep(now: number): void {
    this.limiter.sweep(now);
  }

  /** Raises the event for each away member of a members-only room with notifications on; never throws. */
  async notify(room: Room, message: Element, from: Jid, now: number): Promise<void> {
    if (!this.opts.enabled || !room.config.membersOnly || !room.config.pushAway) return;
    const present = new Set<string>();
    for (const o of room.occupants.values()) present.add(o.bare.bareString);
    for (const [jid, entry] of room.affiliations) {
      if (affiliationRank(entry.affiliation) < affiliationRank('member') || !entry.notify || present.has(jid)) continue;
      const member = Jid.tryParse(jid);
      // Domain entries are bans, and only accounts of this server can be notified through its modules.
      if (!member || member.local === '') continue;
      const host = this.server.hosts.get(member.domain);
      if (!host) continue;
      const key = `${room.jid.bareString}\u0000${member.bareString}`;
      const count = (this.unread.get(key) ?? 0) + 1;
      this.unread.set(key, count);
      if (!this.limiter.allow(key, now)) continue;
      const stanza = xml('message', { ...message.attrs, to: member.bareString });
      stanza.children = [...message.children];
      try {
        await host.bus.run('muc/member-away', { host, user: member, room: room.jid, from, stanza, count });
      } catch (err) {
        this.log.error({ err, room: room.jid.bareString, member: member.bareString }, 'notifying an away member failed');
      }
    }
  }
}
