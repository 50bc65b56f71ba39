// XEP-0045 §10.1-10.2 and §10.9 on muc#owner: instant and reserved rooms, later configuration (with the notices
// §10.2.1 asks for and removal of non-members when a room becomes members-only), and destroying a room.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { broadcastPresence, occupantIdElement, statusNotice } from './broadcast.ts';
import { applyConfigForm, configForm, nonAnonymous, type RoomConfig } from './config.ts';
import { MUC_NS, STATUS, type StatusCode } from './ns.ts';
import { afterLeave, removeOccupant } from './presence.ts';
import type { Room } from './room.ts';
import { affiliationRank, defaultRole, type Affiliation } from './roles.ts';
import type { IqRequest, MucService } from './service.ts';
import { discardRoom, saveAffiliation, saveRoom } from './persistence.ts';

function requireOwner(room: Room, from: Jid): void {
  // §10.2 (1.35.1): owner functions are the owners' alone.
  if (room.affiliationOf(from) !== 'owner') throw StanzaError.forbidden('Only owners may do this');
}

export function ownerGet(req: IqRequest): Element {
  const { svc, room, from } = req;
  requireOwner(room, from);
  return xml('query', { xmlns: MUC_NS.OWNER },
    configForm({ jid: room.jid, config: room.config, owners: room.list('owner'), admins: room.list('admin') }, svc.limits));
}

export async function ownerSet(req: IqRequest): Promise<void> {
  const { svc, room, payload, from } = req;
  requireOwner(room, from);
  const destroy = payload.getChild('destroy');
  if (destroy) {
    await destroyRoom(svc, room, destroyElement(destroy));
    return;
  }
  const x = payload.getChild('x', MUC_NS.DATA);
  if (!x) throw StanzaError.badRequest('Submit a configuration form or destroy the room');
  if (x.attrs.type === 'cancel') {
    // §10.1.3: cancelling the first configuration destroys the room; a later one changes nothing.
    if (room.locked) await destroyRoom(svc, room, xml('destroy', null));
    return;
  }
  if (x.attrs.type !== 'submit') throw StanzaError.badRequest("The form must be of type 'submit' or 'cancel'");
  await configure(req, x);
}

