// XEP-0386: Bind 2 <https://xmpp.org/extensions/xep-0386.html> 1.0.1 — resource binding inside a SASL2
// authentication, with the features a client wants on its new session enabled in the same round trip.
import { createHash, randomBytes } from 'node:crypto';
import { Element, xml } from '../xml/element.ts';
import type { Host } from '../core/host.ts';
import type { C2sSession } from '../core/session.ts';
import { Jid } from '../xmpp/jid.ts';

export const BIND2_NS = 'urn:xmpp:bind:0';

/** Where an inline request was made: inside <bind/> (XEP-0386) or inside <authenticate/> (XEP-0388). */
export type InlineContext = 'bind2' | 'sasl2';

declare module '../core/hook-map.ts' {
  interface HookMap {
    /**
     * A feature request made inline (XEP-0388 §2.6, XEP-0386 §2.3): a handler that recognizes the element acts on
     * it and returns true; what it writes with session.sendRaw becomes part of <bound/> or <success/>.
     */
    'c2s/inline': { host: Host; session: C2sSession; element: Element; context: InlineContext };
  }
}

/** Namespaces (from c2s/features) advertised as Bind2 inline features (XEP-0386 §5). */
const INLINE_FEATURES: Record<string, string> = {
  'urn:xmpp:sm:3': 'urn:xmpp:sm:3',
  'urn:xmpp:csi:0': 'urn:xmpp:csi:0',
};
const CARBONS_NS = 'urn:xmpp:carbons:2';

/** <bind xmlns='urn:xmpp:bind:0'> as advertised inside <authentication/>: the features it can enable inline. */
export function bind2Feature(host: Host, postAuthFeatures: Element[]): Element {
  const vars = new Set<string>();
  for (const f of postAuthFeatures) {
    const v = INLINE_FEATURES[f.attrs.xmlns ?? ''];
    if (v) vars.add(v);
  }
  if (host.features.has(CARBONS_NS)) vars.add(CARBONS_NS);
  return xml('bind', { xmlns: BIND2_NS }, xml('inline', null, [...vars].map((v) => xml('feature', { var: v }))));
}

/**
 * §2.2: the server picks the resource from the client's <tag/>. The tag alone when no other client holds it
 * (`holder` says which user-agent id a bound full JID belongs to); otherwise the tag and a part derived from the
 * user-agent id, so the same client install gets the same resource each time (and replaces its stale session)
 * while two installs with the same tag never kick each other.
 */
export function bind2Resource(user: string, host: string, tag: string | undefined, agentId: string | undefined,
  holder: (jid: Jid) => { agentId: string | undefined } | undefined): Jid {
  const unique = agentId
    ? createHash('sha256').update(`${user}@${host}\0${agentId}`).digest('base64url').slice(0, 8)
    : randomBytes(6).toString('base64url');
  const cleaned = tag?.trim().slice(0, 64);
  if (cleaned) {
    try {
      const plain = Jid.of(user, host, cleaned);
      const held = holder(plain);
      if (!held || (agentId !== undefined && held.agentId === agentId)) return plain;
      return Jid.of(user, host, `${cleaned}.${unique}`);
    } catch {
      // A tag that cannot be a resource is ignored: the client asked for a label, not a name.
    }
  }
  return Jid.of(user, host, `parley-${unique}`);
}

/** The children of a <bind/> request that ask for inline features (everything except <tag/>). */
export function bind2Requests(bind: Element): Element[] {
  return bind.getElements().filter((c) => c.attrs.xmlns !== undefined && c.attrs.xmlns !== BIND2_NS);
}
