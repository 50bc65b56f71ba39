// XEP-0478: Stream Limits Advertisement <https://xmpp.org/extensions/xep-0478.html> 0.2.0 — the stanza size the
// server accepts (and, once bound, how long a silent stream is left alone) in the stream features; and a per-session
// rate of presence subscription changes (limits.subscription_rate), refused with policy-violation beyond it.
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import { SessionKey } from '../core/session.ts';
import { TokenBucket } from '../c2s/limits/token-bucket.ts';
import { xml, type Element } from '../xml/element.ts';
import { isSubscriptionType } from '../xmpp/stanza.ts';
import keepalive from './keepalive.ts';

export const NS_STREAM_LIMITS = 'urn:xmpp:stream-limits:0';

const SUBSCRIPTIONS = new SessionKey<TokenBucket>('limits.subscriptions');

function limitsElement(maxBytes: number, idleSeconds: number | undefined): Element {
  return xml('limits', { xmlns: NS_STREAM_LIMITS },
    xml('max-bytes', null, String(maxBytes)),
    idleSeconds !== undefined ? xml('idle-seconds', null, String(idleSeconds)) : undefined);
}

export default defineModule({
  id: 'limits',
  xeps: [{ xep: 478, version: '0.2.0', status: 'complete' }],
  setup(ctx) {
    const { config } = ctx.server;
    const l = config.limits;

    // <idle-seconds/> is what the keepalive module waits before it checks a bound stream (XEP-0199 ping); without
    // it nothing acts on silence, so nothing is promised. Before authentication only the size is said: the
    // negotiation timeout runs whatever the traffic.
    const global = config.modules.keepalive;
    const own = config.host_config[ctx.host.name]?.modules?.keepalive;
    const setting = own !== undefined ? own : global;
    let idle: number | undefined;
    if (setting !== false) {
      const opts = keepalive.options?.safeParse({ ...(global || {}), ...(own || {}) });
      if (opts?.success) idle = Math.ceil((opts.data as { idle_timeout: number }).idle_timeout);
    }
    // Built once and shared: features are serialized, never changed.
    const preauth = limitsElement(l.stanza_size_preauth, undefined);
    const bound = limitsElement(l.stanza_size, idle);
    ctx.fold('c2s/features-preauth', (_e, features) => [...features, preauth]);
    ctx.fold('c2s/features', (_e, features) => [...features, bound]);

    const rate = l.subscription_rate;
    if (rate.per_minute > 0) {
      ctx.hook('pre-presence', ({ stanza, origin }) => {
        if (!origin || !isSubscriptionType(stanza.attrs.type)) return false;
        let bucket = origin.get(SUBSCRIPTIONS);
        if (!bucket) {
          bucket = new TokenBucket(rate.per_minute, rate.burst, Date.now(), 60_000);
          origin.set(SUBSCRIPTIONS, bucket);
        }
        if (bucket.tryTake(Date.now())) return false;
        throw new StanzaError('policy-violation', `At most ${rate.per_minute} subscription changes a minute: try again later`, { type: 'wait' });
      }, { priority: PRIORITY.FILTER });
    }
  },
});
