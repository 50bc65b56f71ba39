// A user's roster as stored (RFC 6121 §2): contacts, subscription states, groups, pending requests.
import { html } from '../html.ts';
import { adminHost, adminUser, seg, type AdminContext, type PageResult } from '../context.ts';

export async function rosterPage(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const user = adminUser(ctx);
  const { version, items } = await ctx.server.storage.roster.get(host, user);
  const pending = await ctx.server.storage.roster.pendingRequests(host, user);
  const base = `/admin/hosts/${seg(host)}/users/${seg(user)}`;
  const sorted = [...items].sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
  return {
    page: {
      title: `Roster of ${user}@${host}`,
      nav: 'hosts',
      body: html`
      <p><a href="${base}">‹ ${user}@${host}</a></p>
      <p class="muted">${items.length} contact${items.length === 1 ? '' : 's'} · roster version ${version}</p>
      <table>
        <thead><tr><th>Contact</th><th>Name</th><th>Subscription</th><th>Pending out</th><th>Pre-approved</th><th>Groups</th></tr></thead>
        <tbody>${sorted.length === 0 ? html`<tr><td colspan="6" class="muted">No contacts</td></tr>` : sorted.map((i) => html`<tr>
          <td>${i.jid}</td><td>${i.name ?? ''}</td><td>${i.subscription}</td><td>${i.ask ? 'yes' : ''}</td><td>${i.approved ? 'yes' : ''}</td><td>${i.groups.join(', ')}</td>
        </tr>`)}</tbody>
      </table>
      <h2>Pending subscription requests</h2>
      ${pending.length === 0 ? html`<p class="muted">None</p>` : html`<ul>${pending.map((p) => html`<li>${p.from}</li>`)}</ul>`}`,
    },
  };
}
