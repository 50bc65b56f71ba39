// What the room sends: occupant presence with the muc#user extension as each recipient may see it (§7.2.2-7.2.4,
// §17.3), in-room messages to every occupant, and status notices.
import { randomUUID } from 'node:crypto';
import { Element, xml } from '../../xml/element.ts';
import type { Jid } from '../../xmpp/jid.ts';
import { nonAnonymous } from './config.ts';
import { MUC_NS, STATUS, type StatusCode } from './ns.ts';
import type { Occupant, Room } from './room.ts';
import type { Affiliation, Role } from './roles.ts';

/** Sends one stanza; the service routes it (see MucService.route). */
export type Send = (stanza: Element, from: Jid, to: Jid) => Promise<void>;

export type PresenceOpts = {
  type?: 'unavailable';
  /** Status codes for every recipient. */
  codes?: StatusCode[];
  /** Status codes for the occupant's own devices only (110 is always added there). */
  selfCodes?: StatusCode[];
  /** The moderator or admin who acted (kick, ban, role or affiliation change): nick or bare JID. */
  actor?: { nick?: string | undefined; jid?: string | undefined } | undefined;
  reason?: string | undefined;
  /** §7.6: the new nick, in the unavailable presence of a nick change (with 303). */
  newNick?: string | undefined;
  /** §10.9: the <destroy/> element of a destroyed room. */
  destroy?: Element | undefined;
  /** Overrides, for presence that tells of a change (role none on leaving, a ban's outcast). */
  role?: Role | undefined;
  affiliation?: Affiliation | undefined;
  /** What the occupant sent with an unavailable presence (a custom exit message). */
  content?: Element | undefined;
  /** The id of the presence that caused this, reflected for tracking (§7.2.2). */
  id?: string | undefined;
};

/** Children of a client's presence the room never reflects: its own namespaces and ids, which only it may set. */
function reflectable(c: Element | string): boolean {
  if (typeof c === 'string') return false;
  const ns = c.attrs.xmlns;
  return !(ns === MUC_NS.MUC || ns === MUC_NS.USER || ns === MUC_NS.OCCUPANT_ID);
}

/** Whether an occupant may see real JIDs: everyone in a non-anonymous room, moderators otherwise. */
function seesJids(room: Room, viewer: Occupant | undefined): boolean {
  return nonAnonymous(room.config) || viewer?.role === 'moderator';
}

export function occupantIdElement(occ: Occupant): Element {
  return xml('occupant-id', { xmlns: MUC_NS.OCCUPANT_ID, id: occ.occupantId });
}

/** The presence of `occ` as `viewer` gets it (on `session`, one of the viewer's devices). */
export function occupantPresence(room: Room, occ: Occupant, viewer: Occupant | undefined, session: Jid, opts: PresenceOpts): Element {
  const self = viewer === occ;
  const p = new Element('presence', { from: occ.jid.toString(), to: session.toString() });
  if (opts.id !== undefined) p.attrs.id = opts.id;
  if (opts.type) p.attrs.type = opts.type;
  const source = opts.type === 'unavailable' ? opts.content : occ.presence;
  if (source) for (const c of source.children) if (reflectable(c)) p.children.push(c);
  const real = self ? session : occ.realJid;
  const item = xml('item', {
    affiliation: opts.affiliation ?? room.affiliationOf(occ.bare),
    jid: self || seesJids(room, viewer) ? real.toString() : undefined,
    nick: opts.newNick,
    role: opts.role ?? occ.role,
  },
  opts.actor && (opts.actor.nick !== undefined || opts.actor.jid !== undefined) ? xml('actor', { nick: opts.actor.nick, jid: opts.actor.jid }) : undefined,
  opts.reason !== undefined ? xml('reason', null, opts.reason) : undefined);
  const codes = new Set<string>(opts.codes ?? []);
  if (self) {
    codes.add(STATUS.SELF);
    for (const c of opts.selfCodes ?? []) codes.add(c);
  }
  p.children.push(xml('x', { xmlns: MUC_NS.USER }, item, opts.destroy,
    [...codes].sort().map((code) => xml('status', { code }))));
  p.children.push(occupantIdElement(occ));
  return p;
}

/** Whether the room shows this occupant's presence to the others (muc#roomconfig_presencebroadcast). */
export function broadcastable(room: Room, role: Role): boolean {
  return room.config.presenceBroadcast.includes(role === 'none' ? 'participant' : role);
}

/**
 * The occupant's presence to every occupant: the others first (when the room broadcasts its role), then its own
 * devices with 110, so self-presence comes last (§7.2.2). `recipients` defaults to everyone in the room.
 */
export async function broadcastPresence(send: Send, room: Room, occ: Occupant, opts: PresenceOpts, recipients?: Iterable<Occupant>): Promise<void> {
  if (broadcastable(room, occ.role)) {
    for (const other of recipients ?? [...room.occupants.values()]) {
      if (other === occ) continue;
      for (const s of other.sessions.values()) await send(occupantPresence(room, occ, other, s, opts), occ.jid, s);
    }
  }
  for (const s of occ.sessions.values()) await send(occupantPresence(room, occ, occ, s, opts), occ.jid, s);
}

/** A copy of an in-room stanza addressed to one device (children copied, so a hook that adds one touches one copy). */
export function addressed(stanza: Element, to: Jid): Element {
  const copy = new Element(stanza.name, { ...stanza.attrs, to: to.toString() });
  copy.children = [...stanza.children];
  return copy;
}

/** An in-room message (from the occupant JID or the room) to every device of every occupant. */
export async function broadcastMessage(send: Send, room: Room, message: Element, from: Jid, only?: (o: Occupant) => boolean): Promise<void> {
  for (const occ of [...room.occupants.values()]) {
    if (only && !only(occ)) continue;
    for (const s of occ.sessions.values()) await send(addressed(message, s), from, s);
  }
}

/** §10.2.1: a configuration status notice from the room. */
export async function statusNotice(send: Send, room: Room, codes: StatusCode[]): Promise<void> {
  if (codes.length === 0) return;
  const msg = xml('message', { type: 'groupchat', id: randomUUID(), from: room.jid.toString() },
    xml('x', { xmlns: MUC_NS.USER }, codes.map((code) => xml('status', { code }))));
  await broadcastMessage(send, room, msg, room.jid);
}
