// XEP-0045 §8 (moderator) and §9-10 (admin and owner) use cases on muc#admin: kicking, voice, moderator status,
// banning, membership, admin and owner lists, and the lists themselves, with the rules on who may change whom.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { broadcastPresence } from './broadcast.ts';
import { nonAnonymous } from './config.ts';
import { MUC_NS, STATUS } from './ns.ts';
import { removeOccupant } from './presence.ts';
import type { Occupant, Room } from './room.ts';
import { affiliationRank, defaultRole, isAffiliation, isRole, roleRank, type Affiliation, type Role } from './roles.ts';
import type { IqRequest, MucService } from './service.ts';
import { saveAffiliation } from './persistence.ts';

const rank = affiliationRank;

/** §8.5, §9.2, §9.5, §9.8, §10.5, §10.8: a role or affiliation list. */
export function adminGet(req: IqRequest): Element {
  const { room, payload, from } = req;
  const items = payload.getChildren('item');
  if (items.length !== 1) throw StanzaError.badRequest('Ask for one list at a time');
  const item = items[0] as Element;
  const requester = room.bySession.get(from.toString());
  const affiliation = room.affiliationOf(from);
  const role = item.attrs.role;
  if (role !== undefined) {
    if (!isRole(role) || role === 'none') throw StanzaError.badRequest(`No list of role ${role}`);
    if (requester?.role !== 'moderator') throw StanzaError.forbidden('Only moderators may see role lists');
    return xml('query', { xmlns: MUC_NS.ADMIN },
      [...room.occupants.values()].filter((o) => o.role === role).map((o) =>
        xml('item', { affiliation: room.affiliationOf(o.bare), jid: o.realJid.toString(), nick: o.nick, role: o.role })));
  }
  const wanted = item.attrs.affiliation;
  if (!isAffiliation(wanted) || wanted === 'none') throw StanzaError.badRequest('Ask for an affiliation or role list');
  if (!mayReadList(room, wanted, affiliation, requester)) throw StanzaError.forbidden('You may not see this list');
  return xml('query', { xmlns: MUC_NS.ADMIN },
    room.list(wanted).map((jid) => {
      const a = room.affiliations.get(jid);
      const present = wanted === 'outcast' ? undefined : room.occupantOf(Jid.parse(jid));
      return xml('item', { affiliation: wanted, jid, nick: wanted === 'outcast' ? undefined : a?.nick ?? present?.nick, role: undefined },
        wanted === 'outcast' && a?.reason !== undefined ? xml('reason', null, a.reason) : undefined);
    }));
}

/**
 * Who may read which list: admins and owners the member and ban lists, owners the admin and owner lists (§9, §10);
 * in non-anonymous rooms members too may read the member, admin and owner lists (1.35); roles named in
 * muc#roomconfig_getmemberlist the member list.
 */
function mayReadList(room: Room, list: Affiliation, affiliation: Affiliation, requester: Occupant | undefined): boolean {
  if (affiliation === 'owner') return true;
  if (affiliation === 'outcast') return false;
  const open = nonAnonymous(room.config) && rank(affiliation) >= rank('member');
  switch (list) {
    case 'outcast':
      return affiliation === 'admin';
    case 'member':
      return affiliation === 'admin' || open || (requester !== undefined && room.config.getMemberList.includes(requester.role));
    default:
      return open;
  }
}

type RoleChange = { kind: 'role'; target: Occupant; role: Role; reason: string | undefined };
type AffiliationChange = { kind: 'affiliation'; jid: Jid; affiliation: Affiliation; nick: string | undefined; reason: string | undefined };

/** §8-10: a set of role or affiliation changes, checked as a whole before any is made. */
export async function adminSet(req: IqRequest): Promise<void> {
  const { svc, room, payload, from } = req;
  const items = payload.getChildren('item');
  if (items.length === 0) throw StanzaError.badRequest('No item');
  const actor = room.bySession.get(from.toString());
  const actorAffiliation = room.affiliationOf(from);
  const changes: Array<RoleChange | AffiliationChange> = [];
  for (const item of items) {
    const role = item.attrs.role;
    const affiliation = item.attrs.affiliation;
    // §17.4: one or the other per item.
    if ((role === undefined) === (affiliation === undefined)) throw StanzaError.badRequest('Each item changes either a role or an affiliation');
    const reason = item.getChildText('reason');
    if (role !== undefined) changes.push(checkRole(room, actor, actorAffiliation, item, role, reason));
    else changes.push(checkAffiliation(room, from, actorAffiliation, item, affiliation as string, reason));
  }
  checkOwnersRemain(room, changes);

  // Apply: state and storage first; then, in order, what occupants are told, with the answer where the spec puts it:
  // after a removed occupant hears of its removal, before the others do (§8.2, §9.1), and before presence updates.
  const actorTag: ActorTag = { nick: actor?.nick, jid: from.bare };
  const after: After[] = [];
  for (const c of changes) {
    if (c.kind === 'role') after.push(...applyRole(svc, room, c, actorTag));
    else after.push(...(await applyAffiliation(svc, room, c, actorTag)));
  }
  for (const f of after) await f(req.reply);
  await req.reply();
}

