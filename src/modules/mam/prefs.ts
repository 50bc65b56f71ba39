// XEP-0441: Message Archive Management Preferences <https://xmpp.org/extensions/xep-0441.html> 0.2.0
import { StanzaError } from '../../core/errors.ts';
import { ARCHIVE_DEFAULTS, type ArchiveDefault, type ArchivePrefs } from '../../storage/types.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { MAM_NS } from './ns.ts';

/** Each list holds at most this many JIDs: preferences are read for every archived message. */
export const MAX_PREFS_JIDS = 1000;

function jids(list: Element | undefined): string[] {
  if (!list) return []; // §2.1: a missing list is an empty one
  const out = new Set<string>();
  for (const j of list.getChildren('jid')) out.add(Jid.parse(j.text().trim()).toString());
  if (out.size > MAX_PREFS_JIDS) throw StanzaError.notAcceptable(`At most ${MAX_PREFS_JIDS} JIDs per list`);
  return [...out];
}

/** Reads a <prefs/> set: the default is required; a JID in both lists is never archived. */
export function parsePrefs(el: Element): ArchivePrefs {
  const def = el.attrs.default;
  if (!(ARCHIVE_DEFAULTS as readonly string[]).includes(def ?? '')) {
    throw StanzaError.badRequest(`'default' must be one of ${ARCHIVE_DEFAULTS.join(', ')}`);
  }
  const never = jids(el.getChild('never'));
  const blocked = new Set(never);
  return { default: def as ArchiveDefault, always: jids(el.getChild('always')).filter((j) => !blocked.has(j)), never };
}

/** §2.1: the default, and both lists even when empty. */
export function prefsElement(p: ArchivePrefs): Element {
  return xml('prefs', { xmlns: MAM_NS.MAM, default: p.default },
    xml('always', null, p.always.map((j) => xml('jid', null, j))),
    xml('never', null, p.never.map((j) => xml('jid', null, j))),
  );
}

/** Preferences with their lists as sets, for the per-message decision. */
export type CompiledPrefs = { default: ArchiveDefault; always: Set<string>; never: Set<string> };

export function compilePrefs(p: ArchivePrefs): CompiledPrefs {
  return { default: p.default, always: new Set(p.always), never: new Set(p.never) };
}

/**
 * §2.3: a listed full JID matches the target as it is, a listed bare JID the target's bare JID; the more
 * specific entry wins, and 'never' wins over 'always'. Otherwise the default decides, 'roster' by the
 * target's bare JID.
 */
export function archiveDecision(p: CompiledPrefs, target: Jid): boolean | 'roster' {
  if (!target.isBare) {
    const full = target.toString();
    if (p.never.has(full)) return false;
    if (p.always.has(full)) return true;
  }
  if (p.never.has(target.bareString)) return false;
  if (p.always.has(target.bareString)) return true;
  return p.default === 'roster' ? 'roster' : p.default === 'always';
}
