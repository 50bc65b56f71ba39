// XEP-0059: Result Set Management <https://xmpp.org/extensions/xep-0059.html> 1.0 — the request and the
// result <set/> as MAM uses them.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { MAM_NS } from './ns.ts';

export type RsmRequest = { max?: number | undefined; after?: string | undefined; before?: string | undefined; index?: number | undefined };

/** A <max/> or <index/> value: a non-negative integer, nothing else. */
function count(el: Element | undefined, what: string): number | undefined {
  if (!el) return undefined;
  const text = el.text().trim();
  if (!/^\d{1,9}$/.test(text)) throw StanzaError.badRequest(`RSM <${what}/> must be a non-negative integer`);
  return Number(text);
}

/** Reads a request <set/>; an empty <before/> asks for the last page (§2.5), an empty <after/> means no bound. */
export function parseRsm(set: Element | undefined): RsmRequest {
  if (!set) return {};
  const before = set.getChild('before');
  const after = set.getChild('after')?.text().trim();
  return {
    max: count(set.getChild('max'), 'max'),
    index: count(set.getChild('index'), 'index'),
    after: after === '' ? undefined : after,
    before: before ? before.text().trim() : undefined,
  };
}

/** The result <set/>: first and last only for a non-empty page (§2.2), the count when it is known. */
export function rsmResult(page: { first?: string | undefined; firstIndex?: number | undefined; last?: string | undefined; count?: number | undefined }): Element {
  return xml('set', { xmlns: MAM_NS.RSM },
    page.first !== undefined ? xml('first', { index: page.firstIndex }, page.first) : undefined,
    page.last !== undefined ? xml('last', null, page.last) : undefined,
    page.count !== undefined ? xml('count', null, String(page.count)) : undefined,
  );
}
