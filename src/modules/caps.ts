// XEP-0115: Entity Capabilities <https://xmpp.org/extensions/xep-0115.html> 1.6.0 — the server's own caps in
// stream features (§6.3), and the caps its clients advertise in presence, verified (§5.4) and cached per hash.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import type { Host } from '../core/host.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import type { Element } from '../xml/element.ts';
import { xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { DATA_FORMS, discoInfo, infoElement, type DiscoInfo, type DiscoIdentity } from './disco.ts';

export const CAPS = 'http://jabber.org/protocol/caps';

declare module '../core/hook-map.ts' {
  interface HookMap {
    /**
     * A resource's advertised features became known or changed (from the caps cache or its disco#info). On an
     * initial presence it may fire before the resource counts as available; 'user/available' follows then.
     */
    'caps/resolved': { host: Host; session: C2sSession; features: ReadonlySet<string> };
  }
}

/** IANA hash names (XEP-0115 §4) this server can verify, with node's names for them. */
const HASHES: Record<string, string> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

type ClientCaps = {
  hash: string;
  node: string;
  ver: string;
  /** Known once the cache or the client's disco#info answer tells. */
  features: ReadonlySet<string> | undefined;
};

const SESSION_CAPS = new SessionKey<ClientCaps>('caps');

/** The features a resource advertises through caps, when known; undefined means "no caps": assume nothing. */
export function sessionFeatures(session: C2sSession): ReadonlySet<string> | undefined {
  return session.get(SESSION_CAPS)?.features;
}

/** i;octet ordering (RFC 4790 §9.3), which XEP-0115 §5.1 requires: compare UTF-8 bytes, not UTF-16 units. */
function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The FORM_TYPE of an extended info form, undefined to skip the form, null when the response is ill-formed. */
function formType(form: Element): string | undefined | null {
  const fields = form.getChildren('field').filter((f) => f.attrs.var === 'FORM_TYPE');
  if (fields.length === 0) return undefined;
  if (fields.length > 1) return null;
  const field = fields[0] as Element;
  if (field.attrs.type !== 'hidden') return undefined;
  const values = new Set(field.getChildren('value').map((v) => v.text()));
  if (values.size !== 1) return values.size === 0 ? undefined : null;
  return [...values][0] as string;
}

/**
 * The verification string of §5.1 hashed with `hash` (an IANA name), or undefined when the hash is unknown or the
 * information is ill-formed by §5.4's rules (duplicate identities, features or form types).
 */
export function capsVer(info: DiscoInfo, hash = 'sha-1'): string | undefined {
  const algorithm = HASHES[hash];
  if (!algorithm) return undefined;
  const key = (i: DiscoIdentity): string => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`;
  const identities = info.identities.map(key);
  if (new Set(identities).size !== identities.length) return undefined;
  if (new Set(info.features).size !== info.features.length) return undefined;
  const forms: Array<[string, Element]> = [];
  for (const form of info.forms) {
    const type = formType(form);
    if (type === null) return undefined;
    if (type !== undefined) forms.push([type, form]);
  }
  if (new Set(forms.map(([t]) => t)).size !== forms.length) return undefined;

  // Each identity's key is category/type/lang/name, so sorting the keys sorts by category, then type, then lang.
  let s = identities.sort(octetCompare).map((i) => `${i}<`).join('');
  s += [...info.features].sort(octetCompare).map((f) => `${f}<`).join('');
  for (const [type, form] of forms.sort((a, b) => octetCompare(a[0], b[0]))) {
    s += `${type}<`;
    const fields = form.getChildren('field').filter((f) => f.attrs.var !== 'FORM_TYPE');
    fields.sort((a, b) => octetCompare(a.attrs.var ?? '', b.attrs.var ?? ''));
    for (const f of fields) {
      s += `${f.attrs.var ?? ''}<`;
      s += f.getChildren('value').map((v) => v.text()).sort(octetCompare).map((v) => `${v}<`).join('');
    }
  }
  return createHash(algorithm).update(s, 'utf8').digest('base64');
}

/** A disco#info `<query/>` as the caps algorithm sees it. */
export function parseInfo(query: Element): DiscoInfo {
  return {
    identities: query.getChildren('identity').map((i) => ({
      category: i.attrs.category ?? '',
      type: i.attrs.type ?? '',
      name: i.attrs.name,
      lang: i.attrs['xml:lang'],
    })),
    features: query.getChildren('feature').map((f) => f.attrs.var ?? ''),
    forms: query.getElements().filter((c) => c.name === 'x' && c.attrs.xmlns === DATA_FORMS),
  };
}

export default defineModule({
  id: 'caps',
  xeps: [{ xep: 115, version: '1.6.0', status: 'complete' }],
  requires: ['disco'],
  options: z.strictObject({
    node: z.string().min(1).refine((s) => !s.includes('#'), 'must not contain #').default('https://parley.im')
      .describe('the node URI in the server\'s own caps'),
    query_timeout: z.number().positive().default(10).describe('seconds to wait for a client\'s disco#info answer'),
    cache_size: z.number().int().min(1).default(10_000).describe('verified hashes remembered (least recently used go first)'),
  }),
  setup(ctx) {
    const { host, options: opts } = ctx;
    /** Verified features per `hash ver`: the same client release is asked once, whoever runs it. */
    const cache = new Map<string, ReadonlySet<string>>();
    const inFlight = new Map<string, Promise<ReadonlySet<string> | undefined>>();

    const serverVer = async (): Promise<string> => {
      const info = await discoInfo({ host, from: host.jid, to: host.jid, node: undefined });
      // Hash exactly what disco#info answers (de-duplicated), so a client that checks the string agrees.
      return capsVer(parseInfo(infoElement(info ?? { identities: [], features: [], forms: [] }))) ?? '';
    };

    const capsElement = async (): Promise<Element[]> => [xml('c', { xmlns: CAPS, hash: 'sha-1', node: opts.node, ver: await serverVer() })];
    ctx.fold('c2s/features-preauth', async (_e, features) => [...features, ...(await capsElement())]);
    ctx.fold('c2s/features', async (_e, features) => [...features, ...(await capsElement())]);

    // §6.2: disco#info on node#ver answers with the same information as without a node.
    ctx.fold('disco/info', async (q, info) => {
      if (info || q.node === undefined || q.to.local !== '' || !q.node.startsWith(`${opts.node}#`)) return info;
      if (q.node !== `${opts.node}#${await serverVer()}`) return info;
      return discoInfo({ ...q, node: undefined });
    });

    const remember = (key: string, features: ReadonlySet<string>): void => {
      cache.delete(key);
      cache.set(key, features);
      if (cache.size > opts.cache_size) cache.delete(cache.keys().next().value as string);
    };

    /** Asks one resource for node#ver and checks the answer against the hash (§5.4); undefined if it fails. */
    const ask = async (session: C2sSession, caps: ClientCaps): Promise<ReadonlySet<string> | undefined> => {
      const jid = session.jid;
      if (!jid) return undefined;
      try {
        const result = await ctx.iq.request(
          xml('iq', { type: 'get', to: jid.toString() }, xml('query', { xmlns: NS.DISCO_INFO, node: `${caps.node}#${caps.ver}` })),
          opts.query_timeout * 1000);
        const query = result.getChild('query', NS.DISCO_INFO);
        if (!query) return undefined;
        const info = parseInfo(query);
        const known = HASHES[caps.hash] !== undefined;
        if (known && capsVer(info, caps.hash) !== caps.ver) {
          ctx.log.debug({ jid: jid.toString(), node: caps.node, ver: caps.ver }, 'caps verification failed');
          return undefined;
        }
        return new Set(info.features);
      } catch (err) {
        ctx.log.debug({ err, jid: jid.toString() }, 'caps disco#info query failed');
        return undefined;
      }
    };

    const resolve = async (session: C2sSession, caps: ClientCaps): Promise<void> => {
      let features: ReadonlySet<string> | undefined;
      if (HASHES[caps.hash]) {
        const key = `${caps.hash} ${caps.ver}`;
        features = cache.get(key);
        if (features) remember(key, features);
        else {
          let pending = inFlight.get(key);
          if (!pending) {
            pending = ask(session, caps).then((f) => {
              if (f) remember(key, f);
              return f;
            }).finally(() => inFlight.delete(key));
            inFlight.set(key, pending);
          }
          features = await pending;
        }
      } else {
        // §5.4: a hash we cannot check (or legacy caps without one) is asked of this resource and kept with it only.
        features = await ask(session, caps);
      }
      if (!features || session.get(SESSION_CAPS) !== caps) return; // superseded by a newer presence meanwhile
      caps.features = features;
      await host.bus.run('caps/resolved', { host, session, features });
    };

    // Caps ride on the available presence a resource broadcasts; read them before the roster module takes it.
    ctx.hook('pre-presence', (e) => {
      const session = e.origin;
      if (!session || e.stanza.attrs.to !== undefined) return false;
      const type = e.stanza.attrs.type;
      if (type === 'unavailable') {
        session.set(SESSION_CAPS, undefined);
        return false;
      }
      if (type !== undefined) return false;
      const c = e.stanza.getChild('c', CAPS);
      const node = c?.attrs.node;
      const ver = c?.attrs.ver;
      if (!c || !node || !ver) {
        session.set(SESSION_CAPS, undefined);
        return false;
      }
      const hash = c.attrs.hash ?? '';
      const current = session.get(SESSION_CAPS);
      if (current && current.hash === hash && current.node === node && current.ver === ver) return false;
      const caps: ClientCaps = { hash, node, ver, features: undefined };
      // A cached hash is known at once, so modules acting on the initial presence already see the features.
      const cached = HASHES[hash] ? cache.get(`${hash} ${ver}`) : undefined;
      if (cached) {
        remember(`${hash} ${ver}`, cached);
        caps.features = cached;
        session.set(SESSION_CAPS, caps);
        queueMicrotask(() => {
          if (session.get(SESSION_CAPS) !== caps) return;
          host.bus.run('caps/resolved', { host, session, features: cached }).catch((err: unknown) => ctx.log.warn({ err }, 'caps/resolved failed'));
        });
        return false;
      }
      session.set(SESSION_CAPS, caps);
      void resolve(session, caps).catch((err) => ctx.log.warn({ err }, 'caps resolution failed'));
      return false;
    }, { priority: PRIORITY.FEATURE + 10 });

    ctx.onStop(() => {
      cache.clear();
      inFlight.clear();
    });
  },
});
