// Web admin login: an admin JID and its password, checked through the host's authentication backends, with the
// same per-IP brute-force protection as client logins.
import type { ParleyServer } from '../../server.ts';
import { Jid } from '../../xmpp/jid.ts';
import { html, type Html } from './html.ts';
import { layout } from './layout.ts';

export type LoginOutcome =
  | { ok: true; jid: string }
  | { ok: false; status: 401 | 403 | 429; message: string };

const INVALID = 'Invalid JID or password';

/** Hosts on which the 'admin' access rule allows `jid` from `ip`, lower case, in configuration order. */
export function adminHostsOf(server: ParleyServer, jid: Jid, ip: string): string[] {
  return [...server.hosts.keys()].filter((host) => server.access.allowed('admin', { jid, ip, host }));
}

export async function checkLogin(server: ParleyServer, jidText: string, password: string, ip: string): Promise<LoginOutcome> {
  const parsed = Jid.tryParse(jidText.trim());
  const host = parsed ? server.hosts.get(parsed.domain) : undefined;
  // Unknown hosts and malformed JIDs get the same answer as a wrong password.
  if (!parsed || !host || parsed.local === '' || password === '') return { ok: false, status: 401, message: INVALID };
  const failures = host.auth.failures;
  if (failures.isBanned(ip)) return { ok: false, status: 429, message: 'Too many failed logins from your address; try again later' };
  let user: string | false;
  try {
    user = await host.auth.checkPassword(parsed.local, password);
  } catch (err) {
    server.log.error({ err }, 'web admin: authentication backend failed');
    return { ok: false, status: 401, message: 'The authentication backend failed; try again later' };
  }
  if (user === false) {
    if (failures.recordFailure(ip, parsed.bareString)) server.log.warn({ ip }, 'address refused after repeated failed logins');
    server.log.info({ ip, jid: parsed.bareString }, 'web admin: login failed');
    return { ok: false, status: 401, message: INVALID };
  }
  const jid = Jid.of(user, host.name);
  if (adminHostsOf(server, jid, ip).length === 0) {
    server.log.warn({ ip, jid: jid.bareString }, 'web admin: login refused, not an admin');
    return { ok: false, status: 403, message: `${jid.bareString} has no admin rights` };
  }
  server.log.info({ ip, jid: jid.bareString }, 'web admin: logged in');
  return { ok: true, jid: jid.bareString };
}

export function loginPage(csrf: string, jid = '', error?: string): Html {
  return layout('Log in', html`<div class="card login">
    ${error ? html`<p class="flash error" role="alert">${error}</p>` : ''}
    <form method="post" action="/admin/login">
      <input type="hidden" name="csrf" value="${csrf}">
      <label>Admin JID <input type="text" name="jid" value="${jid}" required autocomplete="username" autofocus placeholder="admin@example.com"></label>
      <label>Password <input type="password" name="password" required autocomplete="current-password"></label>
      <button type="submit">Log in</button>
    </form>
  </div>`, undefined, undefined, true);
}
