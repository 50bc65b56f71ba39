// Parley's per-member switch for notifications while away from a members-only room (docs/muc.md): a member asks
// the room with <push xmlns='urn:parley:muc:push:0'/> (get) and sets enabled='false' or 'true' (set). It is kept with
// the member's affiliation, so it lasts as long as the membership.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { MUC_NS } from './ns.ts';
import { affiliationRank } from './roles.ts';
import type { IqRequest } from './service.ts';
import { saveAffiliation } from './persistence.ts';

export async function notifySetting(req: IqRequest): Promise<Element | undefined> {
  const { svc, room, from, payload, stanza } = req;
  const key = from.bareString;
  const entry = room.affiliations.get(key);
  if (!entry || affiliationRank(entry.affiliation) < affiliationRank('member')) {
    throw StanzaError.forbidden('Only members have notification settings in this room');
  }
  if (stanza.attrs.type === 'get') return xml('push', { xmlns: MUC_NS.PUSH, enabled: entry.notify ? 'true' : 'false' });
  const v = payload.attrs.enabled;
  if (v !== 'true' && v !== 'false' && v !== '1' && v !== '0') throw StanzaError.badRequest("'enabled' must be true or false");
  entry.notify = v === 'true' || v === '1';
  await saveAffiliation(svc, room, key);
  return undefined;
}
