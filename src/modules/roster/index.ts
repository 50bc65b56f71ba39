// RFC 6121: XMPP Instant Messaging and Presence <https://www.rfc-editor.org/rfc/rfc6121> — roster management,
// subscriptions and presence, with roster versioning (XEP-0237) and subscription pre-approval.
import { z } from 'zod';
import { defineModule } from '../../core/module.ts';
import { PRIORITY } from '../../core/hooks.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import { xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { parseElement } from '../../xml/parse.ts';
import { isSubscriptionType } from '../../xmpp/stanza.ts';
import { RosterService, hasFrom, hasTo } from './roster-service.ts';
import { Jid } from '../../xmpp/jid.ts';
import { rosterGet, rosterSet } from './roster-iq.ts';
import { PresenceBroadcaster } from './presence.ts';
import { Subscriptions } from './subscriptions.ts';
import { registerAdminHooks } from './admin.ts';

export default defineModule({
  id: 'roster',
  xeps: [{ xep: 237, version: '1.3', status: 'complete' }],
  options: z.strictObject({
    versioning: z.boolean().default(true).describe('roster versioning (XEP-0237)'),
  }),
  setup(ctx) {
    const { host, router } = ctx;
    const roster = new RosterService(host, ctx.options.versioning);
    const presence = new PresenceBroadcaster(host, roster);
    const subscriptions = new Subscriptions(host, roster, presence);
    registerAdminHooks(ctx, roster, presence);

    ctx.iq.get(NS.ROSTER, 'query', (e, q) => rosterGet(roster, e, q, ctx.options.versioning), { to: ['account'] });
    ctx.iq.set(NS.ROSTER, 'query', (e, q) => rosterSet(roster, router, e, q), { to: ['account'] });
    ctx.fold('c2s/features', (_e, features) => [
      ...features,
      ...(ctx.options.versioning ? [xml('ver', { xmlns: NS.ROSTER_VER })] : []),
      xml('sub', { xmlns: NS.PRE_APPROVAL }),
    ]);

    // What a local user sends.
    ctx.hook('pre-presence', async (e) => {
      const type = e.stanza.attrs.type;
      if (isSubscriptionType(type)) {
        await subscriptions.outbound(e, type);
        return true;
      }
      if (e.stanza.attrs.to === undefined) {
        const session = e.origin;
        if (!session) return true;
        const result = await presence.broadcast(session, e.stanza);
        if (result === 'initial') {
          const jid = session.jid;
          if (jid) await subscriptions.redeliver(jid.bare, (el) => session.send(el), (s) => parseElement(s));
          await host.bus.run('user/available', { host, session });
        } else if (result === 'unavailable') {
          await host.bus.run('user/unavailable', { host, session });
        }
        return true;
      }
      if (type === undefined || type === 'unavailable') presence.directed(e);
      return false;
    });

    // What arrives for a local user.
    const inbound = async (e: StanzaEvent): Promise<boolean> => {
      const type = e.stanza.attrs.type;
      if (isSubscriptionType(type)) {
        await subscriptions.inbound({ ...e, to: e.to.bare }, type);
        return true;
      }
      if (type === 'probe') {
        await presence.probe({ ...e, to: e.to.bare });
        return true;
      }
      return false;
    };
    ctx.hook('presence/bare', inbound, { priority: PRIORITY.FEATURE });
    ctx.hook('presence/full', inbound, { priority: PRIORITY.FEATURE });

    // XEP-0077 §3.2 and RFC 6121: a removed account cancels its subscriptions both ways.
    ctx.hook('account/removing', async ({ user }) => {
      const { items } = await roster.get(user);
      for (const item of items) {
        const contact = Jid.parse(item.jid);
        if (hasTo(item.subscription) || item.ask) {
          await router.route(xml('presence', { type: 'unsubscribe', from: user.toString(), to: contact.toString() }), user, contact);
        }
        if (hasFrom(item.subscription)) {
          await router.route(xml('presence', { type: 'unsubscribed', from: user.toString(), to: contact.toString() }), user, contact);
        }
      }
    });

    ctx.hook('session/closed', async ({ session }) => {
      if (!session.available) return;
      await presence.goUnavailable(session);
      await host.bus.run('user/unavailable', { host, session });
    });
  },
});
