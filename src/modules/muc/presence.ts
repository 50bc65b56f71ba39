// XEP-0045 §7.1-7.7, §7.14 and §17.3: presence to a room: entering (creating a room, every admission rule, the order
// of presence, history and subject), changing nick or status, exiting, and removal of occupants.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { addressed, broadcastPresence, broadcastable, occupantPresence, type PresenceOpts } from './broadcast.ts';
import { nonAnonymous, occupantLimit } from './config.ts';
import { delayFrom, parseHistoryRequest, type HistoryRequest } from './history.ts';
import { MUC_NS, STATUS, type StatusCode } from './ns.ts';
import type { Occupant, Room } from './room.ts';
import { affiliationRank, defaultRole } from './roles.ts';
import type { MucService } from './service.ts';
import { discardRoom } from './persistence.ts';

export async function handlePresence(svc: MucService, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const room = svc.rooms.get(to.local);
  const type = stanza.attrs.type;
  if (type === 'error') {
    // §18.1.2 (ghost users): an error from an occupant's address means it is gone.
    if (room) await ghost(svc, room, from);
    return;
  }
  if (to.resource === '') {
    // §7.2.1: entering needs a nick.
    if (type === undefined) throw StanzaError.jidMalformed('A room nickname is required');
    return;
  }
  const occ = room?.bySession.get(from.toString());
  if (type === 'unavailable') {
    // §17.3 (presence rule 5): unavailable presence from a non-occupant is ignored.
    if (room && occ) await leave(svc, room, occ, from, stanza);
    return;
  }
  // §17.3 (presence rules 1-2): only available presence joins; probes and subscriptions mean nothing here.
  if (type !== undefined) return;
  if (room && occ) {
    if (to.resource === occ.nick) return update(svc, room, occ, from, stanza);
    return changeNick(svc, room, occ, from, stanza, to.resource);
  }
  return join(svc, room, stanza, from, to);
}

/**
 * §17.1 and §7.2.2 (the service may modify nicks): whitespace is trimmed and runs of it collapsed, so a nick cannot pose as another
 * by a trailing space; a changed nick is reported with 210. Empty or overlong nicks are not acceptable.
 */
function roomNick(svc: MucService, room: Jid, requested: string): { nick: string; modified: boolean } {
  const trimmed = requested.replace(/\s+/gu, ' ').trim();
  if (trimmed === '') throw StanzaError.notAcceptable('A room nickname cannot be empty or only spaces');
  if ([...trimmed].length > svc.options.max_nick_length) throw StanzaError.notAcceptable(`Room nicknames have at most ${svc.options.max_nick_length} characters`);
  const nick = room.withResource(trimmed).resource;
  return { nick, modified: nick !== requested };
}

/** What a client's presence says that the room keeps (a private copy: the routed stanza is not ours to keep). */
function presenceContent(stanza: Element): Element {
  const copy = stanza.clone();
  copy.removeChildren((c) => c.attrs.xmlns === MUC_NS.MUC || c.attrs.xmlns === MUC_NS.USER || c.attrs.xmlns === MUC_NS.OCCUPANT_ID);
  return copy;
}

/** Room creation (§10.1.1): who may, and how many rooms one may own. */
function mayCreate(svc: MucService, from: Jid): void {
  const admin = svc.ctx.host.isAdmin(from.bare);
  const create = svc.options.create;
  if ((create === 'admins' && !admin) || (create === 'local' && !svc.ctx.server.hosts.has(from.domain))) {
    throw StanzaError.notAllowed('Room creation is restricted');
  }
  const max = svc.options.max_rooms_per_user;
  if (max > 0 && !admin && svc.roomsOwnedBy(from.bare) >= max) {
    throw new StanzaError('policy-violation', `You may own at most ${max} rooms`);
  }
}

