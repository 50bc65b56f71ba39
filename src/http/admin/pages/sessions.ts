// Online sessions: every client connection on the admin's hosts, with a kick button per bound session.
import { kickSessions } from '../../../admin/operations.ts';
import { Jid } from '../../../xmpp/jid.ts';
import { HttpError } from '../../respond.ts';
import { html } from '../html.ts';
import { flash, seg, type AdminContext, type PageResult } from '../context.ts';
import { formatTime, postButton } from '../layout.ts';

export function sessionsPage(ctx: AdminContext): PageResult {
  const only = ctx.r.url.searchParams.get('host')?.toLowerCase();
  const rows = [];
  for (const s of ctx.server.sessions.sessions()) {
    const host = s.jid?.domain ?? s.host?.name.toLowerCase();
    // Connections not yet bound to a host belong to no one admin but a server-wide one.
    if (host === undefined ? !ctx.allHosts : !ctx.hosts.includes(host)) continue;
    if (only && host !== only) continue;
    rows.push({ s, sort: `${s.jid?.bareString ?? '~'}/${s.jid?.resource ?? ''}` });
  }
  rows.sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0));
  const body = html`
    ${only ? html`<p>Host ${only} · <a href="/admin/sessions">all hosts</a></p>` : ''}
    <p class="muted">${rows.length} session${rows.length === 1 ? '' : 's'}</p>
    <table>
      <thead><tr><th>JID</th><th>Resource</th><th>Transport</th><th>IP</th><th>Since</th><th></th></tr></thead>
      <tbody>${rows.length === 0 ? html`<tr><td colspan="6" class="muted">No sessions</td></tr>` : rows.map(({ s }) => html`<tr>
        <td>${s.jid ? html`<a href="/admin/hosts/${seg(s.jid.domain)}/users/${seg(s.jid.local)}">${s.jid.bareString}</a>` : html`<span class="muted">${s.user ?? 'not bound'}</span>`}</td>
        <td>${s.jid?.resource ?? ''}</td>
        <td>${s.transport}${s.secure ? ' (TLS)' : ''}${s.detached ? ' · detached' : ''}</td>
        <td>${s.remoteAddress}</td>
        <td>${formatTime(s.startedAt)}</td>
        <td>${s.jid ? postButton(ctx.session, '/admin/sessions/kick', 'Kick', { jid: s.jid.toString() }, 'danger') : ''}</td>
      </tr>`)}</tbody>
    </table>`;
  return { page: { title: 'Online sessions', nav: 'sessions', body } };
}

export function kickSession(ctx: AdminContext): PageResult {
  const jid = Jid.tryParse(ctx.form.get('jid') ?? '');
  if (!jid || jid.local === '') throw new HttpError(400, 'A JID to kick is needed');
  if (!ctx.hosts.includes(jid.domain)) throw new HttpError(403, 'Not a host you administer');
  const { kicked } = kickSessions(ctx.server, jid.toString());
  ctx.server.log.info({ admin: ctx.session.jid, jid: jid.toString(), kicked }, 'web admin: kick');
  flash(ctx, kicked > 0, kicked > 0 ? `Disconnected ${jid.toString()}` : `${jid.toString()} was not connected`);
  return { redirect: '/admin/sessions' };
}
