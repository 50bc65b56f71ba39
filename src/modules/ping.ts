// XEP-0199: XMPP Ping <https://xmpp.org/extensions/xep-0199.html> 2.0.1
import { defineModule } from '../core/module.ts';
import { NS } from '../xml/ns.ts';

export default defineModule({
  id: 'ping',
  xeps: [{ xep: 199, version: '2.0.1', status: 'complete' }],
  setup(ctx) {
    ctx.disco.feature(NS.PING);
    ctx.iq.get(NS.PING, 'ping', () => undefined, { to: ['host'] });
  },
});
