// The web admin over real HTTP: login, brute-force refusal, rights, sessions and their expiry, CSRF, escaping,
// and every page and action an admin has.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { html, trusted } from '../../src/http/admin/html.ts';
import { AdminSessions, tokensEqual } from '../../src/http/admin/sessions.ts';

type Reply = { status: number; headers: Headers; body: string };

/** A browser stand-in: keeps cookies, never follows redirects, reads the CSRF token from the last page. */
class AdminClient {
  readonly base: string;
  readonly cookies = new Map<string, string>();
  csrf = '';

  constructor(port: number) {
    this.base = `http://127.0.0.1:${port}`;
  }

  private store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/Max-Age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  async get(path: string): Promise<Reply> {
    const res = await fetch(this.base + path, { redirect: 'manual', headers: this.cookieHeader() });
    this.store(res);
    const body = await res.text();
    const m = body.match(/name="csrf" value="([^"]+)"/);
    if (m) this.csrf = m[1] as string;
    return { status: res.status, headers: res.headers, body };
  }

  async post(path: string, fields: Record<string, string>, opts: { csrf?: boolean; headers?: Record<string, string> } = {}): Promise<Reply> {
    const form = new URLSearchParams(fields);
    if (opts.csrf !== false) form.set('csrf', this.csrf);
    const res = await fetch(this.base + path, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...this.cookieHeader(), ...opts.headers },
      body: form.toString(),
    });
    this.store(res);
    return { status: res.status, headers: res.headers, body: await res.text() };
  }

  async login(jid: string, password: string): Promise<Reply> {
    await this.get('/admin/login');
    return this.post('/admin/login', { jid, password });
  }
}

async function loggedIn(t: TestServer): Promise<AdminClient> {
  const c = new AdminClient(t.httpPort);
  const r = await c.login('boss@localhost', 'boss-pw');
  assert.equal(r.status, 303, r.body);
  await c.get('/admin/hosts');
  assert.ok(c.csrf, 'the page carries a CSRF token');
  return c;
}

describe('web admin: html helper and sessions', () => {
  it('escapes every interpolated string and keeps nested fragments', () => {
    const name = '<script>alert("x")</script>&\'';
    const out = html`<td title="${name}">${name}${html`<b>${'<i>'}</b>`}${[1, 'a<b']}${undefined}${trusted('<br>')}</td>`.value;
    assert.equal(out, '<td title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;<b>&lt;i&gt;</b>1a&lt;b<br></td>');
  });

  it('ends a login after the idle time and after the absolute lifetime', () => {
    let now = 1_000_000;
    const s = new AdminSessions({ ttlMs: 10_000, idleMs: 3_000, max: 10 }, () => now);
    const a = s.create('boss@localhost');
    now += 2_000;
    assert.equal(s.get(a.id)?.jid, 'boss@localhost');
    now += 2_000; // 2 s since the last request: still within the idle time
    assert.ok(s.get(a.id));
    now += 3_000; // idle for 3 s
    assert.equal(s.get(a.id), undefined);
    const b = s.create('boss@localhost');
    for (let i = 0; i < 5; i++) {
      now += 2_000;
      if (i < 4) assert.ok(s.get(b.id), `active login at ${i}`);
      else assert.equal(s.get(b.id), undefined, 'absolute lifetime reached although active');
    }
    assert.equal(s.get(undefined), undefined);
    assert.equal(s.get('nonsense'), undefined);
  });

  it('keeps at most max logins, dropping the oldest', () => {
    const s = new AdminSessions({ ttlMs: 10_000, idleMs: 10_000, max: 2 });
    const a = s.create('a@localhost');
    const b = s.create('b@localhost');
    const c = s.create('c@localhost');
    assert.equal(s.get(a.id), undefined);
    assert.ok(s.get(b.id));
    assert.ok(s.get(c.id));
    assert.notEqual(b.id, c.id);
    assert.notEqual(b.csrf, b.id);
  });

  it('compares tokens exactly', () => {
    assert.equal(tokensEqual('abc', 'abc'), true);
    assert.equal(tokensEqual('abc', 'abd'), false);
    assert.equal(tokensEqual('abc', 'abcd'), false);
    assert.equal(tokensEqual('', ''), false);
  });
});

