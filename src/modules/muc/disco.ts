// XEP-0045 §6: discovery of the service (identity, features, public rooms) and of rooms (features that describe
// the room type, the muc#roominfo form of XEP-0128, and the reserved-nick node).
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import type { Jid } from '../../xmpp/jid.ts';
import { MAM_NS } from '../mam/ns.ts';
import { nonAnonymous } from './config.ts';
import { MUC_NS } from './ns.ts';
import type { Room } from './room.ts';
import type { MucService } from './service.ts';

/** §7.12: the node where a user discovers its reserved nick. */
const RESERVED_NICK_NODE = 'x-roomuser-item';
const TRAFFIC_NODE = 'http://jabber.org/protocol/muc#traffic';

const feature = (v: string): Element => xml('feature', { var: v });

export function serviceInfo(svc: MucService, q: Element): Element {
  if (q.attrs.node !== undefined) throw StanzaError.itemNotFound();
  return xml('query', { xmlns: NS.DISCO_INFO },
    xml('identity', { category: 'conference', type: 'text', name: svc.options.name }),
    [NS.DISCO_INFO, NS.DISCO_ITEMS, MUC_NS.MUC, MUC_NS.STABLE_ID, MUC_NS.SELF_PING, MUC_NS.OCCUPANT_ID, NS.PING].sort().map(feature));
}

/** §6.3: the public rooms, unlocked ones only. */
export function serviceItems(svc: MucService, q: Element): Element {
  if (q.attrs.node !== undefined) throw StanzaError.itemNotFound();
  const rooms = [...svc.rooms.values()].filter((r) => r.config.public && !r.locked).sort((a, b) => a.node.localeCompare(b.node));
  return xml('query', { xmlns: NS.DISCO_ITEMS },
    rooms.map((r) => xml('item', { jid: r.jid.toString(), name: r.config.name || r.node })));
}

/** The features that describe a room (§6.4 and the registered muc_* features). */
function roomFeatures(svc: MucService, room: Room): string[] {
  const c = room.config;
  const f = [
    NS.DISCO_INFO, NS.DISCO_ITEMS, MUC_NS.MUC, MUC_NS.STABLE_ID, MUC_NS.SELF_PING, MUC_NS.OCCUPANT_ID, MUC_NS.REQUEST, MAM_NS.SID,
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    nonAnonymous(c) ? 'muc_nonanonymous' : 'muc_semianonymous',
    c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
    MUC_NS.PUSH,
  ];
  if (svc.archived(room)) f.push(MAM_NS.MAM, MAM_NS.MAM_EXTENDED);
  return f.sort();
}

function infoField(v: string, label: string | undefined, values: string[], type?: string): Element {
  return xml('field', { var: v, type, label }, values.map((value) => xml('value', null, value)));
}

/** The muc#roominfo form (§6.4 and its field registry); the subject only where anyone may join and read it anyway. */
function roomInfoForm(svc: MucService, room: Room): Element {
  const c = room.config;
  const open = c.public && !c.membersOnly && !c.passwordProtected;
  return xml('x', { xmlns: MUC_NS.DATA, type: 'result' },
    infoField('FORM_TYPE', undefined, [MUC_NS.ROOMINFO], 'hidden'),
    infoField('muc#roomconfig_roomname', 'Natural-Language Room Name', [c.name]),
    infoField('muc#roominfo_description', 'Description', [c.description]),
    c.lang !== '' ? infoField('muc#roominfo_lang', 'Language of discussion', [c.lang]) : undefined,
    infoField('muc#roominfo_occupants', 'Number of occupants', [String(room.occupants.size)]),
    open && room.subject ? infoField('muc#roominfo_subject', 'Current Discussion Topic', [room.subject.text]) : undefined,
    infoField('muc#roomconfig_changesubject', 'Occupants may change the subject', [c.changeSubject ? '1' : '0'], 'boolean'),
    infoField('muc#roominfo_subjectmod', 'Occupants may change the subject', [c.changeSubject ? '1' : '0'], 'boolean'),
    infoField('muc#maxhistoryfetch', 'Maximum Number of History Messages Returned by Room', [String(c.historyLength)]),
    infoField('muc#roomconfig_allowinvites', 'Members may invite', [c.allowInvites ? '1' : '0'], 'boolean'),
    infoField('muc#roomconfig_allowpm', 'Who may send private messages', [c.allowPm]),
    nonAnonymous(c) ? infoField('muc#roominfo_contactjid', 'Contact Addresses', room.list('owner'), 'jid-multi') : undefined,
  );
}

export function roomInfo(svc: MucService, room: Room, q: Element, from: Jid): Element {
  const node = q.attrs.node;
  if (node === RESERVED_NICK_NODE) {
    const nick = room.affiliations.get(from.bareString)?.nick;
    return xml('query', { xmlns: NS.DISCO_INFO, node },
      nick !== undefined ? xml('identity', { category: 'conference', type: 'text', name: nick }) : undefined);
  }
  // §18.1.1 (allowable traffic): the room passes every extension through, so it has no traffic node.
  if (node === TRAFFIC_NODE) throw StanzaError.featureNotImplemented('Every extension passes through this room');
  if (node !== undefined) throw StanzaError.itemNotFound();
  return xml('query', { xmlns: NS.DISCO_INFO },
    xml('identity', { category: 'conference', type: 'text', name: room.config.name || room.node }),
    roomFeatures(svc, room).map(feature),
    roomInfoForm(svc, room));
}

/** §6.5: occupants are not listed (advised off by default). */
export function roomItems(q: Element): Element {
  if (q.attrs.node !== undefined) throw StanzaError.itemNotFound();
  return xml('query', { xmlns: NS.DISCO_ITEMS });
}
