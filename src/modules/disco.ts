// XEP-0030: Service Discovery <https://xmpp.org/extensions/xep-0030.html> 2.5rc3 — the server's and each
// account's identities, features and items, collected from the loaded modules; with XEP-0128 (Service Discovery
// Extensions) 1.0 for extended info and XEP-0157 (Contact Addresses for XMPP Services) 1.1.1 as its first form.
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { StanzaError } from '../core/errors.ts';
import type { StanzaEvent } from '../core/hook-map.ts';
import type { DiscoItem, Host } from '../core/host.ts';
import { Element, xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { Jid } from '../xmpp/jid.ts';

export const DATA_FORMS = 'jabber:x:data';
const SERVERINFO = 'http://jabber.org/network/serverinfo';

export type DiscoIdentity = { category: string; type: string; name?: string | undefined; lang?: string | undefined };
/** What a disco#info result says: identities, features and XEP-0128 extended info forms. */
export type DiscoInfo = { identities: DiscoIdentity[]; features: string[]; forms: Element[] };
/** A disco query: to the host (local part empty) or to an account's bare JID, on its root or on a node. */
export type DiscoQuery = { host: Host; from: Jid; to: Jid; node: string | undefined };

declare module '../core/hook-map.ts' {
  interface FoldHookMap {
    /**
     * disco#info. Without a node the accumulator starts as the host's (or the account's) identities and features
     * and handlers add to it; on a node it starts undefined and the module that knows the node fills it in.
     */
    'disco/info': [DiscoQuery, DiscoInfo | undefined];
    /** disco#items, the same way: root queries start with the registered items, node queries undefined. */
    'disco/items': [DiscoQuery, DiscoItem[] | undefined];
  }
}

/** XEP-0157 §3 address kinds; each becomes the form field `<kind>-addresses`. */
const CONTACT_KINDS = ['abuse', 'admin', 'feedback', 'sales', 'security', 'status', 'support'] as const;

const uri = z.string().regex(/^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/, 'must be a URI such as xmpp:admin@example.com or mailto:admin@example.com');
const jid = z.string().refine((s) => Jid.tryParse(s) !== undefined, 'must be a valid JID');

const options = z.strictObject({
  contact: z.strictObject(Object.fromEntries(CONTACT_KINDS.map((k) => [k, z.array(uri).optional()])) as Record<(typeof CONTACT_KINDS)[number], z.ZodOptional<z.ZodArray<typeof uri>>>)
    .default({})
    .describe('XEP-0157 contact addresses (URIs) per kind: admin, abuse, support, security, feedback, sales, status'),
  items: z.array(z.strictObject({ jid, node: z.string().min(1).optional(), name: z.string().optional() }))
    .default([])
    .describe('extra entries of the server\'s disco#items (services on other JIDs)'),
});

/** The host's (or an account's) disco#info, as every module contributes to it. */
export async function discoInfo(query: DiscoQuery): Promise<DiscoInfo | undefined> {
  const { host, to, node } = query;
  let base: DiscoInfo | undefined;
  if (node === undefined) {
    base = to.local === ''
      ? { identities: host.identities.map((i) => ({ ...i })), features: [...host.features], forms: [] }
      : { identities: [{ category: 'account', type: 'registered' }], features: [...host.accountFeatures], forms: [] };
  }
  return host.bus.fold('disco/info', query, base);
}

/** The `<query/>` of a disco#info result; features sorted and de-duplicated, as XEP-0030 §3.1 requires unique. */
export function infoElement(info: DiscoInfo, node?: string): Element {
  const seen = new Set<string>();
  const identities = info.identities.filter((i) => {
    const key = `${i.category}\u0000${i.type}\u0000${i.lang ?? ''}\u0000${i.name ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return xml('query', { xmlns: NS.DISCO_INFO, node },
    identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name, 'xml:lang': i.lang })),
    [...new Set(info.features)].sort().map((f) => xml('feature', { var: f })),
    info.forms);
}

/** XEP-0128 §3: a result form with a hidden FORM_TYPE and one field per entry. */
export function resultForm(formType: string, fields: Array<{ var: string; type?: string; values: string[] }>): Element {
  return xml('x', { xmlns: DATA_FORMS, type: 'result' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, formType)),
    fields.map((f) => xml('field', { var: f.var, type: f.type }, f.values.map((v) => xml('value', null, v)))));
}

export default defineModule({
  id: 'disco',
  xeps: [
    { xep: 30, version: '2.5rc3', status: 'complete' },
    { xep: 128, version: '1.0.1', status: 'complete' },
    { xep: 157, version: '1.1.1', status: 'complete' },
  ],
  options,
  setup(ctx) {
    const { host, options: opts } = ctx;
    ctx.disco.feature(NS.DISCO_INFO, { account: true });
    ctx.disco.feature(NS.DISCO_ITEMS, { account: true });

    const contactFields = CONTACT_KINDS.flatMap((kind) => {
      const values = opts.contact[kind];
      return values && values.length > 0 ? [{ var: `${kind}-addresses`, type: 'list-multi', values }] : [];
    });
    if (contactFields.length > 0) {
      ctx.fold('disco/info', (q, info) => {
        if (!info || q.node !== undefined || q.to.local !== '') return info;
        return { ...info, forms: [...info.forms, resultForm(SERVERINFO, contactFields)] };
      });
    }

    const configured: DiscoItem[] = opts.items.map((i) => ({ jid: Jid.parse(i.jid).toString(), node: i.node, name: i.name }));

    const query = (e: StanzaEvent, q: Element): DiscoQuery => ({ host, from: e.from, to: e.to, node: q.attrs.node });

    // The host answers for itself and, on an account's behalf, for its bare JID (RFC 6121 §8.5.2.1.3) — to anyone:
    // that reveals no presence, and XEP-0163 ('Contact Service Discovery') expects a user without a subscription
    // to learn this way that the account is a PEP service. Modules list only what the asker may see.
    ctx.iq.get(NS.DISCO_INFO, 'query', async (e, q) => {
      const info = await discoInfo(query(e, q));
      if (!info) throw StanzaError.itemNotFound();
      return infoElement(info, q.attrs.node);
    }, { to: ['host', 'account'] });

    ctx.iq.get(NS.DISCO_ITEMS, 'query', async (e, q) => {
      const dq = query(e, q);
      const base = dq.node !== undefined ? undefined : dq.to.local === '' ? [...configured, ...host.discoItems] : [];
      const items = await host.bus.fold('disco/items', dq, base);
      if (!items) throw StanzaError.itemNotFound();
      return xml('query', { xmlns: NS.DISCO_ITEMS, node: q.attrs.node }, items.map((i) => xml('item', { jid: i.jid, node: i.node, name: i.name })));
    }, { to: ['host', 'account'] });
  },
});