describe('web admin over HTTP', () => {
  let t: TestServer;

  before(async () => {
    t = await startServer({
      admins: ['boss@localhost'],
      auth: { brute_force: { max_failures: 3, window: 600, ban_seconds: 600 } },
    });
    await t.register('boss', 'boss-pw');
    await t.register('alice', 'alice-pw');
  });

  after(async () => {
    await t.stop();
  });

  it('sends the login form with its security headers and a login token cookie', async () => {
    const c = new AdminClient(t.httpPort);
    const r = await c.get('/admin/login');
    assert.equal(r.status, 200);
    assert.match(r.body, /<form method="post" action="\/admin\/login">/);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src/, 'no script source at all');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(c.cookies.has('parley_admin_login'));
    assert.doesNotMatch(r.body, /<script/i);
  });

  it('redirects to the login page without a session', async () => {
    const c = new AdminClient(t.httpPort);
    for (const path of ['/admin', '/admin/', '/admin/hosts', '/admin/stats', '/admin/hosts/localhost/users']) {
      const r = await c.get(path);
      assert.equal(r.status, 303, path);
      assert.equal(r.headers.get('location'), '/admin/login', path);
    }
    const p = await c.post('/admin/sessions/kick', { jid: 'alice@localhost' }, { csrf: false });
    assert.equal(p.status, 403);
  });

  it('refuses a wrong password, an unknown host and a malformed JID, and sets no session', async () => {
    const c = new AdminClient(t.httpPort);
    for (const [jid, pw] of [['boss@localhost', 'wrong'], ['boss@elsewhere.example', 'boss-pw'], ['@@@', 'x'], ['boss@localhost', '']]) {
      await c.get('/admin/login');
      const r = await c.post('/admin/login', { jid: jid as string, password: pw as string });
      assert.equal(r.status, 401, `${jid}`);
      assert.match(r.body, /Invalid JID or password/);
      assert.equal(c.cookies.has('parley_admin'), false);
    }
  });

  it('refuses a login form posted without its token', async () => {
    const c = new AdminClient(t.httpPort);
    await c.get('/admin/login');
    const r = await c.post('/admin/login', { jid: 'boss@localhost', password: 'boss-pw' }, { csrf: false });
    assert.equal(r.status, 403);
    assert.equal(c.cookies.has('parley_admin'), false);
  });

  it('refuses a user without admin rights even with the right password', async () => {
    const c = new AdminClient(t.httpPort);
    const r = await c.login('alice@localhost', 'alice-pw');
    assert.equal(r.status, 403);
    assert.match(r.body, /has no admin rights/);
    assert.equal(c.cookies.has('parley_admin'), false);
    assert.equal((await c.get('/admin/hosts')).status, 303);
  });

  it('logs an admin in with a strict, HttpOnly session cookie scoped to /admin', async () => {
    const c = new AdminClient(t.httpPort);
    await c.get('/admin/login');
    const form = new URLSearchParams({ jid: 'boss@localhost', password: 'boss-pw', csrf: c.csrf });
    const res = await fetch(`${c.base}/admin/login`, {
      method: 'POST', redirect: 'manual', body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `parley_admin_login=${c.cookies.get('parley_admin_login')}` },
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/admin/hosts');
    const cookie = res.headers.getSetCookie().find((l) => l.startsWith('parley_admin='));
    assert.ok(cookie);
    assert.match(cookie, /^parley_admin=[A-Za-z0-9_-]{43}; /);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\/admin/);
    assert.doesNotMatch(cookie, /Secure/, 'plain HTTP');
  });

  it('marks the session cookie Secure over HTTPS', async () => {
    const c = new AdminClient(t.httpPort);
    await c.get('/admin/login');
    const token = c.cookies.get('parley_admin_login') as string;
    const body = new URLSearchParams({ jid: 'boss@localhost', password: 'boss-pw', csrf: c.csrf }).toString();
    const setCookies = await new Promise<string[]>((resolve, reject) => {
      const req = httpsRequest({
        host: '127.0.0.1', port: t.httpsPort, servername: 'localhost', method: 'POST', path: '/admin/login',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), cookie: `parley_admin_login=${token}` },
      }, (res) => {
        res.resume();
        assert.equal(res.statusCode, 303);
        resolve(res.headers['set-cookie'] ?? []);
      });
      req.on('error', reject);
      req.end(body);
    });
    const cookie = setCookies.find((l) => l.startsWith('parley_admin='));
    assert.ok(cookie);
    assert.match(cookie, /; Secure/);
  });

  it('answers every page with 200 for an admin', async () => {
    const c = await loggedIn(t);
    const pages = [
      '/admin/hosts', '/admin/hosts/localhost/users', '/admin/hosts/localhost/users?page=2', '/admin/hosts/localhost/users?q=ali',
      '/admin/hosts/localhost/users/alice', '/admin/hosts/localhost/users/alice/roster', '/admin/hosts/localhost/users/alice/offline',
      '/admin/hosts/localhost/offline', '/admin/sessions', '/admin/outbox', '/admin/outbox?state=pending', '/admin/stats',
    ];
    for (const p of pages) {
      const r = await c.get(p);
      assert.equal(r.status, 200, `${p}: ${r.body.slice(0, 300)}`);
      assert.match(r.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.doesNotMatch(r.body, /<script/i, p);
    }
    const css = await c.get('/admin/style.css');
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    assert.match((await c.get('/admin/hosts')).body, /<a href="\/admin\/hosts\/localhost\/users">localhost<\/a>/);
    assert.match((await c.get('/admin/hosts/localhost/users')).body, /alice@localhost/);
    assert.match((await c.get('/admin/stats')).body, /roster/, 'modules per host');
    assert.equal((await c.get('/admin/hosts/elsewhere.example/users')).status, 404);
    assert.equal((await c.get('/admin/nothing-here')).status, 404);
    assert.equal((await c.get('/admin/hosts/localhost/users/nobody')).status, 404);
  });

  it('creates a user, changes its password and deletes it, all through the host backends', async () => {
    const c = await loggedIn(t);
    let r = await c.post('/admin/hosts/localhost/users', { username: 'Carol', password: 'carol-pw' });
    assert.equal(r.status, 303);
    r = await c.get(r.headers.get('location') as string);
    assert.match(r.body, /Created carol@localhost/);
    assert.match(r.body, /href="\/admin\/hosts\/localhost\/users\/carol"/);
    assert.equal(await t.server.hosts.get('localhost')?.auth.checkPassword('carol', 'carol-pw'), 'carol');
    r = await c.post('/admin/hosts/localhost/users', { username: 'carol', password: 'again' });
    r = await c.get(r.headers.get('location') as string);
    assert.match(r.body, /class="flash error"/);
    r = await c.post('/admin/hosts/localhost/users/carol/password', { password: 'new-pw' });
    assert.equal(r.status, 303);
    assert.equal(await t.server.hosts.get('localhost')?.auth.checkPassword('carol', 'new-pw'), 'carol');
    assert.equal(await t.server.hosts.get('localhost')?.auth.checkPassword('carol', 'carol-pw'), false);
    r = await c.post('/admin/hosts/localhost/users/carol/delete', {});
    assert.equal(r.status, 303);
    assert.equal(await t.server.hosts.get('localhost')?.auth.userExists('carol'), false);
    r = await c.get(r.headers.get('location') as string);
    assert.match(r.body, /Deleted carol@localhost/);
  });

  it('refuses a change POSTed without the CSRF token, with a wrong one, or from another origin', async () => {
    const c = await loggedIn(t);
    let r = await c.post('/admin/hosts/localhost/users', { username: 'mallory', password: 'pw' }, { csrf: false });
    assert.equal(r.status, 403);
    assert.match(r.body, /CSRF/);
    r = await c.post('/admin/hosts/localhost/users', { username: 'mallory', password: 'pw', csrf: 'x'.repeat(43) }, { csrf: false });
    assert.equal(r.status, 403);
    r = await c.post('/admin/hosts/localhost/users', { username: 'mallory', password: 'pw' }, { headers: { origin: 'https://evil.example' } });
    assert.equal(r.status, 403);
    r = await c.post('/admin/hosts/localhost/users/alice/delete', {}, { csrf: false });
    assert.equal(r.status, 403);
    assert.equal(await t.server.hosts.get('localhost')?.auth.userExists('mallory'), false);
    assert.equal(await t.server.hosts.get('localhost')?.auth.userExists('alice'), true);
    // GET never changes anything.
    assert.equal((await c.get('/admin/hosts/localhost/users/alice/delete')).status, 405);
  });

  it('shows user-supplied strings escaped', async () => {
    const c = await loggedIn(t);
    const evil = '<script>alert(1)</script>';
    let r = await c.post('/admin/hosts/localhost/users', { username: evil, password: 'pw' });
    r = await c.get(r.headers.get('location') as string);
    assert.match(r.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/, 'the refused name is shown');
    assert.doesNotMatch(r.body, /<script>/);
    r = await c.get(`/admin/hosts/localhost/users?q=${encodeURIComponent(evil)}`);
    assert.match(r.body, /value="&lt;script&gt;alert\(1\)&lt;\/script&gt;"/);
    assert.doesNotMatch(r.body, /<script>/);
    await t.server.storage.roster.put('localhost', 'alice', { jid: 'bob@localhost', name: `"><img src=x onerror=alert(1)>${evil}`, subscription: 'both', ask: false, approved: false, groups: [evil] });
    await t.server.storage.offline.store('localhost', 'alice', 'bob@localhost', `<message from="bob@localhost"><body>${evil.replace(/</g, '&lt;')}</body></message>`, 100);
    r = await c.get('/admin/hosts/localhost/users/alice/roster');
    assert.match(r.body, /&quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;&lt;script&gt;/);
    assert.doesNotMatch(r.body, /<script>|<img/);
    r = await c.get('/admin/hosts/localhost/users/alice/offline');
    assert.match(r.body, /&lt;message from=&quot;bob@localhost&quot;&gt;&lt;body&gt;&amp;lt;script&gt;/);
    assert.doesNotMatch(r.body, /<script>|<message/);
    r = await c.get('/admin/hosts/localhost/offline');
    assert.match(r.body, /alice@localhost<\/a><\/td><td class="num">1<\/td>/);
  });

  it('lists a logged-in client and kicks it: the client sees its stream closed', async () => {
    const c = await loggedIn(t);
    const raw = await RawClient.connect(t.port);
    try {
      await raw.login('alice', 'alice-pw', 'phone');
      let r = await c.get('/admin/sessions');
      assert.match(r.body, /alice@localhost/);
      assert.match(r.body, /<td>phone<\/td>/);
      assert.match(r.body, /<td>tcp/);
      assert.match(r.body, /<td>127\.0\.0\.1<\/td>/);
      r = await c.post('/admin/sessions/kick', { jid: 'alice@localhost/phone' });
      assert.equal(r.status, 303);
      await raw.expect(/<policy-violation/);
      await raw.closed();
      r = await c.get('/admin/sessions');
      assert.match(r.body, /Disconnected alice@localhost\/phone/);
      assert.doesNotMatch(r.body, /<td>phone<\/td>/);
    } finally {
      raw.destroy();
    }
    // The same from the account's page, which kicks only sessions of that account.
    const tablet = await RawClient.connect(t.port);
    try {
      await tablet.login('alice', 'alice-pw', 'tablet');
      assert.match((await c.get('/admin/hosts/localhost/users/alice')).body, /<td>tablet<\/td>/);
      assert.equal((await c.post('/admin/hosts/localhost/users/alice/kick', { jid: 'boss@localhost/tablet' })).status, 400);
      const r = await c.post('/admin/hosts/localhost/users/alice/kick', { jid: 'alice@localhost/tablet' });
      assert.equal(r.status, 303);
      assert.equal(r.headers.get('location'), '/admin/hosts/localhost/users/alice');
      await tablet.expect(/<policy-violation/);
      await tablet.closed();
    } finally {
      tablet.destroy();
    }
  });

  it('shows the outbox by kind and state and requeues dead letters', async () => {
    const c = await loggedIn(t);
    const kind = 'offline_webhook:localhost';
    const id = await t.server.storage.outbox.add('localhost', kind, '{}');
    await t.server.storage.outbox.markFailed(id, 'HTTP 500 <from the hook>', Date.now(), true);
    let r = await c.get('/admin/outbox');
    assert.match(r.body, /offline_webhook:localhost/);
    assert.match(r.body, /HTTP 500 &lt;from the hook&gt;/);
    r = await c.post('/admin/outbox/retry', { kind });
    assert.equal(r.status, 303);
    assert.equal((await t.server.storage.outbox.counts(kind)).dead, 0);
    r = await c.get('/admin/outbox');
    assert.match(r.body, /1 job of offline_webhook:localhost queued again/);
    r = await c.post('/admin/outbox/retry', { kind: 'nothing:elsewhere' });
    assert.equal(r.status, 400);
  });

  it('logs out: the session ends and its cookie is cleared', async () => {
    const c = await loggedIn(t);
    const id = c.cookies.get('parley_admin');
    const r = await c.post('/admin/logout', {});
    assert.equal(r.status, 200);
    assert.equal(c.cookies.has('parley_admin'), false);
    c.cookies.set('parley_admin', id as string);
    assert.equal((await c.get('/admin/hosts')).status, 303, 'the old id is worth nothing');
  });

  it('refuses an address after repeated failed logins, even with the right password', async () => {
    const c = new AdminClient(t.httpPort);
    // Earlier tests used up some of the 3 failures allowed; a few more reach the limit whatever the count.
    for (let i = 0; i < 3; i++) await c.login('boss@localhost', `wrong-${i}`);
    const r = await c.login('boss@localhost', 'boss-pw');
    assert.equal(r.status, 429);
    assert.match(r.body, /Too many failed logins/);
    assert.equal(c.cookies.has('parley_admin'), false);
  });
});

