// Users of a host: the paged list with a filter, creating an account, and one account's page (sessions,
// password, removal). Every change goes through the host's authentication backends, as the CLI's do.
import { AccountError } from '../../../accounts.ts';
import { removeUser, kickSessions } from '../../../admin/operations.ts';
import { Jid } from '../../../xmpp/jid.ts';
import { HttpError } from '../../respond.ts';
import { html } from '../html.ts';
import { adminHost, adminUser, flash, seg, type AdminContext, type PageResult } from '../context.ts';
import { csrfField, formatTime, pager, postButton } from '../layout.ts';

/** An account error is the operator's to read; anything else is logged and shown as a failure. */
function failure(ctx: AdminContext, err: unknown, what: string): string {
  if (err instanceof AccountError) return `${what}: ${err.message}`;
  ctx.server.log.error({ err }, `web admin: ${what}`);
  return `${what}: internal error (see the server log)`;
}

function usersUrl(host: string): string {
  return `/admin/hosts/${seg(host)}/users`;
}

function userUrl(host: string, user: string): string {
  return `${usersUrl(host)}/${seg(user)}`;
}

export async function usersPage(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const q = (ctx.r.url.searchParams.get('q') ?? '').trim().toLowerCase();
  const page = Math.max(1, Number.parseInt(ctx.r.url.searchParams.get('page') ?? '1', 10) || 1);
  const size = ctx.options.page_size;
  let users: string[] | undefined;
  let listError: string | undefined;
  try {
    users = await ctx.server.accounts.list(host);
  } catch (err) {
    listError = failure(ctx, err, 'Cannot list users');
  }
  const matching = (users ?? []).filter((u) => q === '' || u.includes(q));
  const shown = matching.slice((page - 1) * size, page * size);
  const rows = shown.map((u) => {
    const jid = Jid.tryParse(`${u}@${host}`);
    const online = jid ? ctx.server.sessions.resources(jid).length : 0;
    return html`<tr>
      <td><a href="${userUrl(host, u)}">${u}</a></td>
      <td>${u}@${host}</td>
      <td class="num">${online > 0 ? online : html`<span class="muted">0</span>`}</td>
      <td><a href="${userUrl(host, u)}/roster">Roster</a> · <a href="${userUrl(host, u)}/offline">Offline</a></td>
    </tr>`;
  });
  return {
    page: {
      title: `Users of ${host}`,
      nav: 'hosts',
      body: html`
      <div class="card">
        <h2>Create a user</h2>
        <form class="stack" method="post" action="${usersUrl(host)}">
          ${csrfField(ctx.session)}
          <label>User name <input type="text" name="username" required autocomplete="off"></label>
          <label>Password <input type="password" name="password" required autocomplete="new-password"></label>
          <button type="submit">Create</button>
        </form>
      </div>
      <form class="stack" method="get" action="${usersUrl(host)}">
        <label>Filter <input type="search" name="q" value="${q}"></label>
        <button type="submit" class="secondary">Search</button>
      </form>
      ${listError ? html`<p class="flash error">${listError}</p>` : html`
      <p class="muted">${matching.length} user${matching.length === 1 ? '' : 's'}${q ? ` matching "${q}"` : ''}</p>
      <table>
        <thead><tr><th>User</th><th>JID</th><th class="num">Online</th><th></th></tr></thead>
        <tbody>${rows.length > 0 ? rows : html`<tr><td colspan="4" class="muted">No users</td></tr>`}</tbody>
      </table>
      ${pager(usersUrl(host), page, size, matching.length, q ? { q } : {})}`}`,
    },
  };
}

export async function createUser(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const username = ctx.form.get('username') ?? '';
  const password = ctx.form.get('password') ?? '';
  if (username === '' || password === '') {
    flash(ctx, false, 'A user name and a password are both needed');
    return { redirect: usersUrl(host) };
  }
  try {
    const jid = await ctx.server.accounts.register(username, host, password);
    ctx.server.log.info({ admin: ctx.session.jid, jid }, 'web admin: account created');
    flash(ctx, true, `Created ${jid}`);
  } catch (err) {
    flash(ctx, false, failure(ctx, err, `Cannot create ${username}`));
  }
  return { redirect: usersUrl(host) };
}

