// XEP-0045 §7.4-7.9, §7.13, §8.1, §8.6: messages to a room and its occupants: in-room messages (reflected with
// their id, a XEP-0359 stanza-id and a XEP-0421 occupant-id, archived and kept as history), subject changes,
// private messages, mediated invitations and declines, voice requests and their approval.
import { StanzaError } from '../../core/errors.ts';
import { stanzaErrorOf } from '../../core/iq-requests.ts';
import { Element, serialize, xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { Jid } from '../../xmpp/jid.ts';
import { messageType } from '../../xmpp/stanza.ts';
import { MAM_NS } from '../mam/ns.ts';
import { addressed, broadcastMessage, broadcastPresence, occupantIdElement } from './broadcast.ts';
import { MUC_NS } from './ns.ts';
import { ghost } from './presence.ts';
import type { Occupant, Room } from './room.ts';
import { affiliationRank } from './roles.ts';
import type { MucService } from './service.ts';
import { saveAffiliation, saveRoom } from './persistence.ts';

/** §18.1.2 (ghost users): errors that say the occupant's address no longer takes stanzas. */
const DELIVERY_ERRORS = new Set(['gone', 'item-not-found', 'recipient-unavailable', 'redirect', 'remote-server-not-found', 'remote-server-timeout', 'service-unavailable']);

export async function handleMessage(svc: MucService, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const type = messageType(stanza);
  if (type === 'error') {
    const room = svc.rooms.get(to.local);
    if (room && DELIVERY_ERRORS.has(stanzaErrorOf(stanza).condition)) await ghost(svc, room, from);
    return;
  }
  // §17.2 (message rule 3): a room that does not exist or is still locked takes no messages.
  const room = svc.visibleRoom(to.local, from);
  if (to.resource !== '') return privateMessage(svc, room, stanza, from, to);
  if (type === 'groupchat') return groupchat(svc, room, stanza, from);
  const user = stanza.getChild('x', MUC_NS.USER);
  if (user?.getChild('invite')) return invite(svc, room, stanza, from, user);
  if (user?.getChild('decline')) return decline(svc, room, from, user);
  const form = stanza.getChild('x', MUC_NS.DATA);
  if (form && formValues(form).get('FORM_TYPE') === MUC_NS.REQUEST) return voiceForm(svc, room, from, form);
  throw StanzaError.badRequest('Messages to all occupants are of type groupchat');
}

/** §7.4 (service-level policies): the size and rate limits of the service. */
function checkLimits(svc: MucService, occ: Occupant, stanza: Element): void {
  if (Buffer.byteLength(serialize(stanza)) > svc.options.max_message_size) {
    throw new StanzaError('policy-violation', `Messages are limited to ${svc.options.max_message_size} bytes`);
  }
  if (!occ.rate.take(Date.now())) throw new StanzaError('resource-constraint', 'You are sending too fast', { type: 'wait' });
}

/** The room's copy of what an occupant sent: the client's attributes, none of the ids only the room may set. */
function reflect(room: Room, occ: Occupant, stanza: Element, id: string): Element {
  const msg = new Element('message', {});
  for (const [k, v] of Object.entries(stanza.attrs)) if (k !== 'to' && k !== 'from') msg.attrs[k] = v;
  msg.attrs.from = occ.jid.toString();
  // §7.4 (muc#stable_id): the client's id is kept; one is made for a message that had none.
  msg.attrs.id = stanza.attrs.id ?? id;
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns;
    if (ns === MUC_NS.OCCUPANT_ID) continue; // XEP-0421 §4: only the room says who an occupant is
    if (ns === MAM_NS.SID && c.name === 'stanza-id' && c.attrs.by === room.jid.bareString) continue; // XEP-0359 §4
    msg.children.push(c);
  }
  msg.children.push(occupantIdElement(occ));
  return msg;
}

function hint(stanza: Element, name: string): boolean {
  return stanza.getChild(name, NS.HINTS) !== undefined;
}

function hasBody(stanza: Element): boolean {
  return stanza.getChildren('body').some((b) => b.attrs.xmlns === undefined || b.attrs.xmlns === NS.CLIENT);
}

/** Archived (XEP-0313 §5.1.2): messages with a body, or a store hint, unless a hint says not to. */
function archivable(stanza: Element): boolean {
  if (hint(stanza, 'no-store') || hint(stanza, 'no-permanent-store')) return false;
  return hasBody(stanza) || hint(stanza, 'store');
}

