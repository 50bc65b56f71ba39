// The web admin at /admin: server-rendered pages for hosts, users, sessions, rosters, offline queues, the outbox
// and statistics. Admins log in with their JID and password; changes are POSTed forms carrying a CSRF token.
import type { ParleyServer } from '../../server.ts';
import type { HttpRequest, HttpRoutes } from '../routes.ts';
import { HttpError } from '../respond.ts';
import { Jid } from '../../xmpp/jid.ts';
import type { AdminContext, PageResult } from './context.ts';
import { html } from './html.ts';
import { layout } from './layout.ts';
import { adminHostsOf, checkLogin, loginPage } from './login.ts';
import {
  LOGIN_COOKIE, SESSION_COOKIE, isLoopback, parseCookies, readForm, redirect, sameOrigin, securityHeaders, sendHtml, setCookie,
} from './respond.ts';
import { AdminSessions, randomToken, tokensEqual } from './sessions.ts';
import { STYLESHEET } from './style.ts';
import { hostsPage } from './pages/hosts.ts';
import { createUser, deleteUser, kickUserSession, setPassword, userPage, usersPage } from './pages/users.ts';
import { kickSession, sessionsPage } from './pages/sessions.ts';
import { rosterPage } from './pages/roster.ts';
import { offlineCountsPage, offlineMessagesPage } from './pages/offline.ts';
import { outboxPage, retryOutbox } from './pages/outbox.ts';
import { statsPage } from './pages/stats.ts';

type Page = (ctx: AdminContext) => PageResult | Promise<PageResult>;
type AdminRoute = { method: 'GET' | 'POST'; pattern: string[]; handler: Page };

const route = (method: 'GET' | 'POST', path: string, handler: Page): AdminRoute => ({ method, pattern: path.split('/').filter(Boolean), handler });

/** Paths below /admin; ':name' segments are parameters. */
const ROUTES: AdminRoute[] = [
  route('GET', 'hosts', hostsPage),
  route('GET', 'hosts/:host/users', usersPage),
  route('POST', 'hosts/:host/users', createUser),
  route('GET', 'hosts/:host/offline', offlineCountsPage),
  route('GET', 'hosts/:host/users/:user', userPage),
  route('POST', 'hosts/:host/users/:user/password', setPassword),
  route('POST', 'hosts/:host/users/:user/delete', deleteUser),
  route('POST', 'hosts/:host/users/:user/kick', kickUserSession),
  route('GET', 'hosts/:host/users/:user/roster', rosterPage),
  route('GET', 'hosts/:host/users/:user/offline', offlineMessagesPage),
  route('GET', 'sessions', sessionsPage),
  route('POST', 'sessions/kick', kickSession),
  route('GET', 'outbox', outboxPage),
  route('POST', 'outbox/retry', retryOutbox),
  route('GET', 'stats', statsPage),
];

function matchRoute(segments: string[], method: string): { route: AdminRoute; params: Record<string, string> } | 'method' | undefined {
  let pathMatched = false;
  for (const r of ROUTES) {
    if (r.pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const ok = r.pattern.every((p, i) => {
      const s = segments[i] as string;
      if (p.startsWith(':')) {
        params[p.slice(1)] = s;
        return true;
      }
      return p === s;
    });
    if (!ok) continue;
    pathMatched = true;
    if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, params };
  }
  return pathMatched ? 'method' : undefined;
}

function decodeSegments(rest: string): string[] {
  try {
    return rest.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, 'Bad path');
  }
}

export class WebAdmin {
  private readonly server: ParleyServer;
  readonly sessions: AdminSessions;

  constructor(server: ParleyServer) {
    this.server = server;
    const o = server.config.http.admin;
    this.sessions = new AdminSessions({ ttlMs: o.session_ttl * 1000, idleMs: o.idle_timeout * 1000, max: o.max_sessions });
  }

  readonly handle = async (r: HttpRequest): Promise<void> => {
    try {
      await this.serve(r);
    } catch (err) {
      // Refusals are pages too, with the same headers as every admin page.
      if (!(err instanceof HttpError) || r.res.headersSent) throw err;
      r.req.resume();
      for (const [k, v] of Object.entries(err.headers)) r.res.setHeader(k, v);
      const session = this.sessions.get(parseCookies(r.req).get(SESSION_COOKIE));
      sendHtml(r.res, err.status, layout(`Error ${err.status}`, html`<p class="flash error">${err.message}</p><p><a href="/admin/">Back to the admin</a></p>`, session));
    }
  };