/** Something to tell occupants once the change is made; `reply` sends the IQ result (once) when it is due. */
type After = (reply: () => Promise<void>) => Promise<void>;

function checkRole(room: Room, actor: Occupant | undefined, actorAffiliation: Affiliation, item: Element, role: string, reason: string | undefined): RoleChange {
  if (!actor || actor.role !== 'moderator') throw StanzaError.forbidden('Only moderators change roles');
  if (!isRole(role)) throw StanzaError.badRequest(`Unknown role ${role}`);
  const nick = item.attrs.nick;
  if (nick === undefined) throw StanzaError.badRequest("A role change needs 'nick'");
  const target = room.occupants.get(nick);
  if (!target) throw StanzaError.itemNotFound(`No occupant ${nick}`);
  const actorRank = rank(actorAffiliation);
  const targetRank = rank(room.affiliationOf(target.bare));
  switch (role) {
    case 'none':
      // §8.2: nobody is kicked by a moderator of lower affiliation.
      if (targetRank > actorRank) throw StanzaError.notAllowed('You may not kick someone of higher affiliation');
      break;
    case 'visitor':
      // §8.4: voice is never taken from admins and owners, nor by a moderator of lower affiliation.
      if (targetRank >= rank('admin') || targetRank > actorRank) throw StanzaError.notAllowed('You may not revoke this occupant\'s voice');
      if (target.role === 'moderator' && actorRank < rank('admin')) throw StanzaError.forbidden('Only admins revoke moderator status');
      break;
    case 'participant':
      // §9.7: moderator status is taken by admins and owners, never from them.
      if (target.role === 'moderator') {
        if (actorRank < rank('admin')) throw StanzaError.forbidden('Only admins revoke moderator status');
        if (targetRank >= rank('admin')) throw StanzaError.notAllowed('Moderator status cannot be taken from admins and owners');
      }
      break;
    case 'moderator':
      // §9.6: granted by admins and owners.
      if (actorRank < rank('admin')) throw StanzaError.forbidden('Only admins grant moderator status');
      break;
  }
  return { kind: 'role', target, role, reason };
}

function checkAffiliation(room: Room, from: Jid, actorAffiliation: Affiliation, item: Element, affiliation: string, reason: string | undefined): AffiliationChange {
  if (!isAffiliation(affiliation)) throw StanzaError.badRequest(`Unknown affiliation ${affiliation}`);
  if (rank(actorAffiliation) < rank('admin')) throw StanzaError.forbidden('Only admins and owners change affiliations');
  const raw = item.attrs.jid;
  if (raw === undefined) throw StanzaError.badRequest("An affiliation change needs 'jid'");
  // §10.3: affiliations are by bare JID; a full JID counts as its bare JID.
  const jid = Jid.parse(raw).bare;
  const current = room.affiliations.get(jid.bareString)?.affiliation ?? 'none';
  // §9.1: nobody bans himself.
  if (affiliation === 'outcast' && jid.bareString === from.bareString) throw new StanzaError('conflict', 'You cannot ban yourself');
  if (actorAffiliation !== 'owner') {
    // §10.3-10.8: the admin and owner lists are the owners'.
    if (affiliation === 'owner' || affiliation === 'admin') throw StanzaError.forbidden('Only owners grant admin or owner status');
    if (current === 'owner' || current === 'admin') throw StanzaError.notAllowed('You may not change the affiliation of an admin or owner');
  }
  const rawNick = item.attrs.nick;
  // §9.5 (1.35.4): an empty nick unsets the reserved one.
  const nick = rawNick === undefined ? room.affiliations.get(jid.bareString)?.nick : rawNick === '' ? undefined : rawNick;
  if (nick !== undefined && affiliation !== 'outcast' && affiliation !== 'none') {
    const holder = room.nickOwner(nick);
    if (holder !== undefined && holder !== jid.bareString) throw new StanzaError('conflict', 'That nickname is reserved by someone else');
  }
  return { kind: 'affiliation', jid, affiliation, nick, reason };
}

