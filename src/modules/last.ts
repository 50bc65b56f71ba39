// XEP-0012: Last Activity <https://xmpp.org/extensions/xep-0012.html> 2.0 — the server's uptime, and how long
// ago an offline account was last available, for those allowed to see its presence.
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import { xml } from '../xml/element.ts';
import type { Jid } from '../xmpp/jid.ts';

export const NS_LAST = 'jabber:iq:last';
const KV_NS = 'jabber:iq:last';
const KV_KEY = 'logout';

/** The status of the unavailable presence a resource sent, kept until the logout is recorded. */
const LAST_STATUS = new SessionKey<string>('last.status');
/** Set once this session's going offline has been recorded, so its closing does not record it again. */
const RECORDED = new SessionKey<true>('last.recorded');

type Logout = { at: number; status?: string };

export default defineModule({
  id: 'last',
  xeps: [{ xep: 12, version: '2.0', status: 'complete' }],
  setup(ctx) {
    const { host, storage, sessions } = ctx;
    const startedAt = ctx.server.startedAt;
    ctx.disco.feature(NS_LAST, { account: true });

    const seconds = (since: number): string => String(Math.max(0, Math.floor((Date.now() - since) / 1000)));

    // §5: to the server, its uptime, without character data.
    ctx.iq.get(NS_LAST, 'query', () => xml('query', { xmlns: NS_LAST, seconds: seconds(startedAt) }), { to: ['host'] });

    // §3: to an account's bare JID, answered by the server on the account's behalf.
    ctx.iq.get(NS_LAST, 'query', async (e) => {
      const user = e.to.bare;
      if (!(await maySeePresence(user, e.from))) {
        // §3 and §8: never to those not authorized to see the user's presence.
        throw StanzaError.forbidden('You are not subscribed to this user\'s presence');
      }
      if (sessions.available(user).length > 0) return xml('query', { xmlns: NS_LAST, seconds: '0' });
      const raw = await storage.kv.get(host.name, user.local, KV_NS, KV_KEY);
      const logout = raw === undefined ? undefined : parseLogout(raw);
      if (!logout) throw StanzaError.itemNotFound('No last activity recorded');
      return xml('query', { xmlns: NS_LAST, seconds: seconds(logout.at) }, logout.status || undefined);
    }, { to: ['account'] });

    /** The user, or a contact with a subscription to the user's presence ('from' or 'both' on the user's roster). */
    async function maySeePresence(user: Jid, requester: Jid): Promise<boolean> {
      if (requester.bare.equals(user)) return true;
      const item = await storage.roster.getItem(host.name, user.local, requester.bareString);
      return item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
    }

    const record = async (session: C2sSession): Promise<void> => {
      const jid = session.jid;
      if (!jid) return;
      session.set(RECORDED, true);
      const status = session.get(LAST_STATUS);
      const logout: Logout = status ? { at: Date.now(), status } : { at: Date.now() };
      await storage.kv.set(host.name, jid.local, KV_NS, KV_KEY, JSON.stringify(logout));
    };

    // Remember the status a resource leaves with (§3: "the status message of the last unavailable presence").
    ctx.hook('pre-presence', (e) => {
      if (e.stanza.attrs.type !== 'unavailable' || e.stanza.attrs.to !== undefined || !e.origin) return false;
      e.origin.set(LAST_STATUS, e.stanza.getChildText('status') ?? '');
      return false;
    }, { priority: PRIORITY.FEATURE });

    // The last available resource went away: that is the user's "logout" as contacts see it.
    ctx.hook('user/unavailable', async ({ session }) => {
      const jid = session.jid;
      if (!jid || sessions.available(jid.bare).length > 0) return;
      await record(session);
    });

    // A session that ends without having been recorded (never available, or not the last available one but now
    // the last connected one) still marks the account's last activity once nothing of it is left.
    ctx.hook('session/closed', async ({ session }) => {
      const jid = session.jid;
      if (!jid || session.get(RECORDED) || sessions.resources(jid.bare).length > 0) return;
      await record(session);
    }, { priority: PRIORITY.DEFAULT - 10 });

    ctx.hook('user/available', ({ session }) => {
      session.set(RECORDED, undefined);
      session.set(LAST_STATUS, undefined);
    });
  },
});

function parseLogout(raw: string): Logout | undefined {
  try {
    const v = JSON.parse(raw) as Partial<Logout>;
    if (typeof v.at !== 'number') return undefined;
    return typeof v.status === 'string' ? { at: v.at, status: v.status } : { at: v.at };
  } catch {
    return undefined;
  }
}