describe('web admin session expiry and rights', () => {
  let t: TestServer;

  before(async () => {
    t = await startServer({
      admins: ['boss@localhost'],
      host_config: { 'example.net': { admins: ['local@example.net'] } },
      hosts: ['localhost', 'example.net'],
      http: { admin: { idle_timeout: 1, session_ttl: 60 } },
    });
    await t.register('boss', 'boss-pw');
    await t.server.accounts.register('local', 'example.net', 'local-pw');
  });

  after(async () => {
    await t.stop();
  });

  it('ends a login that stayed idle past idle_timeout', async () => {
    const c = await loggedIn(t);
    assert.equal((await c.get('/admin/hosts')).status, 200);
    // Bounded wait past the one-second idle time; the assertion is on the outcome, not the time taken.
    await new Promise((r) => setTimeout(r, 1_300));
    const r = await c.get('/admin/hosts');
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/admin/login');
    const p = await c.post('/admin/hosts/localhost/users', { username: 'late', password: 'pw' });
    assert.equal(p.status, 403);
    assert.equal(await t.server.hosts.get('localhost')?.auth.userExists('late'), false);
  });

  it('limits a host admin to their host', async () => {
    const c = new AdminClient(t.httpPort);
    assert.equal((await c.login('local@example.net', 'local-pw')).status, 303);
    const hosts = await c.get('/admin/hosts');
    assert.equal(hosts.status, 200);
    assert.match(hosts.body, />example\.net</);
    assert.doesNotMatch(hosts.body, />localhost</);
    assert.equal((await c.get('/admin/hosts/localhost/users')).status, 404);
    const r = await c.post('/admin/sessions/kick', { jid: 'boss@localhost/x' });
    assert.equal(r.status, 403);
  });
});

describe('web admin over plain HTTP', () => {
  it('answers over HTTPS only when plain_http is deny', async () => {
    const t = await startServer({ admins: ['boss@localhost'], http: { admin: { plain_http: 'deny' } } });
    try {
      const plain = await fetch(`http://127.0.0.1:${t.httpPort}/admin/login`, { redirect: 'manual' });
      assert.equal(plain.status, 403);
      assert.match(await plain.text(), /HTTPS/);
      const secure = await fetch(`https://localhost:${t.httpsPort}/admin/login`, { redirect: 'manual' });
      assert.equal(secure.status, 200);
      assert.match(secure.headers.getSetCookie().join('\n'), /parley_admin_login=[^;]+;.*; Secure/);
    } finally {
      await t.stop();
    }
  });
});
