// The frame of every web admin page: header with navigation and the logout form, the one-shot notice, content.
import { html, type Html, type HtmlValue } from './html.ts';
import type { AdminSession } from './sessions.ts';

export const NAV = [
  { key: 'hosts', href: '/admin/hosts', label: 'Hosts' },
  { key: 'sessions', href: '/admin/sessions', label: 'Sessions' },
  { key: 'outbox', href: '/admin/outbox', label: 'Outbox' },
  { key: 'stats', href: '/admin/stats', label: 'Statistics' },
] as const;

export type NavKey = (typeof NAV)[number]['key'];

export function layout(title: string, body: HtmlValue, session?: AdminSession, active?: NavKey, narrow = false): Html {
  const flash = session?.flash;
  if (session) session.flash = undefined;
  return html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${title} · Parley admin</title>
<link rel="stylesheet" href="/admin/style.css">
</head>
<body>
<header class="top">
  <a class="brand" href="/admin/">Parley admin</a>
  ${session ? html`<nav>${NAV.map((n) => html`<a href="${n.href}"${n.key === active ? html` class="active" aria-current="page"` : ''}>${n.label}</a>`)}</nav>
  <form class="logout" method="post" action="/admin/logout">
    <span class="who">${session.jid}</span>
    ${csrfField(session)}
    <button type="submit" class="link">Log out</button>
  </form>` : ''}
</header>
<main${narrow ? html` class="narrow"` : ''}>
<h1>${title}</h1>
${flash ? html`<p class="flash ${flash.ok ? 'ok' : 'error'}" role="status">${flash.text}</p>` : ''}
${body}
</main>
</body>
</html>`;
}

export function csrfField(session: AdminSession): Html {
  return html`<input type="hidden" name="csrf" value="${session.csrf}">`;
}

/** A button that POSTs one action with the CSRF token and any hidden fields. */
export function postButton(session: AdminSession, action: string, label: string, fields: Record<string, string> = {}, cls = ''): Html {
  return html`<form class="inline" method="post" action="${action}">${csrfField(session)}${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit"${cls ? html` class="${cls}"` : ''}>${label}</button></form>`;
}

/** Paging links for a list of `total` rows shown `size` at a time. */
export function pager(base: string, page: number, size: number, total: number, extra: Record<string, string> = {}): Html {
  const pages = Math.max(1, Math.ceil(total / size));
  if (pages <= 1) return html``;
  const link = (p: number): string => `${base}?${new URLSearchParams({ ...extra, page: String(p) }).toString()}`;
  return html`<nav class="pager" aria-label="pages">
    ${page > 1 ? html`<a href="${link(page - 1)}" rel="prev">‹ Previous</a>` : html`<span class="muted">‹ Previous</span>`}
    <span>Page ${page} of ${pages}</span>
    ${page < pages ? html`<a href="${link(page + 1)}" rel="next">Next ›</a>` : html`<span class="muted">Next ›</span>`}
  </nav>`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatDuration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}