/** §10.4: a room always keeps an owner; an owner may step down only if another remains. */
function checkOwnersRemain(room: Room, changes: Array<RoleChange | AffiliationChange>): void {
  const owners = new Set(room.list('owner'));
  for (const c of changes) {
    if (c.kind !== 'affiliation') continue;
    if (c.affiliation === 'owner') owners.add(c.jid.bareString);
    else owners.delete(c.jid.bareString);
  }
  if (owners.size === 0) throw new StanzaError('conflict', 'The room needs at least one owner');
}

type ActorTag = { nick?: string | undefined; jid: Jid };

function applyRole(svc: MucService, room: Room, c: RoleChange, actor: ActorTag): After[] {
  const { target } = c;
  if (c.role === 'none') {
    // §8.2: the kicked occupant first, then (after the moderator's result) the others.
    return [(reply) => removeOccupant(svc, room, target, { codes: [STATUS.KICKED], actor: { nick: actor.nick }, reason: c.reason, between: reply })];
  }
  target.role = c.role;
  return [async (reply) => {
    await reply();
    await broadcastPresence(svc.send, room, target, { reason: c.reason, actor: { nick: actor.nick } });
  }];
}

/** The role that goes with a new affiliation: gained roles are the affiliation's; a lost admin role falls back. */
function roleAfter(room: Room, occ: Occupant, before: Affiliation, after: Affiliation): Role {
  const fresh = defaultRole(after, room.config);
  if (rank(after) > rank(before)) return roleRank(fresh) > roleRank(occ.role) ? fresh : occ.role;
  if (rank(before) >= rank('admin') && rank(after) < rank('admin') && occ.role === 'moderator') return fresh;
  return occ.role;
}

async function applyAffiliation(svc: MucService, room: Room, c: AffiliationChange, actor: ActorTag): Promise<After[]> {
  const key = c.jid.bareString;
  const before = room.affiliations.get(key);
  const previous: Affiliation = before?.affiliation ?? 'none';
  if (c.affiliation === 'none') room.affiliations.delete(key);
  else {
    room.affiliations.set(key, {
      affiliation: c.affiliation,
      nick: c.affiliation === 'outcast' ? undefined : c.nick,
      reason: c.affiliation === 'outcast' ? c.reason : undefined,
      notify: before?.notify ?? true,
    });
  }
  await saveAffiliation(svc, room, key);
  const after: After[] = [];
  const present = [...room.occupants.values()].filter((o) => o.bare.bareString === key || (c.jid.local === '' && o.bare.domain === c.jid.domain && room.affiliationOf(o.bare) === 'outcast'));
  for (const occ of present) {
    if (c.affiliation === 'outcast') {
      after.push((reply) => removeOccupant(svc, room, occ, { codes: [STATUS.BANNED], actor: { nick: actor.nick }, reason: c.reason, between: reply }));
    } else if (room.config.membersOnly && rank(c.affiliation) < rank('member')) {
      // §9.4: a member-only room does not keep someone who is no longer a member (one unavailable presence, 321).
      after.push((reply) => removeOccupant(svc, room, occ, { codes: [STATUS.AFFILIATION_CHANGE], actor: { nick: actor.nick }, reason: c.reason, between: reply }));
    } else {
      occ.role = roleAfter(room, occ, previous, c.affiliation);
      after.push(async (reply) => {
        await reply();
        await broadcastPresence(svc.send, room, occ, { reason: c.reason });
      });
    }
  }
  // §9.5: someone added to a members-only room's member list is invited.
  if (room.config.membersOnly && c.affiliation === 'member' && previous === 'none' && c.jid.local !== '' && present.length === 0) {
    after.push(async (reply) => {
      await reply();
      await svc.send(xml('message', { id: svc.id() },
        xml('x', { xmlns: MUC_NS.USER },
          xml('invite', { from: actor.jid.bareString }, c.reason !== undefined ? xml('reason', null, c.reason) : undefined),
          room.config.passwordProtected ? xml('password', null, room.config.password) : undefined)), room.jid, c.jid);
    });
  }
  return after;
}