async function groupchat(svc: MucService, room: Room, stanza: Element, from: Jid): Promise<void> {
  const occ = room.bySession.get(from.toString());
  if (!occ) throw StanzaError.notAcceptable('You are not in the room');
  checkLimits(svc, occ, stanza);
  const now = Date.now();
  const subject = stanza.getChild('subject');
  if (subject && !hasBody(stanza) && !stanza.getChild('thread')) {
    await changeSubject(svc, room, occ, stanza, subject.text(), now);
    return;
  }
  if (occ.role !== 'participant' && occ.role !== 'moderator') throw StanzaError.forbidden('You have no voice in this room');
  const msg = reflect(room, occ, stanza, svc.id());
  let sid: string | undefined;
  if (svc.archived(room) && archivable(msg)) {
    try {
      sid = (await svc.ctx.storage.archive.append(svc.domain, room.node, {
        with: occ.jid.toString(),
        direction: 'in',
        stanza: serialize(msg),
        text: svc.options.archive_fulltext && svc.ctx.storage.archive.fullText ? msg.getChildText('body') : undefined,
      })).id;
    } catch (err) {
      // A failing archive never holds a message back.
      svc.log.error({ err, room: room.jid.toString() }, 'archiving a room message failed');
    }
  }
  // XEP-0359: every reflected message carries the room's id for it; the archive's when it was archived.
  msg.children.push(xml('stanza-id', { xmlns: MAM_NS.SID, id: sid ?? svc.id(), by: room.jid.bareString }));
  if (hasBody(msg) && !hint(msg, 'no-store')) room.history.add(msg, now);
  await broadcastMessage(svc.send, room, msg, occ.jid);
  // Chat states and markers are nothing to be woken for.
  if (hasBody(msg)) await svc.away.notify(room, msg, occ.jid, now);
}

/** §8.1: moderators, and participants where the room allows, change the subject; everyone is told. */
async function changeSubject(svc: MucService, room: Room, occ: Occupant, stanza: Element, text: string, now: number): Promise<void> {
  const allowed = occ.role === 'moderator' || (room.config.changeSubject && occ.role === 'participant');
  if (!allowed) throw StanzaError.forbidden('You may not change the subject of this room');
  room.subject = { text, by: occ.jid.toString(), at: now };
  await saveRoom(svc, room);
  await broadcastMessage(svc.send, room, reflect(room, occ, stanza, svc.id()), occ.jid);
}

/** §7.5: private messages, as the room's allowpm setting permits. */
async function privateMessage(svc: MucService, room: Room, stanza: Element, from: Jid, to: Jid): Promise<void> {
  if (messageType(stanza) === 'groupchat') throw StanzaError.badRequest('A private message cannot be of type groupchat');
  const occ = room.bySession.get(from.toString());
  if (!occ) throw StanzaError.notAcceptable('You are not in the room');
  const target = room.occupants.get(to.resource);
  if (!target) throw StanzaError.itemNotFound('No such occupant');
  const allowPm = room.config.allowPm;
  const allowed = allowPm === 'anyone'
    || (allowPm === 'participants' && (occ.role === 'participant' || occ.role === 'moderator'))
    || (allowPm === 'moderators' && occ.role === 'moderator');
  if (!allowed) throw StanzaError.forbidden('Private messages are not allowed in this room');
  checkLimits(svc, occ, stanza);
  const msg = reflect(room, occ, stanza, svc.id());
  // §7.5: the room marks private messages so the recipient's other devices (carbons) know them.
  msg.removeChildren((c) => c.attrs.xmlns === MUC_NS.USER);
  msg.children.push(xml('x', { xmlns: MUC_NS.USER }));
  for (const s of target.sessions.values()) await svc.send(addressed(msg, s), occ.jid, s);
}

/**
 * §7.8.2: mediated invitations. In members-only rooms admins and owners invite, and members where the room allows
 * it; the invitee then becomes a member (§9.5). In open rooms any occupant invites.
 */