  private async serve(r: HttpRequest): Promise<void> {
    const plain = this.server.config.http.admin.plain_http;
    if (!r.secure && (plain === 'deny' || (plain === 'loopback' && !isLoopback(r.remoteAddress)))) {
      throw new HttpError(403, 'The web admin is served over HTTPS only: use the HTTPS listener');
    }
    const method = (r.req.method ?? 'GET').toUpperCase();
    const segments = decodeSegments(r.rest);
    const first = segments[0];
    if (segments.length === 1 && first === 'style.css' && (method === 'GET' || method === 'HEAD')) return this.stylesheet(r);
    if (segments.length === 1 && first === 'login') return method === 'POST' ? this.login(r) : this.showLogin(r);
    if (segments.length === 1 && first === 'logout' && method === 'POST') return this.logout(r);
    const cookies = parseCookies(r.req);
    const session = this.sessions.get(cookies.get(SESSION_COOKIE));
    if (!session) {
      r.req.resume();
      if (method === 'POST') throw new HttpError(403, 'Not logged in (or the login expired)');
      return redirect(r.res, '/admin/login');
    }
    // Rights are looked up on every request, so a configuration change takes effect at once.
    const hosts = adminHostsOf(this.server, Jid.parse(session.jid), r.remoteAddress);
    if (hosts.length === 0) {
      this.sessions.destroy(session.id);
      r.req.resume();
      return redirect(r.res, '/admin/login');
    }
    if (segments.length === 0) return redirect(r.res, '/admin/hosts');
    const match = matchRoute(segments, method);
    if (match === undefined) throw new HttpError(404, 'Not found');
    if (match === 'method') throw new HttpError(405, 'Method not allowed');
    let form = new URLSearchParams();
    if (method === 'POST') {
      if (!sameOrigin(r.req)) throw new HttpError(403, 'Cross-origin request refused');
      form = await readForm(r.req);
      if (!tokensEqual(form.get('csrf') ?? '', session.csrf)) throw new HttpError(403, 'Missing or invalid CSRF token');
    }
    const ctx: AdminContext = {
      server: this.server, session, hosts, allHosts: hosts.length === this.server.hosts.size, r,
      options: this.server.config.http.admin, params: match.params, form,
    };
    const result = await match.route.handler(ctx);
    if ('redirect' in result) return redirect(r.res, result.redirect);
    sendHtml(r.res, result.status ?? 200, layout(result.page.title, result.page.body, session, result.page.nav));
  }

  private stylesheet(r: HttpRequest): void {
    const body = Buffer.from(STYLESHEET, 'utf8');
    securityHeaders(r.res);
    r.res.writeHead(200, { 'Content-Type': 'text/css; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'public, max-age=3600' });
    r.res.end(r.req.method === 'HEAD' ? undefined : body);
  }

  /** The login form, with a fresh double-submit token unless the browser already holds one. */
  private showLogin(r: HttpRequest): void {
    const cookies = parseCookies(r.req);
    if (this.sessions.get(cookies.get(SESSION_COOKIE))) return redirect(r.res, '/admin/hosts');
    let token = cookies.get(LOGIN_COOKIE);
    if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) {
      token = randomToken();
      setCookie(r.res, LOGIN_COOKIE, token, r.secure);
    }
    sendHtml(r.res, 200, loginPage(token));
  }

  private async login(r: HttpRequest): Promise<void> {
    if (!sameOrigin(r.req)) throw new HttpError(403, 'Cross-origin request refused');
    const form = await readForm(r.req);
    const token = parseCookies(r.req).get(LOGIN_COOKIE) ?? '';
    if (!tokensEqual(form.get('csrf') ?? '', token)) throw new HttpError(403, 'Missing or invalid CSRF token: reload the login page');
    const jid = form.get('jid') ?? '';
    const outcome = await checkLogin(this.server, jid, form.get('password') ?? '', r.remoteAddress);
    if (!outcome.ok) return sendHtml(r.res, outcome.status, loginPage(token, jid, outcome.message));
    const old = parseCookies(r.req).get(SESSION_COOKIE);
    if (old) this.sessions.destroy(old);
    // A new id at every login, so an id planted before login is worth nothing after it.
    const session = this.sessions.create(outcome.jid);
    setCookie(r.res, SESSION_COOKIE, session.id, r.secure);
    setCookie(r.res, LOGIN_COOKIE, undefined, r.secure);
    redirect(r.res, '/admin/hosts');
  }

  private async logout(r: HttpRequest): Promise<void> {
    const id = parseCookies(r.req).get(SESSION_COOKIE);
    const session = this.sessions.get(id);
    if (session) {
      if (!sameOrigin(r.req)) throw new HttpError(403, 'Cross-origin request refused');
      const form = await readForm(r.req);
      if (!tokensEqual(form.get('csrf') ?? '', session.csrf)) throw new HttpError(403, 'Missing or invalid CSRF token');
      this.sessions.destroy(session.id);
      this.server.log.info({ jid: session.jid }, 'web admin: logged out');
    } else {
      r.req.resume();
    }
    setCookie(r.res, SESSION_COOKIE, undefined, r.secure);
    sendHtml(r.res, 200, layout('Logged out', html`<p>You are logged out. <a href="/admin/login">Log in again</a></p>`));
  }
}

/** The HttpService entry: mounts /admin unless disabled. */
export function mountWebAdmin(server: ParleyServer, routes: HttpRoutes): (() => void) | undefined {
  if (!server.config.http.admin.enabled) return undefined;
  const admin = new WebAdmin(server);
  return routes.route('*', '/admin', admin.handle, { prefix: true });
}
