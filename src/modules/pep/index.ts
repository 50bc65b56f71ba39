// XEP-0163: Personal Eventing Protocol <https://xmpp.org/extensions/xep-0163.html> 1.2.2 on a XEP-0060 subset:
// every account is a pubsub service whose nodes notify the resources that ask through caps (+notify). Enough for
// XEP-0084 avatars, XEP-0172 nicknames, XEP-0402 bookmarks and XEP-0223 private storage.
import { z } from 'zod';
import { defineModule } from '../../core/module.ts';
import { PRIORITY } from '../../core/hooks.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import type { ServerServices } from '../../core/host.ts';
import type { C2sSession } from '../../core/session.ts';
import { Jid } from '../../xmpp/jid.ts';
import { sessionFeatures } from '../caps.ts';
import { PUBSUB, PUBSUB_OWNER } from './config.ts';
import { ownerGet, ownerSet, pubsubGet, pubsubSet } from './iq.ts';
import { PepService } from './service.ts';

/** XEP-0060 §10 features this service has, advertised on every account (XEP-0163 'Determining Support'). */
const FEATURES = [
  'access-open', 'access-presence', 'access-whitelist', 'auto-create', 'auto-subscribe', 'config-node',
  'create-and-configure', 'create-nodes', 'delete-items', 'delete-nodes', 'filtered-notifications', 'item-ids',
  'last-published', 'member-affiliation', 'modify-affiliations', 'persistent-items', 'presence-notifications',
  'publish', 'publish-options', 'purge-nodes', 'retract-items', 'retrieve-default', 'retrieve-items',
].map((f) => `${PUBSUB}#${f}`);

/** Each host's PEP service, so a contact on another local host can be given an owner's last items. */
const services = new WeakMap<ServerServices, Map<string, PepService>>();

export default defineModule({
  id: 'pep',
  xeps: [
    { xep: 163, version: '1.2.2', status: 'complete' },
    { xep: 60, version: '1.24.1', status: 'partial' },
    { xep: 223, version: '1.1.1', status: 'complete' },
    { xep: 402, version: '1.1.4', status: 'complete' },
  ],
  requires: ['caps', 'disco'],
  options: z.strictObject({
    max_items: z.number().int().min(1).max(10_000).default(256)
      .describe('the most items a node keeps; what pubsub#max_items "max" stands for'),
    max_nodes: z.number().int().min(1).default(1000).describe('nodes per account; creating more gets policy-violation'),
  }),
  setup(ctx) {
    const { host, sessions } = ctx;
    const svc = new PepService(host, { maxItems: ctx.options.max_items, maxNodes: ctx.options.max_nodes });
    let registry = services.get(ctx.server);
    if (!registry) {
      registry = new Map();
      services.set(ctx.server, registry);
    }
    registry.set(host.name, svc);
    ctx.onStop(() => {
      if (registry.get(host.name) === svc) registry.delete(host.name);
    });

    const to = { to: ['account' as const] };
    ctx.iq.get(PUBSUB, 'pubsub', (e, q) => pubsubGet(svc, e, q), to);
    ctx.iq.set(PUBSUB, 'pubsub', (e, q) => pubsubSet(svc, e, q), to);
    ctx.iq.get(PUBSUB_OWNER, 'pubsub', (e, q) => ownerGet(svc, e, q), to);
    ctx.iq.set(PUBSUB_OWNER, 'pubsub', (e, q) => ownerSet(svc, e, q), to);

    // Discovery on the account (XEP-0163 'Determining Support', XEP-0060 §5): the pep identity, and the nodes the asker may read.
    ctx.fold('disco/info', async (q, info) => {
      if (q.to.local === '') return info;
      if (q.node === undefined) {
        return info && { ...info, identities: [...info.identities, { category: 'pubsub', type: 'pep' }], features: [...info.features, ...FEATURES] };
      }
      const config = info ? undefined : await svc.config(q.to.bare, q.node);
      if (!config || (await svc.denied(q.to.bare, config, q.from))) return info;
      return { identities: [{ category: 'pubsub', type: 'leaf' }], features: [PUBSUB], forms: [] };
    });
    ctx.fold('disco/items', async (q, items) => {
      if (q.to.local === '') return items;
      const owner = q.to.bare;
      if (q.node === undefined) {
        const visible = [];
        for (const n of await svc.nodes(owner)) {
          if (!(await svc.denied(owner, n.config, q.from))) visible.push({ jid: owner.toString(), node: n.node });
        }
        return [...(items ?? []), ...visible];
      }
      const config = items ? undefined : await svc.config(owner, q.node);
      if (!config || (await svc.denied(owner, config, q.from))) return items;
      return (await svc.items(owner, q.node, {})).map((i) => ({ jid: owner.toString(), name: i.id }));
    });

    /** A resource became available with known caps: it gets the last items of its own and its contacts' nodes. */
    const lastItemsOnPresence = async (session: C2sSession): Promise<void> => {
      const jid = session.jid;
      const features = sessionFeatures(session);
      if (!jid || !features || !session.available) return;
      if (![...features].some((f) => f.endsWith('+notify'))) return;
      await svc.sendLastItems(jid.bare, session, 'presence');
      const { items } = await ctx.storage.roster.get(host.name, jid.local);
      for (const item of items) {
        if (item.subscription !== 'to' && item.subscription !== 'both') continue;
        const contact = Jid.tryParse(item.jid);
        const owners = contact && registry.get(contact.domain);
        if (contact && owners) await owners.sendLastItems(contact, session, 'presence');
      }
    };
    ctx.hook('user/available', ({ session }) => lastItemsOnPresence(session));
    ctx.hook('caps/resolved', ({ session }) => lastItemsOnPresence(session));
    ctx.hook('user/unavailable', ({ session }) => PepService.forget(session));

    // A contact approves the user's subscription: once the roster module has recorded it, the user's resources
    // get the contact's last items (pubsub#send_last_published_item on_sub).
    const subscribed = async (e: StanzaEvent): Promise<boolean> => {
      if (e.stanza.attrs.type !== 'subscribed') return false;
      const owner = e.from.bare;
      const user = e.to.bare;
      const owners = registry.get(owner.domain);
      if (!owners) return false;
      const pending = await ctx.storage.roster.getItem(host.name, user.local, owner.bareString);
      if (!pending?.ask) return false; // not asked for: the roster module ignores it (RFC 6121 §3.1.6)
      setImmediate(() => {
        for (const s of sessions.available(user)) {
          owners.sendLastItems(owner, s, 'subscription').catch((err: unknown) => ctx.log.warn({ err }, 'sending last items failed'));
        }
      });
      return false;
    };
    ctx.hook('presence/bare', subscribed, { priority: PRIORITY.FEATURE + 10 });
    ctx.hook('presence/full', subscribed, { priority: PRIORITY.FEATURE + 10 });
  },
});
