// XEP-0049: Private XML Storage <https://xmpp.org/extensions/xep-0049.html> 1.2
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { StanzaError } from '../core/errors.ts';
import type { StanzaEvent } from '../core/hook-map.ts';
import type { Element } from '../xml/element.ts';
import { serialize, xml } from '../xml/element.ts';
import { parseElement } from '../xml/parse.ts';

export const NS_PRIVATE = 'jabber:iq:private';
/** kv namespace: one key per stored fragment namespace, the value a <query/> holding that namespace's elements. */
const KV_NS = 'jabber:iq:private';

/** §2.3: namespaces reserved in Jabber; storing them privately would shadow their real protocols. */
export function isReservedNamespace(ns: string): boolean {
  return ns.startsWith('jabber:') || ns.startsWith('http://jabber.org/') || ns === 'vcard-temp';
}

/** The query's children grouped by namespace; every child must carry its own (§2.3: not-acceptable otherwise). */
function byNamespace(query: Element): Map<string, Element[]> {
  const groups = new Map<string, Element[]>();
  for (const child of query.getElements()) {
    // A child without its own xmlns is in jabber:iq:private itself, which is no storage namespace.
    const ns = child.attrs.xmlns;
    if (ns === undefined || ns === '' || ns === NS_PRIVATE) throw StanzaError.notAcceptable('Each child needs its own namespace');
    if (isReservedNamespace(ns)) throw StanzaError.notAcceptable(`${ns} is a reserved namespace`);
    const list = groups.get(ns) ?? [];
    list.push(child);
    groups.set(ns, list);
  }
  if (groups.size === 0) throw StanzaError.notAcceptable('The query needs a child element in its own namespace');
  return groups;
}

export default defineModule({
  id: 'private',
  xeps: [{ xep: 49, version: '1.2', status: 'complete' }],
  options: z.strictObject({
    max_size: z.number().int().min(1024).default(65_536)
      .describe('bytes of serialized XML an account may store under one namespace; larger sets get policy-violation'),
  }),
  setup(ctx) {
    const { host, storage } = ctx;
    ctx.disco.feature(NS_PRIVATE, { account: true });

    /** §2.3: private data is the user's alone; forbidden is the preferred answer. */
    const ownOnly = (e: StanzaEvent): void => {
      if (!e.to.equals(e.from.bare)) throw StanzaError.forbidden('Private storage is for your own account only');
    };

    ctx.iq.get(NS_PRIVATE, 'query', async (e, query) => {
      ownOnly(e);
      const groups = byNamespace(query);
      // §2.3: one namespace per get.
      if (groups.size > 1 || query.getElements().length > 1) throw StanzaError.badRequest('Ask for one namespace per request');
      const [ns, asked] = [...groups][0] as [string, Element[]];
      const raw = await storage.kv.get(host.name, e.to.local, KV_NS, ns);
      const stored = raw === undefined ? undefined : parseElement(raw);
      // Nothing stored: the element asked for comes back as it was sent (the established behaviour).
      return stored ?? xml('query', { xmlns: NS_PRIVATE }, asked);
    }, { to: ['account'] });

    ctx.iq.set(NS_PRIVATE, 'query', async (e, query) => {
      ownOnly(e);
      const groups = byNamespace(query);
      const values = new Map<string, string>();
      for (const [ns, elements] of groups) {
        const text = serialize(xml('query', { xmlns: NS_PRIVATE }, elements));
        if (Buffer.byteLength(text, 'utf8') > ctx.options.max_size) {
          throw new StanzaError('policy-violation', `Private data for ${ns} larger than ${ctx.options.max_size} bytes`);
        }
        values.set(ns, text);
      }
      // Each namespace present replaces what was stored for it; other namespaces are untouched.
      for (const [ns, text] of values) await storage.kv.set(host.name, e.to.local, KV_NS, ns, text);
      return undefined;
    }, { to: ['account'] });
  },
});
