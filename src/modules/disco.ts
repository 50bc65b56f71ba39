// XEP-0030: Service Discovery <https://xmpp.org/extensions/xep-0030.html> 2.5rc3 — the server's and each
// account's identities and features, collected from the loaded modules.
import { defineModule } from '../core/module.ts';
import { StanzaError } from '../core/errors.ts';
import { xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';

export default defineModule({
  id: 'disco',
  xeps: [{ xep: 30, version: '2.5rc3', status: 'partial' }],
  setup(ctx) {
    const host = ctx.host;
    ctx.disco.feature(NS.DISCO_INFO, { account: true });
    ctx.disco.feature(NS.DISCO_ITEMS, { account: true });

    ctx.iq.get(NS.DISCO_INFO, 'query', (_e, q) => {
      if (q.attrs.node !== undefined) throw StanzaError.itemNotFound();
      return xml('query', { xmlns: NS.DISCO_INFO },
        host.identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name })),
        [...host.features].sort().map((f) => xml('feature', { var: f })));
    }, { to: ['host'] });

    ctx.iq.get(NS.DISCO_ITEMS, 'query', (_e, q) => {
      if (q.attrs.node !== undefined) throw StanzaError.itemNotFound();
      return xml('query', { xmlns: NS.DISCO_ITEMS });
    }, { to: ['host'] });

    // An account's bare JID is answered by the server (RFC 6121 §8.5.2.1.3); only the owner and contacts with a
    // subscription may learn of it, which later modules refine.
    ctx.iq.get(NS.DISCO_INFO, 'query', (e, q) => {
      if (q.attrs.node !== undefined) throw StanzaError.itemNotFound();
      return xml('query', { xmlns: NS.DISCO_INFO },
        xml('identity', { category: 'account', type: 'registered' }),
        [...host.accountFeatures].sort().map((f) => xml('feature', { var: f })));
    }, { to: ['account'] });

    ctx.iq.get(NS.DISCO_ITEMS, 'query', () => xml('query', { xmlns: NS.DISCO_ITEMS }), { to: ['account'] });
  },
});