async function configure(req: IqRequest, x: Element): Promise<void> {
  const { svc, room } = req;
  const change = applyConfigForm(x, room.config, svc.limits);
  const before = room.config;
  const wasArchived = svc.archived(room);
  const initial = room.locked;

  // The owner and admin fields are full lists (§10.2): whoever is left out loses that affiliation.
  const affiliationChanges = new Map<string, Affiliation>();
  const listChange = (list: string[] | undefined, affiliation: 'owner' | 'admin'): void => {
    if (!list) return;
    const wanted = new Set(list);
    for (const jid of room.list(affiliation)) if (!wanted.has(jid)) affiliationChanges.set(jid, 'none');
    for (const jid of wanted) if (room.affiliations.get(jid)?.affiliation !== affiliation) affiliationChanges.set(jid, affiliation);
  };
  listChange(change.admins, 'admin');
  listChange(change.owners, 'owner');
  // An owner listed as admin stays owner, the higher one of the two.
  if (change.owners) for (const jid of change.owners) affiliationChanges.set(jid, 'owner');
  for (const [jid, a] of [...affiliationChanges]) {
    if (room.affiliations.get(jid)?.affiliation === a) affiliationChanges.delete(jid);
  }
  const owners = new Set(room.list('owner'));
  for (const [jid, a] of affiliationChanges) {
    if (a === 'owner') owners.add(jid);
    else owners.delete(jid);
  }
  if (owners.size === 0) throw new StanzaError('conflict', 'The room needs at least one owner');

  room.config = change.config;
  room.history.setLimit(change.config.historyLength);
  room.locked = false;
  const previous = new Map<string, Affiliation>();
  for (const [jid, a] of affiliationChanges) {
    const entry = room.affiliations.get(jid);
    previous.set(jid, entry?.affiliation ?? 'none');
    if (a === 'none') room.affiliations.delete(jid);
    else room.affiliations.set(jid, { affiliation: a, nick: entry?.nick, notify: entry?.notify ?? true });
  }
  const wasStored = room.stored;
  await saveRoom(svc, room);
  if (wasStored && room.stored) for (const jid of affiliationChanges.keys()) await saveAffiliation(svc, room, jid);
  await req.reply();

  // Occupants whose affiliation changed get their new role, and everyone sees it.
  for (const [jid, a] of affiliationChanges) {
    const occ = room.occupantOf(Jid.parse(jid));
    if (!occ) continue;
    const was = previous.get(jid) ?? 'none';
    if (room.config.membersOnly && affiliationRank(a) < affiliationRank('member')) {
      // §9.4: no longer a member of a members-only room.
      await removeOccupant(svc, room, occ, { codes: [STATUS.AFFILIATION_CHANGE] });
      continue;
    }
    if (affiliationRank(a) > affiliationRank(was)) occ.role = defaultRole(a, room.config);
    else if (affiliationRank(was) >= affiliationRank('admin') && occ.role === 'moderator') occ.role = defaultRole(a, room.config);
    await broadcastPresence(svc.send, room, occ, {});
  }
  if (initial) return;
  await notifyChanges(svc, room, before, wasArchived);
  // §10.2: a room that became members-only keeps its members only (322).
  if (!before.membersOnly && room.config.membersOnly) {
    for (const occ of [...room.occupants.values()]) {
      if (affiliationRank(room.affiliationOf(occ.bare)) < affiliationRank('member')) await removeOccupant(svc, room, occ, { codes: [STATUS.MEMBERS_ONLY] });
    }
  }
  await afterLeave(svc, room);
}

/** §10.2.1: privacy changes get their own codes (170-173), anything else 104. */
async function notifyChanges(svc: MucService, room: Room, before: RoomConfig, wasArchived: boolean): Promise<void> {
  const codes: StatusCode[] = [];
  const nowArchived = svc.archived(room);
  if (nowArchived !== wasArchived) codes.push(nowArchived ? STATUS.LOGGING_ON : STATUS.LOGGING_OFF);
  if (nonAnonymous(before) !== nonAnonymous(room.config)) codes.push(nonAnonymous(room.config) ? STATUS.NOW_NON_ANONYMOUS : STATUS.NOW_SEMI_ANONYMOUS);
  const privacyOnly = (c: RoomConfig): string => JSON.stringify({ ...c, whois: undefined, archive: undefined });
  if (privacyOnly(before) !== privacyOnly(room.config)) codes.push(STATUS.CONFIG_CHANGED);
  await statusNotice(svc.send, room, codes);
}

/** The <destroy/> sent to occupants: the alternate venue, its password and the reason, as the owner gave them. */
function destroyElement(d: Element): Element {
  const alt = d.attrs.jid;
  const reason = d.getChildText('reason');
  const password = d.getChildText('password');
  return xml('destroy', { jid: alt === undefined ? undefined : Jid.parse(alt).toString() },
    reason !== undefined ? xml('reason', null, reason) : undefined,
    password !== undefined ? xml('password', null, password) : undefined);
}

/** §10.9: every occupant gets one unavailable presence with <destroy/>; then the room, its record and archive go. */
export async function destroyRoom(svc: MucService, room: Room, destroy: Element): Promise<void> {
  const occupants = [...room.occupants.values()];
  room.occupants.clear();
  room.bySession.clear();
  for (const occ of occupants) {
    for (const s of occ.sessions.values()) {
      const p = xml('presence', { type: 'unavailable' },
        xml('x', { xmlns: MUC_NS.USER }, xml('item', { affiliation: 'none', role: 'none' }), destroy),
        occupantIdElement(occ));
      await svc.send(p, occ.jid, s);
    }
  }
  await discardRoom(svc, room);
}
