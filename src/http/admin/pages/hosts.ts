// Virtual hosts: each one the admin administers, with its account and session counts.
import type { ParleyServer } from '../../../server.ts';
import { html } from '../html.ts';
import { seg, type AdminContext, type PageResult } from '../context.ts';

/** Accounts of a host, or undefined when its backends cannot list users (an external database). */
export async function accountCount(server: ParleyServer, host: string): Promise<number | undefined> {
  try {
    return (await server.accounts.list(host)).length;
  } catch {
    return undefined;
  }
}

/** Bound sessions per host. */
export function sessionCounts(server: ParleyServer): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of server.sessions.sessions()) {
    const d = s.jid?.domain;
    if (d !== undefined) out.set(d, (out.get(d) ?? 0) + 1);
  }
  return out;
}

export async function hostsPage(ctx: AdminContext): Promise<PageResult> {
  const sessions = sessionCounts(ctx.server);
  const rows = [];
  for (const host of ctx.hosts) {
    const accounts = await accountCount(ctx.server, host);
    const h = ctx.server.hosts.get(host);
    const modules = h ? ctx.server.modules.loadedOn(h).length : 0;
    rows.push(html`<tr>
      <td><a href="/admin/hosts/${seg(host)}/users">${host}</a></td>
      <td class="num">${accounts ?? html`<span class="muted">n/a</span>`}</td>
      <td class="num">${sessions.get(host) ?? 0}</td>
      <td class="num">${modules}</td>
      <td><a href="/admin/hosts/${seg(host)}/users">Users</a> · <a href="/admin/hosts/${seg(host)}/offline">Offline queues</a> · <a href="/admin/sessions?host=${seg(host)}">Sessions</a></td>
    </tr>`);
  }
  return {
    page: {
      title: 'Virtual hosts',
      nav: 'hosts',
      body: html`<table>
        <thead><tr><th>Host</th><th class="num">Accounts</th><th class="num">Online sessions</th><th class="num">Modules</th><th></th></tr></thead>
        <tbody>${rows}</tbody>
      </table>`,
    },
  };
}