async function join(svc: MucService, existing: Room | undefined, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const x = stanza.getChild('x', MUC_NS.MUC);
  if (!x) {
    // §7.2.18: presence without the MUC element from a non-occupant (an old client, or one that lost track).
    await notInRoom(svc, existing, from, to);
    return;
  }
  const history = parseHistoryRequest(x);
  const { nick, modified } = roomNick(svc, to.bare, to.resource);
  let room = existing;
  let created = false;
  if (!room) {
    mayCreate(svc, from);
    room = svc.newRoom(to.local);
    room.affiliations.set(from.bareString, { affiliation: 'owner', notify: true });
    created = true;
  }
  const affiliation = room.affiliationOf(from);
  if (!created) {
    if (room.locked && affiliation !== 'owner') throw StanzaError.itemNotFound('The room is being configured');
    if (affiliation === 'outcast') throw StanzaError.forbidden('You are banned from this room');
    if (room.config.membersOnly && affiliationRank(affiliation) < affiliationRank('member')) {
      throw new StanzaError('registration-required', 'This room is for members only');
    }
    if (room.config.passwordProtected && x.getChildText('password') !== room.config.password) {
      throw new StanzaError('not-authorized', 'A password is required to enter this room');
    }
  }
  const same = room.occupants.get(nick);
  if (same && (same.bare.bareString !== from.bareString || !svc.options.multi_session)) {
    throw new StanzaError('conflict', 'That nickname is in use');
  }
  const reserved = room.nickOwner(nick);
  if (reserved !== undefined && reserved !== from.bareString) throw new StanzaError('conflict', 'That nickname is reserved');
  if (same) {
    // Another device of the same account under the same nick: it gets the room, the others see nothing new.
    same.sessions.set(from.toString(), from);
    room.bySession.set(from.toString(), same);
    await sendRoomState(svc, room, same, from, { history, id: stanza.attrs.id, modified, created: false, announce: false });
    return;
  }
  // §7.2.9: a full room still admits its admins and owners.
  if (room.occupants.size >= occupantLimit(room.config, svc.limits) && affiliationRank(affiliation) < affiliationRank('admin')) {
    throw new StanzaError('service-unavailable', 'The room is full', { type: 'wait' });
  }
  const occ = svc.newOccupant(room, nick, from, presenceContent(stanza), defaultRole(affiliation, room.config));
  room.occupants.set(nick, occ);
  room.bySession.set(from.toString(), occ);
  svc.away.present(room, from.bare);
  await sendRoomState(svc, room, occ, from, { history, id: stanza.attrs.id, modified, created, announce: true });
}

type StateOpts = { history: HistoryRequest; id: string | undefined; modified: boolean; created: boolean; announce: boolean };

/**
 * §7.1: what a client gets on entering, in order: the others' presence, its own (after the others have its
 * presence), the history, the subject.
 */
async function sendRoomState(svc: MucService, room: Room, occ: Occupant, session: Jid, o: StateOpts): Promise<void> {
  for (const other of room.occupants.values()) {
    if (other === occ || !broadcastable(room, other.role)) continue;
    await svc.send(occupantPresence(room, other, occ, session, {}), other.jid, session);
  }
  const selfCodes: StatusCode[] = [];
  if (nonAnonymous(room.config)) selfCodes.push(STATUS.NON_ANONYMOUS);
  if (svc.archived(room)) selfCodes.push(STATUS.LOGGING_ON);
  if (o.created) selfCodes.push(STATUS.CREATED);
  if (o.modified) selfCodes.push(STATUS.NICK_ASSIGNED);
  if (o.announce) {
    for (const other of room.occupants.values()) {
      if (other === occ || !broadcastable(room, occ.role)) continue;
      for (const s of other.sessions.values()) await svc.send(occupantPresence(room, occ, other, s, {}), occ.jid, s);
    }
  }
  await svc.send(occupantPresence(room, occ, occ, session, { selfCodes, id: o.id }), occ.jid, session);
  for (const m of room.history.select(o.history, Date.now())) await svc.send(addressed(m, session), Jid.parse(m.attrs.from ?? room.jid.toString()), session);
  const subject = subjectMessage(svc, room);
  await svc.send(subject, Jid.parse(subject.attrs.from ?? room.jid.toString()), session);
}

/** §7.2.15: the current subject, from whoever set it, with the time it was set; empty if there is none. */
function subjectMessage(svc: MucService, room: Room): Element {
  const s = room.subject;
  return xml('message', { type: 'groupchat', id: svc.id(), from: s?.by ?? room.jid.toString() },
    xml('subject', null, s?.text ?? ''),
    s ? delayFrom(room.jid.toString(), s.at) : undefined);
}

/** §7.2.18 (groupchat 1.0): a client that is not in the room is told so, as a kick for a technical reason. */
async function notInRoom(svc: MucService, room: Room | undefined, from: Jid, to: Jid): Promise<void> {
  const p = xml('presence', { type: 'unavailable' },
    xml('x', { xmlns: MUC_NS.USER },
      xml('item', { affiliation: room?.affiliationOf(from) ?? 'none', role: 'none' }, xml('reason', null, 'You are not in the room.')),
      [STATUS.SELF, STATUS.KICKED, STATUS.ERROR_REMOVED].map((code) => xml('status', { code }))));
  await svc.send(p, to, from);
}

