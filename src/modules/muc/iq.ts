// IQs to rooms and occupants: the room's own protocols, and XEP-0410 self-pings and forwarded requests for occupant
// JIDs (§17.4).
import { StanzaError } from '../../core/errors.ts';
import type { Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import type { Jid } from '../../xmpp/jid.ts';
import { iqResult } from '../../xmpp/stanza.ts';
import { MAM_NS } from '../mam/ns.ts';
import { adminGet, adminSet } from './admin.ts';
import { archiveForm, archiveMetadata, archiveQuery } from './archive.ts';
import { roomInfo, roomItems } from './disco.ts';
import { notifySetting } from './notify-setting.ts';
import { MUC_NS } from './ns.ts';
import { ownerGet, ownerSet } from './owner.ts';
import type { IqRequest, MucService } from './service.ts';

export async function roomIq(req: IqRequest): Promise<Element | undefined | void> {
  const { svc, room, stanza, payload, from } = req;
  const get = stanza.attrs.type === 'get';
  if (get && payload.is('query', NS.DISCO_INFO)) return roomInfo(svc, room, payload, from);
  if (get && payload.is('query', NS.DISCO_ITEMS)) return roomItems(payload);
  if (payload.is('query', MUC_NS.ADMIN)) return get ? adminGet(req) : adminSet(req);
  if (payload.is('query', MUC_NS.OWNER)) return get ? ownerGet(req) : ownerSet(req);
  if (payload.is('query', MAM_NS.MAM)) return get ? archiveForm(req) : archiveQuery(req);
  if (get && payload.is('metadata', MAM_NS.MAM)) return archiveMetadata(req);
  if (payload.is('push', MUC_NS.PUSH)) return notifySetting(req);
  if (get && payload.is('ping', NS.PING)) return undefined;
  throw StanzaError.serviceUnavailable();
}

/**
 * An IQ to an occupant JID. XEP-0410: an occupant's ping to its own occupant JID is answered by the service while
 * that device is joined, and not-acceptable when it is not. Other requests from occupants go to the occupant's real
 * JID (§17.4); non-occupants get bad-request (§6.6).
 */
export async function occupantIq(svc: MucService, stanza: Element, from: Jid, to: Jid): Promise<void> {
  const room = svc.rooms.get(to.local);
  const payload = stanza.firstElement();
  const sender = room?.bySession.get(from.toString());
  const ping = stanza.attrs.type === 'get' && payload?.is('ping', NS.PING) === true;
  if (ping && !sender) throw StanzaError.notAcceptable('You are not in the room');
  if (!room || (room.locked && !sender)) throw StanzaError.itemNotFound('No such room');
  if (!sender) throw StanzaError.badRequest('Only occupants may address occupants');
  if (ping && sender.nick === to.resource) {
    await svc.send(iqResult(stanza), to, from);
    return;
  }
  const target = room.occupants.get(to.resource);
  if (!target) throw StanzaError.itemNotFound('No such occupant');
  // A vCard is the account's, answered by its server for its bare JID.
  const vcard = payload?.is('vCard', MUC_NS.VCARD) === true && stanza.attrs.type === 'get';
  await svc.proxy.forward(stanza, from, sender.jid, target.jid, vcard ? target.bare : target.realJid);
}
