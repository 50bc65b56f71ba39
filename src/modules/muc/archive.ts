// XEP-0313 (Message Archive Management) 1.1.3 §5 on a room's JID: occupants (members, in members-only rooms) page
// through the room's archive with XEP-0059 RSM. Archives live in the shared archive store with host = the chat
// service's domain and username = the room's localpart; the archive ids are the rooms' XEP-0359 stanza-ids.
import { randomBytes } from 'node:crypto';
import { StanzaError, StorageError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { parseQueryForm, queryForm } from '../mam/form.ts';
import { MAM_NS } from '../mam/ns.ts';
import { parseRsm, rsmResult } from '../mam/rsm.ts';
import { parseStored } from '../mam/stored.ts';
import type { Room } from './room.ts';
import { affiliationRank } from './roles.ts';
import type { IqRequest, MucService } from './service.ts';

/**
 * Who may read a room's archive: nobody when the room keeps none; never outcasts; members and above in
 * members-only rooms; in password-protected rooms those who are in (they had the password) and members.
 */
function mayRead(svc: MucService, req: IqRequest): void {
  const { room, from } = req;
  if (!svc.archived(room)) throw StanzaError.serviceUnavailable('This room keeps no archive');
  const affiliation = room.affiliationOf(from);
  if (affiliation === 'outcast') throw StanzaError.forbidden('You are banned from this room');
  const member = affiliationRank(affiliation) >= affiliationRank('member');
  if (room.config.membersOnly && !member) throw StanzaError.forbidden('The archive of a members-only room is for its members');
  if (room.config.passwordProtected && !member && !room.bySession.has(from.toString())) {
    throw StanzaError.forbidden('Enter the room to read its archive');
  }
}

export function archiveForm(req: IqRequest): Element {
  mayRead(req.svc, req);
  return xml('query', { xmlns: MAM_NS.MAM }, queryForm({ fullText: fullText(req.svc) }));
}

function fullText(svc: MucService): boolean {
  return svc.options.archive_fulltext && svc.ctx.storage.archive.fullText;
}

export async function archiveQuery(req: IqRequest): Promise<Element> {
  const { svc, room, payload: query, from } = req;
  mayRead(svc, req);
  const filter = parseQueryForm(query.getChild('x', MAM_NS.DATA), { fullText: fullText(svc) });
  const rsm = parseRsm(query.getChild('set', MAM_NS.RSM));
  const max = Math.min(rsm.max ?? svc.options.page_size, svc.options.max_page_size);
  let page;
  try {
    page = await svc.ctx.storage.archive.query(svc.domain, room.node, filter, { max, after: rsm.after, before: rsm.before, index: rsm.index });
  } catch (err) {
    if (err instanceof StorageError && err.code === 'NOT_FOUND') throw StanzaError.itemNotFound('No such message in the archive');
    throw err;
  }
  const queryid = query.attrs.queryid;
  const prefix = randomBytes(6).toString('base64url');
  const stanzas = parseStored(page.messages.map((m) => m.stanza));
  const order = query.getChild('flip-page', MAM_NS.MAM) ? [...page.messages.keys()].reverse() : [...page.messages.keys()];
  // Results come from the room's bare JID; the messages keep their occupant JIDs (never real JIDs).
  for (const i of order) {
    const m = page.messages[i];
    if (!m) continue;
    await svc.send(xml('message', { id: `${prefix}-${i}` },
      xml('result', { xmlns: MAM_NS.MAM, queryid, id: m.id },
        xml('forwarded', { xmlns: MAM_NS.FORWARD },
          xml('delay', { xmlns: NS.DELAY, stamp: new Date(m.at).toISOString() }),
          stanzas[i]))), room.jid, from);
  }
  const first = page.messages[0];
  const last = page.messages.at(-1);
  return xml('fin', { xmlns: MAM_NS.MAM, complete: page.complete ? 'true' : undefined },
    rsmResult({ first: first?.id, firstIndex: first ? page.firstIndex : undefined, last: last?.id, count: page.count }));
}

export async function archiveMetadata(req: IqRequest): Promise<Element> {
  const { svc, room } = req;
  mayRead(svc, req);
  const b = await svc.ctx.storage.archive.bounds(svc.domain, room.node);
  const edge = (name: string, m: { id: string; at: number }): Element => xml(name, { id: m.id, timestamp: new Date(m.at).toISOString() });
  return xml('metadata', { xmlns: MAM_NS.MAM }, b ? [edge('start', b.first), edge('end', b.last)] : undefined);
}

/** The room's last messages from its archive, as history after a restart (history itself lives in memory). */
export async function historyFromArchive(svc: MucService, room: Room): Promise<void> {
  if (!svc.archived(room) || room.config.historyLength === 0) return;
  const page = await svc.ctx.storage.archive.query(svc.domain, room.node, {}, { max: room.config.historyLength, before: '' });
  const stanzas = parseStored(page.messages.map((m) => m.stanza));
  for (const [i, m] of page.messages.entries()) {
    const el = stanzas[i];
    if (!el || !el.getChild('body')) continue;
    delete el.attrs.xmlns;
    el.children.push(xml('stanza-id', { xmlns: MAM_NS.SID, id: m.id, by: room.jid.bareString }));
    room.history.add(el, m.at);
  }
}
