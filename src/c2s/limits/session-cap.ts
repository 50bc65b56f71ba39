// Resources one account may have bound at once (limits.max_sessions_per_account). At the cap a new bind is refused
// as RFC 6120 §7.6.2.1 says (resource-constraint, with XEP-0205's <resource-limit-exceeded/> to say which
// resource ran out), or the account's oldest session is closed with conflict (RFC 6120 §4.9.3.3) to make room.
import { StanzaError, StreamError } from '../../core/errors.ts';
import type { ServerServices } from '../../core/host.ts';
import { xml } from '../../xml/element.ts';
import type { Jid } from '../../xmpp/jid.ts';

/** XEP-0205 §3 application-specific conditions (registered in the XMPP Registrar's errors registry). */
export const NS_ERRORS = 'urn:xmpp:errors';

/**
 * Makes room for `jid` to be bound, or returns the error to refuse it with. A session bound to the same full
 * JID does not count: binding replaces it (RFC 6120 §7.7.2.2).
 */
export function admitResource(server: ServerServices, jid: Jid): StanzaError | undefined {
  const { max_sessions_per_account: max, max_sessions_policy: policy } = server.config.limits;
  if (max === 0) return undefined;
  const others = server.sessions.resources(jid.bare).filter((s) => s.jid?.resource !== jid.resource);
  if (others.length < max) return undefined;
  if (policy === 'refuse') {
    return new StanzaError('resource-constraint', `This account may have at most ${max} sessions at once`,
      { type: 'wait', app: xml('resource-limit-exceeded', { xmlns: NS_ERRORS }) });
  }
  others.sort((a, b) => a.startedAt - b.startedAt);
  for (const old of others.slice(0, others.length - max + 1)) {
    server.log.info({ jid: old.jid?.toString(), by: jid.toString() }, 'oldest session closed: too many sessions');
    old.close(new StreamError('conflict', 'Closed to make room for a newer session of this account'));
  }
  return undefined;
}