async function invite(svc: MucService, room: Room, stanza: Element, from: Jid, x: Element): Promise<void> {
  const occ = room.bySession.get(from.toString());
  const affiliation = room.affiliationOf(from);
  if (!occ && affiliationRank(affiliation) < affiliationRank('admin')) throw StanzaError.notAcceptable('You are not in the room');
  let addMembers = false;
  if (room.config.membersOnly) {
    if (affiliationRank(affiliation) >= affiliationRank('admin') || (affiliation === 'member' && room.config.allowInvites)) addMembers = true;
    else throw StanzaError.forbidden('Only admins may invite to this room');
  }
  const invitees: Array<{ jid: Jid; invite: Element }> = [];
  for (const inv of x.getChildren('invite')) {
    const raw = inv.attrs.to;
    if (raw === undefined) throw StanzaError.badRequest("An invitation needs 'to'");
    const jid = Jid.parse(raw);
    const host = svc.ctx.server.hosts.get(jid.domain);
    if (host && (jid.local === '' || !(await host.auth.userExists(jid.local)))) throw StanzaError.itemNotFound(`No such user ${jid.bareString}`);
    invitees.push({ jid, invite: inv });
  }
  for (const { jid, invite: inv } of invitees) {
    if (addMembers && affiliationRank(room.affiliationOf(jid)) < affiliationRank('member')) {
      room.affiliations.set(jid.bareString, { affiliation: 'member', notify: true });
      await saveAffiliation(svc, room, jid.bareString);
    }
    const reason = inv.getChildText('reason');
    const cont = inv.getChild('continue');
    const msg = xml('message', { id: stanza.attrs.id ?? svc.id() },
      xml('x', { xmlns: MUC_NS.USER },
        xml('invite', { from: from.bareString },
          reason !== undefined ? xml('reason', null, reason) : undefined,
          cont ? xml('continue', { thread: cont.attrs.thread }) : undefined),
        room.config.passwordProtected ? xml('password', null, room.config.password) : undefined),
      xml('body', null, `${from.bareString} invites you to the room ${room.jid.toString()}${reason ? `: ${reason}` : ''}`));
    await svc.send(msg, room.jid, jid);
  }
}

/** §7.8.2: the invitee declines; the room tells the inviter. */
async function decline(svc: MucService, room: Room, from: Jid, x: Element): Promise<void> {
  const d = x.getChild('decline') as Element;
  const raw = d.attrs.to;
  if (raw === undefined) throw StanzaError.badRequest("A decline needs 'to'");
  const to = Jid.parse(raw);
  const reason = d.getChildText('reason');
  const msg = xml('message', { id: svc.id() },
    xml('x', { xmlns: MUC_NS.USER },
      xml('decline', { from: from.bareString }, reason !== undefined ? xml('reason', null, reason) : undefined)));
  await svc.send(msg, room.jid, to);
}

/** The first value of each field of a data form. */
function formValues(x: Element): Map<string, string> {
  const values = new Map<string, string>();
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var;
    if (name !== undefined && !values.has(name)) values.set(name, f.getChildText('value') ?? '');
  }
  return values;
}

/** §7.13 and §8.6: a visitor asks for voice; the moderators get a form; a moderator's approval grants it. */
async function voiceForm(svc: MucService, room: Room, from: Jid, form: Element): Promise<void> {
  const values = formValues(form);
  const occ = room.bySession.get(from.toString());
  if (!occ) throw StanzaError.notAcceptable('You are not in the room');
  if (values.has('muc#request_allow')) {
    if (occ.role !== 'moderator') throw StanzaError.forbidden('Only moderators approve voice requests');
    if (form.attrs.type === 'cancel') return;
    const allow = values.get('muc#request_allow');
    if (allow !== 'true' && allow !== '1') return;
    const target = room.occupants.get(values.get('muc#roomnick') ?? '');
    if (!target || target.role !== 'visitor') return;
    target.role = 'participant';
    await broadcastPresence(svc.send, room, target, { actor: { nick: occ.nick } });
    return;
  }
  if (values.get('muc#role') !== 'participant') throw StanzaError.badRequest('Only voice (the participant role) can be requested');
  if (occ.role !== 'visitor') return;
  for (const mod of room.occupants.values()) {
    if (mod.role !== 'moderator') continue;
    for (const s of mod.sessions.values()) {
      const f = (v: string, type: string, label: string, value: string): Element =>
        xml('field', { var: v, type, label }, xml('value', null, value));
      const msg = xml('message', { id: svc.id() },
        xml('x', { xmlns: MUC_NS.DATA, type: 'form' },
          xml('title', null, 'Voice request'),
          xml('instructions', null, `To approve this request for voice, select "Grant voice to this person?" and submit the form.`),
          xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, MUC_NS.REQUEST)),
          f('muc#role', 'list-single', 'Requested role', 'participant'),
          f('muc#jid', 'jid-single', 'User ID', from.toString()),
          f('muc#roomnick', 'text-single', 'Room Nickname', occ.nick),
          f('muc#request_allow', 'boolean', 'Grant voice to this person?', 'false')));
      await svc.send(msg, room.jid, s);
    }
  }
}