export async function userPage(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const user = adminUser(ctx);
  const auth = ctx.server.accounts.hostAuth(host);
  if (!(await auth.userExists(user))) throw new HttpError(404, 'No such user');
  const jid = Jid.of(user, host);
  const sessions = ctx.server.sessions.resources(jid);
  const offline = await ctx.server.storage.offline.count(host, user);
  const base = userUrl(host, user);
  return {
    page: {
      title: jid.toString(),
      nav: 'hosts',
      body: html`
      <p><a href="${usersUrl(host)}">‹ Users of ${host}</a></p>
      <div class="card"><dl class="facts">
        <dt>JID</dt><dd>${jid.toString()}</dd>
        <dt>Online resources</dt><dd>${sessions.length}</dd>
        <dt>Offline messages</dt><dd><a href="${base}/offline">${offline}</a></dd>
        <dt>Roster</dt><dd><a href="${base}/roster">View roster</a></dd>
      </dl></div>
      <h2>Sessions</h2>
      ${sessions.length === 0 ? html`<p class="muted">Not connected</p>` : html`<table>
        <thead><tr><th>Resource</th><th>Transport</th><th>IP</th><th>Since</th><th></th></tr></thead>
        <tbody>${sessions.map((s) => html`<tr>
          <td>${s.jid?.resource}</td><td>${s.transport}${s.secure ? ' (TLS)' : ''}</td><td>${s.remoteAddress}</td><td>${formatTime(s.startedAt)}</td>
          <td>${postButton(ctx.session, `${base}/kick`, 'Kick', { jid: s.jid?.toString() ?? '' }, 'danger')}</td>
        </tr>`)}</tbody>
      </table>`}
      <div class="card">
        <h2>Change the password</h2>
        <form class="stack" method="post" action="${base}/password">
          ${csrfField(ctx.session)}
          <label>New password <input type="password" name="password" required autocomplete="new-password"></label>
          <button type="submit">Change password</button>
        </form>
      </div>
      <div class="card">
        <h2>Delete the account</h2>
        <p class="muted">Removes the account with its roster, offline messages and stored data, and ends its sessions.</p>
        ${postButton(ctx.session, `${base}/delete`, `Delete ${jid.toString()}`, {}, 'danger')}
      </div>`,
    },
  };
}

export async function setPassword(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const user = adminUser(ctx);
  const password = ctx.form.get('password') ?? '';
  if (password === '') {
    flash(ctx, false, 'The new password is empty');
  } else {
    try {
      const jid = await ctx.server.accounts.setPassword(user, host, password);
      ctx.server.log.info({ admin: ctx.session.jid, jid }, 'web admin: password changed');
      flash(ctx, true, `Password of ${jid} changed`);
    } catch (err) {
      flash(ctx, false, failure(ctx, err, 'Cannot change the password'));
    }
  }
  return { redirect: userUrl(host, user) };
}

export async function deleteUser(ctx: AdminContext): Promise<PageResult> {
  const host = adminHost(ctx, ctx.params.host);
  const user = adminUser(ctx);
  try {
    const { jid } = await removeUser(ctx.server, user, host);
    ctx.server.log.info({ admin: ctx.session.jid, jid }, 'web admin: account removed');
    flash(ctx, true, `Deleted ${jid}`);
    return { redirect: usersUrl(host) };
  } catch (err) {
    flash(ctx, false, failure(ctx, err, `Cannot delete ${user}@${host}`));
    return { redirect: userUrl(host, user) };
  }
}

/** Kicks one resource of this account (from the account's page). */
export function kickUserSession(ctx: AdminContext): PageResult {
  const host = adminHost(ctx, ctx.params.host);
  const user = adminUser(ctx);
  const full = Jid.tryParse(ctx.form.get('jid') ?? '');
  if (!full || full.bareString !== Jid.of(user, host).bareString) throw new HttpError(400, 'Not a session of this account');
  const { kicked } = kickSessions(ctx.server, full.toString());
  flash(ctx, kicked > 0, kicked > 0 ? `Disconnected ${full.toString()}` : `${full.toString()} was not connected`);
  return { redirect: userUrl(host, user) };
}
