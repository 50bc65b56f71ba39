// Offline queues (XEP-0160): how many messages wait for each user of a host, and the messages of one user.
import { html } from '../html.ts';
import { adminHost, adminUser, seg, type AdminContext, type PageResult } from '../context.ts';
import { formatTime, pager } from '../layout.ts';

/** Accounts whose queues one page load looks at: storage has no "queues by size" query, so it asks per user. */
const SCAN_LIMIT = 20_000;
const MESSAGES_SHOWN = 100;

export async function offlineCountsPage(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const page = Math.max(1, Number.parseInt(ctx.r.url.searchParams.get('page') ?? '1', 10) || 1);
  const size = ctx.options.page_size;
  let users: string[];
  try {
    users = await ctx.server.accounts.list(host);
  } catch (err) {
    return { page: { title: `Offline queues of ${host}`, nav: 'hosts', body: html`<p class="flash error">Cannot list users: ${(err as Error).message}</p>` } };
  }
  const scanned = users.slice(0, SCAN_LIMIT);
  const queues: Array<{ user: string; count: number }> = [];
  let total = 0;
  for (const user of scanned) {
    const count = await ctx.server.storage.offline.count(host, user);
    if (count > 0) {
      queues.push({ user, count });
      total += count;
    }
  }
  queues.sort((a, b) => b.count - a.count || (a.user < b.user ? -1 : 1));
  const shown = queues.slice((page - 1) * size, page * size);
  const base = `/admin/hosts/${seg(host)}`;
  return {
    page: {
      title: `Offline queues of ${host}`,
      nav: 'hosts',
      body: html`
      <p class="muted">${total} message${total === 1 ? '' : 's'} waiting for ${queues.length} user${queues.length === 1 ? '' : 's'}${users.length > SCAN_LIMIT ? ` (the first ${SCAN_LIMIT} of ${users.length} accounts looked at)` : ''}</p>
      <table>
        <thead><tr><th>User</th><th class="num">Messages</th></tr></thead>
        <tbody>${shown.length === 0 ? html`<tr><td colspan="2" class="muted">No offline messages</td></tr>` : shown.map((q) => html`<tr>
          <td><a href="${base}/users/${seg(q.user)}/offline">${q.user}@${host}</a></td><td class="num">${q.count}</td>
        </tr>`)}</tbody>
      </table>
      ${pager(`${base}/offline`, page, size, queues.length)}`,
    },
  };
}

export async function offlineMessagesPage(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const user = adminUser(ctx);
  const count = await ctx.server.storage.offline.count(host, user);
  const messages = await ctx.server.storage.offline.list(host, user, MESSAGES_SHOWN);
  return {
    page: {
      title: `Offline messages of ${user}@${host}`,
      nav: 'hosts',
      body: html`
      <p><a href="/admin/hosts/${seg(host)}/users/${seg(user)}">‹ ${user}@${host}</a> · <a href="/admin/hosts/${seg(host)}/offline">all queues of ${host}</a></p>
      <p class="muted">${count} message${count === 1 ? '' : 's'}${count > messages.length ? `, the oldest ${messages.length} shown` : ''}</p>
      <table>
        <thead><tr><th>Stored</th><th>From</th><th>Stanza</th></tr></thead>
        <tbody>${messages.length === 0 ? html`<tr><td colspan="3" class="muted">No offline messages</td></tr>` : messages.map((m) => html`<tr>
          <td>${formatTime(m.storedAt)}</td><td>${m.from}</td><td><pre class="xml">${m.stanza}</pre></td>
        </tr>`)}</tbody>
      </table>`,
    },
  };
}
