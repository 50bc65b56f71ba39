// XEP-0045 §7.2.13-7.2.14: discussion history sent on entering a room, with the maxchars, maxstanzas, seconds and
// since limits a joining client may ask for, each message stamped (XEP-0203) with the room as the delayer.
import { StanzaError } from '../../core/errors.ts';
import { serialize, xml, type Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { parseDateTime } from '../mam/form.ts';

export type HistoryEntry = {
  /** The message as it was broadcast (from the occupant JID, no 'to'). */
  stanza: Element;
  at: number;
  /** Characters of the complete stanza as a joining client gets it, delay stamp included (§7.2.14 'maxchars'). */
  chars: number;
};

/** What the joining client asked for; each is a ceiling, undefined when not asked. */
export type HistoryRequest = { maxchars?: number; maxstanzas?: number; seconds?: number; since?: number };

function count(el: Element, attr: string): number | undefined {
  const v = el.attrs[attr];
  if (v === undefined) return undefined;
  if (!/^\d{1,10}$/.test(v.trim())) throw StanzaError.badRequest(`history '${attr}' must be a non-negative integer`);
  return Number(v.trim());
}

/** Reads <history/> from the join presence's <x xmlns='http://jabber.org/protocol/muc'/>. */
export function parseHistoryRequest(x: Element | undefined): HistoryRequest {
  const h = x?.getChild('history');
  if (!h) return {};
  const since = h.attrs.since;
  return {
    maxchars: count(h, 'maxchars'),
    maxstanzas: count(h, 'maxstanzas'),
    seconds: count(h, 'seconds'),
    since: since === undefined ? undefined : parseDateTime(since, 'since'),
  };
}

/** A delay stamp from the room (§7.2.13: 'from' is the room's JID). */
export function delayFrom(room: string, at: number): Element {
  return xml('delay', { xmlns: NS.DELAY, from: room, stamp: new Date(at).toISOString() });
}

/** The last messages of a room, oldest first, at most `limit`. */
export class History {
  private entries: HistoryEntry[] = [];
  private readonly room: string;
  limit: number;

  constructor(room: string, limit: number) {
    this.room = room;
    this.limit = limit;
  }

  get size(): number {
    return this.entries.length;
  }

  add(stanza: Element, at: number): void {
    if (this.limit <= 0) return;
    const sent = stanza.clone();
    sent.children.push(delayFrom(this.room, at));
    this.entries.push({ stanza, at, chars: serialize(sent).length });
    this.trim();
  }

  /** A smaller limit drops the oldest at once. */
  setLimit(limit: number): void {
    this.limit = limit;
    this.trim();
  }

  clear(): void {
    this.entries = [];
  }

  private trim(): void {
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
  }

  /**
   * §7.2.14: the smallest amount of history meeting every limit asked for and the room's own, newest kept, whole
   * stanzas only; each returned copy carries the room's delay stamp.
   */
  select(req: HistoryRequest, now: number): Element[] {
    let stanzas = Math.min(this.limit, req.maxstanzas ?? Infinity);
    let chars = req.maxchars ?? Infinity;
    let after = -Infinity;
    if (req.seconds !== undefined) after = Math.max(after, now - req.seconds * 1000);
    if (req.since !== undefined) after = Math.max(after, req.since);
    const picked: HistoryEntry[] = [];
    for (let i = this.entries.length - 1; i >= 0 && stanzas > 0; i--) {
      const e = this.entries[i] as HistoryEntry;
      if (e.at < after || e.chars > chars) break;
      picked.push(e);
      stanzas--;
      chars -= e.chars;
    }
    picked.reverse();
    return picked.map((e) => {
      const copy = e.stanza.clone();
      copy.children.push(delayFrom(this.room, e.at));
      return copy;
    });
  }
}
