// Server statistics: uptime, sessions by transport, accounts and modules per host, memory.
import { serverStatus } from '../../../admin/operations.ts';
import { html } from '../html.ts';
import type { AdminContext, PageResult } from '../context.ts';
import { formatBytes, formatDuration } from '../layout.ts';
import { accountCount, sessionCounts } from './hosts.ts';

export async function statsPage(ctx: AdminContext): Promise<PageResult> {
  const status = serverStatus(ctx.server);
  const mem = process.memoryUsage();
  const byTransport = new Map<string, number>();
  for (const s of ctx.server.sessions.sessions()) byTransport.set(s.transport, (byTransport.get(s.transport) ?? 0) + 1);
  const perHost = sessionCounts(ctx.server);
  const hosts = [];
  for (const name of ctx.hosts) {
    const h = ctx.server.hosts.get(name);
    hosts.push({ name, accounts: await accountCount(ctx.server, name), sessions: perHost.get(name) ?? 0, modules: h ? ctx.server.modules.loadedOn(h) : [] });
  }
  const listeners = Object.entries(status.listeners).filter(([, a]) => a !== undefined);
  return {
    page: {
      title: 'Server statistics',
      nav: 'stats',
      body: html`
      <div class="cards">
        <div class="card"><div class="muted">Uptime</div><div class="value">${formatDuration(status.uptime)}</div></div>
        <div class="card"><div class="muted">Sessions</div><div class="value">${status.sessions}</div></div>
        <div class="card"><div class="muted">Accounts</div><div class="value">${hosts.reduce((n, h) => n + (h.accounts ?? 0), 0)}</div></div>
        <div class="card"><div class="muted">Memory (RSS)</div><div class="value">${formatBytes(mem.rss)}</div></div>
      </div>
      <h2>Process</h2>
      <div class="card"><dl class="facts">
        <dt>Process id</dt><dd>${status.pid}</dd>
        <dt>Node.js</dt><dd>${process.version}</dd>
        <dt>Started</dt><dd>${new Date(ctx.server.startedAt).toISOString()}</dd>
        <dt>Heap used / total</dt><dd>${formatBytes(mem.heapUsed)} / ${formatBytes(mem.heapTotal)}</dd>
        <dt>External memory</dt><dd>${formatBytes(mem.external)}</dd>
        <dt>Sessions by transport</dt><dd>${byTransport.size === 0 ? 'none' : [...byTransport].map(([t, n]) => `${t}: ${n}`).join(', ')}</dd>
        <dt>Listeners</dt><dd>${listeners.map(([name, a]) => `${name} ${a?.address}:${a?.port}`).join(', ')}</dd>
      </dl></div>
      <h2>Hosts</h2>
      <table>
        <thead><tr><th>Host</th><th class="num">Accounts</th><th class="num">Sessions</th><th>Modules</th></tr></thead>
        <tbody>${hosts.map((h) => html`<tr>
          <td>${h.name}</td><td class="num">${h.accounts ?? 'n/a'}</td><td class="num">${h.sessions}</td><td>${h.modules.join(', ')}</td>
        </tr>`)}</tbody>
      </table>`,
    },
  };
}
