// A room's state: configuration, subject, affiliations (by bare JID), occupants (by nick, and by each real full JID
// joined under that nick) and discussion history. Rooms are changed by one stanza at a time (see service.ts).
import { createHmac, randomBytes } from 'node:crypto';
import type { Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import type { RoomConfig } from './config.ts';
import { History } from './history.ts';
import { TokenBucket } from './limits.ts';
import type { Affiliation, Role, StoredAffiliation } from './roles.ts';

export type AffiliationEntry = {
  affiliation: StoredAffiliation;
  /** Reserved nick (members, admins, owners). */
  nick?: string | undefined;
  reason?: string | undefined;
  /** Notified of messages while away from a members-only room (the member's own setting). */
  notify: boolean;
};

export type Subject = { text: string; /** The occupant JID that set it, if any. */ by: string | undefined; at: number };

export class Occupant {
  nick: string;
  /** The occupant JID, room@service/nick. */
  jid: Jid;
  readonly bare: Jid;
  /** The real full JIDs joined under this nick (one per device of the same account). */
  readonly sessions = new Map<string, Jid>();
  /** The occupant's last available presence, as sent (the room's own extensions are added per recipient). */
  presence: Element;
  role: Role;
  readonly occupantId: string;
  readonly rate: TokenBucket;

  constructor(opts: { nick: string; jid: Jid; session: Jid; presence: Element; role: Role; occupantId: string; rate: TokenBucket }) {
    this.nick = opts.nick;
    this.jid = opts.jid;
    this.bare = opts.session.bare;
    this.sessions.set(opts.session.toString(), opts.session);
    this.presence = opts.presence;
    this.role = opts.role;
    this.occupantId = opts.occupantId;
    this.rate = opts.rate;
  }

  /** The real JID shown to those allowed to see it: the first device joined. */
  get realJid(): Jid {
    return this.sessions.values().next().value as Jid;
  }
}

export class Room {
  readonly node: string;
  readonly jid: Jid;
  config: RoomConfig;
  subject: Subject | undefined;
  readonly affiliations = new Map<string, AffiliationEntry>();
  /** Occupants by nick. */
  readonly occupants = new Map<string, Occupant>();
  /** Occupants by each real full JID. */
  readonly bySession = new Map<string, Occupant>();
  /** Created and not yet configured: only the owner is in (§10.1.1). */
  locked: boolean;
  /** Keys the occupant ids (XEP-0421): stable per real bare JID, unlinkable across rooms. */
  readonly secret: string;
  readonly createdAt: number;
  readonly history: History;
  /** Kept in the database (persistent rooms). */
  stored = false;
  destroyed = false;

  constructor(opts: { node: string; jid: Jid; config: RoomConfig; locked: boolean; secret?: string; createdAt?: number }) {
    this.node = opts.node;
    this.jid = opts.jid;
    this.config = opts.config;
    this.locked = opts.locked;
    this.secret = opts.secret ?? randomBytes(32).toString('base64url');
    this.createdAt = opts.createdAt ?? Date.now();
    this.history = new History(opts.jid.toString(), opts.config.historyLength);
  }

  /**
   * A user's affiliation: by bare JID, then by domain (§9.2: banning a domain bans every user of it). Full JIDs
   * count as their bare JID.
   */
  affiliationOf(jid: Jid): Affiliation {
    const own = this.affiliations.get(jid.bareString);
    if (own) return own.affiliation;
    if (jid.local !== '' && this.affiliations.get(jid.domain)?.affiliation === 'outcast') return 'outcast';
    return 'none';
  }

  /** The occupant of an account, whatever its nick. */
  occupantOf(bare: Jid): Occupant | undefined {
    for (const o of this.occupants.values()) if (o.bare.bareString === bare.bareString) return o;
    return undefined;
  }

  /** The bare JID that reserved a nick, if any. */
  nickOwner(nick: string): string | undefined {
    for (const [jid, a] of this.affiliations) if (a.nick === nick && a.affiliation !== 'outcast') return jid;
    return undefined;
  }

  list(affiliation: StoredAffiliation): string[] {
    const out: string[] = [];
    for (const [jid, a] of this.affiliations) if (a.affiliation === affiliation) out.push(jid);
    return out;
  }

  /** XEP-0421 §4: an opaque id derived from the real bare JID and this room's secret. */
  occupantIdFor(bare: Jid): string {
    return createHmac('sha256', this.secret).update(bare.bareString).digest('base64url').slice(0, 32);
  }

  get empty(): boolean {
    return this.occupants.size === 0;
  }
}
