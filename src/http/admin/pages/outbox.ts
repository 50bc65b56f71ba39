// The background senders' outbox (webhooks, push): jobs by kind and state, the dead letters, and retrying them.
// The same operations as `parley outbox`.
import { knownOutboxKinds } from '../../../admin/operations.ts';
import { runOutboxCommand } from '../../../admin/admin-channel.ts';
import { wakeOutbox } from '../../../outbox/sender.ts';
import { OUTBOX_STATES, type OutboxState } from '../../../storage/types.ts';
import { HttpError } from '../../respond.ts';
import { html } from '../html.ts';
import { flash, type AdminContext, type PageResult } from '../context.ts';
import { formatTime, postButton } from '../layout.ts';

/** Jobs looked at to find kinds that neither the configuration nor a running sender names (a module since removed). */
const DISCOVERY_SCAN = 1000;

/** Kinds are <module>:<host>; a host admin sees the kinds of their hosts, a server-wide admin every kind. */
async function visibleKinds(ctx: AdminContext): Promise<string[]> {
  const kinds = new Set(knownOutboxKinds(ctx.server));
  for (const state of ['pending', 'dead'] as const) {
    for (const job of await ctx.server.storage.outbox.list({ state, limit: DISCOVERY_SCAN })) kinds.add(job.kind);
  }
  return [...kinds].filter((k) => ctx.allHosts || ctx.hosts.includes(k.slice(k.lastIndexOf(':') + 1)));
}

const isState = (s: string | null): s is OutboxState => (OUTBOX_STATES as readonly string[]).includes(s ?? '');

export async function outboxPage(ctx: AdminContext): Promise<PageResult> {
  const kinds = await visibleKinds(ctx);
  const counts = await runOutboxCommand(ctx.server.storage.outbox, { sub: 'counts' }, kinds);
  if (counts.sub !== 'counts') throw new Error('unexpected outbox answer');
  const shownKinds = counts.kinds.filter((k) => kinds.includes(k.kind));
  const stateParam = ctx.r.url.searchParams.get('state');
  const state: OutboxState = isState(stateParam) ? stateParam : 'dead';
  const kindParam = ctx.r.url.searchParams.get('kind') ?? '';
  const listKinds = kindParam !== '' ? [kindParam].filter((k) => kinds.includes(k)) : shownKinds.map((k) => k.kind);
  const jobs = [];
  for (const kind of listKinds) {
    const r = await runOutboxCommand(ctx.server.storage.outbox, { sub: 'list', kind, state }, kinds);
    if (r.sub === 'list') jobs.push(...r.jobs);
  }
  jobs.sort((a, b) => b.id - a.id);
  const totals = { pending: 0, delivered: 0, dead: 0 };
  for (const k of shownKinds) for (const s of OUTBOX_STATES) totals[s] += k[s];
  const link = (s: OutboxState, kind?: string): string => `/admin/outbox?${new URLSearchParams({ state: s, ...(kind ? { kind } : {}) }).toString()}`;
  return {
    page: {
      title: 'Outbox',
      nav: 'outbox',
      body: html`
      <p class="muted">Jobs of the background senders (webhooks, push notifications): pending ones are retried with back-off; dead ones ran out of attempts.</p>
      <table>
        <thead><tr><th>Kind</th><th class="num">Pending</th><th class="num">Delivered</th><th class="num">Dead</th><th></th></tr></thead>
        <tbody>${shownKinds.length === 0 ? html`<tr><td colspan="5" class="muted">No outbox jobs</td></tr>` : shownKinds.map((k) => html`<tr>
          <td>${k.kind}</td>
          <td class="num"><a href="${link('pending', k.kind)}">${k.pending}</a></td>
          <td class="num"><a href="${link('delivered', k.kind)}">${k.delivered}</a></td>
          <td class="num"><a href="${link('dead', k.kind)}">${k.dead}</a></td>
          <td>${k.dead > 0 ? postButton(ctx.session, '/admin/outbox/retry', 'Retry dead', { kind: k.kind }, 'secondary') : ''}</td>
        </tr>`)}
        ${shownKinds.length > 1 ? html`<tr><td><strong>Total</strong></td><td class="num">${totals.pending}</td><td class="num">${totals.delivered}</td><td class="num">${totals.dead}</td><td></td></tr>` : ''}</tbody>
      </table>
      <h2>${state === 'dead' ? 'Dead letters' : `${state[0]?.toUpperCase()}${state.slice(1)} jobs`}${kindParam ? ` of ${kindParam}` : ''}</h2>
      <p>${OUTBOX_STATES.map((s, i) => html`${i > 0 ? ' · ' : ''}${s === state ? html`<strong>${s}</strong>` : html`<a href="${link(s, kindParam || undefined)}">${s}</a>`}`)}</p>
      <table>
        <thead><tr><th class="num">Id</th><th>Kind</th><th class="num">Attempts</th><th>Next attempt</th><th>Last error</th><th>Created</th></tr></thead>
        <tbody>${jobs.length === 0 ? html`<tr><td colspan="6" class="muted">None</td></tr>` : jobs.slice(0, 100).map((j) => html`<tr>
          <td class="num">${j.id}</td><td>${j.kind}</td><td class="num">${j.attempts}</td>
          <td>${j.state === 'pending' ? formatTime(j.nextAttemptAt) : ''}</td><td>${j.lastError ?? ''}</td><td>${formatTime(j.createdAt)}</td>
        </tr>`)}</tbody>
      </table>`,
    },
  };
}

export async function retryOutbox(ctx: AdminContext): Promise<PageResult> {
  const kind = ctx.form.get('kind') ?? '';
  const kinds = await visibleKinds(ctx);
  if (!kinds.includes(kind)) throw new HttpError(400, 'Unknown outbox kind');
  const r = await runOutboxCommand(ctx.server.storage.outbox, { sub: 'retry', kind }, kinds, wakeOutbox);
  const requeued = r.sub === 'retry' ? r.requeued : 0;
  ctx.server.log.info({ admin: ctx.session.jid, kind, requeued }, 'web admin: outbox retry');
  flash(ctx, true, `${requeued} job${requeued === 1 ? '' : 's'} of ${kind} queued again`);
  return { redirect: '/admin/outbox' };
}
