// XEP-0054: vcard-temp <https://xmpp.org/extensions/xep-0054.html> 1.2
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { StanzaError } from '../core/errors.ts';
import type { Host } from '../core/host.ts';
import type { Storage } from '../storage/types.ts';
import { Element, serialize, xml } from '../xml/element.ts';
import { parseElement } from '../xml/parse.ts';
import type { Jid } from '../xmpp/jid.ts';

export const NS_VCARD = 'vcard-temp';
/** The kv namespace and key the vCard is kept under, serialized as it was set. */
const KV_NS = 'vcard-temp';
const KV_KEY = 'vcard';

declare module '../core/hook-map.ts' {
  interface HookMap {
    /** A user stored a new vCard (XEP-0153 avatars follow it). */
    'vcard/updated': { host: Host; user: Jid; vcard: Element };
  }
}

/** The stored vCard of an account, or undefined when it never set one. */
export async function loadVcard(storage: Storage, host: string, user: Jid): Promise<Element | undefined> {
  const raw = await storage.kv.get(host, user.local, KV_NS, KV_KEY);
  return raw === undefined ? undefined : parseElement(raw);
}

export default defineModule({
  id: 'vcard',
  xeps: [{ xep: 54, version: '1.2', status: 'complete' }],
  options: z.strictObject({
    max_size: z.number().int().min(1024).default(65_536)
      .describe('bytes of serialized vCard an account may store; larger sets get policy-violation'),
  }),
  setup(ctx) {
    const { host, storage } = ctx;
    ctx.disco.feature(NS_VCARD, { account: true });

    // Sent without 'to' (the router addresses it to the sender's bare JID) or to any account's bare JID: the
    // server answers on the account's behalf (§3.3), and vCards are world-readable (§5).
    ctx.iq.get(NS_VCARD, 'vCard', async (e) => {
      const own = e.to.equals(e.from.bare);
      const vcard = await loadVcard(storage, host.name, e.to);
      if (vcard) return vcard;
      // §3.1 lets the owner get an empty vCard (handy to fill in); §3.3 requires an error for anyone else.
      if (own) return xml('vCard', { xmlns: NS_VCARD });
      throw StanzaError.itemNotFound();
    }, { to: ['account'] });

    ctx.iq.set(NS_VCARD, 'vCard', async (e, payload) => {
      // §3.2: only one's own vCard; forbidden for anyone else's.
      if (!e.to.equals(e.from.bare)) throw StanzaError.forbidden('You can only set your own vCard');
      const text = serialize(payload);
      if (Buffer.byteLength(text, 'utf8') > ctx.options.max_size) {
        throw new StanzaError('policy-violation', `vCard larger than ${ctx.options.max_size} bytes`);
      }
      await storage.kv.set(host.name, e.to.local, KV_NS, KV_KEY, text);
      try {
        await host.bus.run('vcard/updated', { host, user: e.to, vcard: payload });
      } catch {
        // Stored all the same; the bus has logged the failing listener.
      }
      return undefined;
    }, { to: ['account'] });
  },
});