/** §7.7: a status change goes to everyone; the MUC element again means the client lost track and wants it all. */
async function update(svc: MucService, room: Room, occ: Occupant, session: Jid, stanza: Element): Promise<void> {
  const content = presenceContent(stanza);
  const changed = content.toString() !== occ.presence.toString();
  occ.presence = content;
  if (stanza.getChild('x', MUC_NS.MUC)) {
    // §7.2.1 and §17.3 (presence rule 3): a join from an occupant asks to synchronise: the same as entering.
    const x = stanza.getChild('x', MUC_NS.MUC);
    await sendRoomState(svc, room, occ, session, { history: parseHistoryRequest(x), id: stanza.attrs.id, modified: false, created: false, announce: false });
    if (changed) await broadcastPresence(svc.send, room, occ, {}, [...room.occupants.values()].filter((o) => o !== occ));
    return;
  }
  await broadcastPresence(svc.send, room, occ, { id: stanza.attrs.id });
}

/** §7.6: the old nick leaves with 303 and the new one, then the new nick arrives. */
async function changeNick(svc: MucService, room: Room, occ: Occupant, session: Jid, stanza: Element, requested: string): Promise<void> {
  const { nick, modified } = roomNick(svc, room.jid, requested);
  if (nick === occ.nick) return update(svc, room, occ, session, stanza);
  if (room.occupants.has(nick)) throw new StanzaError('conflict', 'That nickname is in use');
  const reserved = room.nickOwner(nick);
  if (reserved !== undefined && reserved !== occ.bare.bareString) throw new StanzaError('conflict', 'That nickname is reserved');
  await broadcastPresence(svc.send, room, occ, { type: 'unavailable', newNick: nick, codes: [STATUS.NEW_NICK] });
  room.occupants.delete(occ.nick);
  occ.nick = nick;
  occ.jid = room.jid.withResource(nick);
  occ.presence = presenceContent(stanza);
  room.occupants.set(nick, occ);
  await broadcastPresence(svc.send, room, occ, { selfCodes: modified ? [STATUS.NICK_ASSIGNED] : [], id: stanza.attrs.id });
}

/** §7.14: a device leaves; the occupant leaves with its last device. */
export async function leave(svc: MucService, room: Room, occ: Occupant, session: Jid, stanza?: Element): Promise<void> {
  const content = stanza ? presenceContent(stanza) : undefined;
  if (occ.sessions.size > 1) {
    occ.sessions.delete(session.toString());
    room.bySession.delete(session.toString());
    await svc.send(occupantPresence(room, occ, occ, session, { type: 'unavailable', role: 'none', content }), occ.jid, session);
    return;
  }
  if (room.locked) {
    // §10.1.3: the owner left before configuring: the room is destroyed.
    await removeOccupant(svc, room, occ, { content, destroy: xml('destroy', null) });
    return;
  }
  await removeOccupant(svc, room, occ, { content });
}

export type RemoveOpts = PresenceOpts & {
  /** Runs after the removed occupant is told and before the others are (§9.1: the moderator's result between). */
  between?: () => Promise<void>;
  /** Tell the removed occupant nothing (its address is gone). */
  silent?: boolean;
};

/**
 * Takes an occupant out of the room (exit, kick, ban, removal): its devices get unavailable presence with 110 first,
 * then the others. An empty temporary (or still locked) room is destroyed.
 */
export async function removeOccupant(svc: MucService, room: Room, occ: Occupant, opts: RemoveOpts): Promise<void> {
  const shown = broadcastable(room, occ.role);
  room.occupants.delete(occ.nick);
  for (const s of occ.sessions.keys()) room.bySession.delete(s);
  const p: PresenceOpts = { ...opts, type: 'unavailable', role: 'none' };
  if (!opts.silent) {
    for (const s of occ.sessions.values()) await svc.send(occupantPresence(room, occ, occ, s, p), occ.jid, s);
  }
  await opts.between?.();
  if (shown && !opts.destroy) {
    // Others never see the reason's actor JID, only what the spec lets them (§9.1: status, reason, actor nick).
    for (const other of [...room.occupants.values()]) {
      for (const s of other.sessions.values()) await svc.send(occupantPresence(room, occ, other, s, p), occ.jid, s);
    }
  }
  occ.role = 'none';
  await afterLeave(svc, room);
}

/** §7.14: a temporary room is destroyed when its last occupant leaves; a locked one is dropped. */
export async function afterLeave(svc: MucService, room: Room): Promise<void> {
  if (room.empty && (!room.config.persistent || room.locked)) await discardRoom(svc, room);
}

/** §18.1.2 (ghost users): an error from an occupant's device takes that device (and, if it was the last, the occupant) out. */
export async function ghost(svc: MucService, room: Room, from: Jid): Promise<void> {
  const occ = room.bySession.get(from.toString());
  if (!occ) return;
  if (occ.sessions.size > 1) {
    occ.sessions.delete(from.toString());
    room.bySession.delete(from.toString());
    return;
  }
  await removeOccupant(svc, room, occ, { codes: [STATUS.ERROR_REMOVED], silent: true });
}
