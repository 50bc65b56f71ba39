// The REST API over real HTTP against a running server: every command, its authentication failures, bad
// arguments, and the effects clients see (messages, kicks, roster pushes).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../helpers/fixture.ts';
import { startServer } from '../helpers/server.ts';
import { hashToken, newToken, runApiTokenCommand } from '../../src/http/api/tokens.ts';
import { RestApi } from '../../src/http/api/index.ts';
import type { HttpRequest } from '../../src/http/routes.ts';
import { validInvite } from '../../src/modules/register/invites.ts';

type Reply = { status: number; headers: Headers; body: unknown };

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function call(port: number, command: string, args: unknown, auth?: string, init: { method?: string; raw?: string; https?: boolean } = {}): Promise<Reply> {
  const res = await fetch(`${init.https ? 'https' : 'http'}://${init.https ? 'localhost' : '127.0.0.1'}:${port}/api/${command}`, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    ...(init.method === 'GET' ? {} : { body: init.raw ?? JSON.stringify(args) }),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : JSON.parse(text) };
}

function assertError(r: Reply, status: number, code: string, argument?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  const body = r.body as Record<string, unknown>;
  assert.equal(body.status, 'error');
  assert.equal(body.code, code);
  assert.equal(typeof body.message, 'string');
  if (argument !== undefined) assert.equal(body.argument, argument);
}

describe('REST API', () => {
  let f: Fixture;
  let port: number;
  let token: string;
  let bearer: string;
  /** A token limited to the second host. */
  let otherHostBearer: string;

  const api = (command: string, args: unknown = {}, auth: string | undefined = bearer): Promise<Reply> => call(port, command, args, auth);

  before(async () => {
    f = await Fixture.start({ hosts: ['localhost', 'example.net'], admins: ['boss@localhost'] });
    port = f.t.httpPort;
    const store = f.t.server.storage.apiTokens;
    const created = await runApiTokenCommand(store, { sub: 'create', name: 'tests', host: undefined, expiresDays: undefined });
    assert.equal(created.sub, 'create');
    token = (created as { token: string }).token;
    bearer = `Bearer ${token}`;
    const scoped = await runApiTokenCommand(store, { sub: 'create', name: 'other', host: 'example.net', expiresDays: 30 });
    otherHostBearer = `Bearer ${(scoped as { token: string }).token}`;
    await f.t.register('boss', 'bosspw');
  });
  after(() => f.stop());

  describe('authentication', () => {
    it('refuses a request without credentials, with a challenge', async () => {
      const r = await call(port, 'registered_users', { host: 'localhost' });
      assertError(r, 401, 'AUTH_REQUIRED');
      assert.match(r.headers.get('www-authenticate') ?? '', /Bearer realm="parley"/);
    });

    it('refuses unknown, malformed, revoked and expired tokens', async () => {
      assertError(await api('registered_users', { host: 'localhost' }, `Bearer ${newToken().token}`), 401, 'INVALID_CREDENTIALS');
      assertError(await api('registered_users', { host: 'localhost' }, 'Bearer not-a-token'), 401, 'INVALID_CREDENTIALS');
      // The right id with another secret.
      assertError(await api('registered_users', { host: 'localhost' }, `Bearer ${token.slice(0, -4)}AAAA`), 401, 'INVALID_CREDENTIALS');
      assertError(await api('registered_users', { host: 'localhost' }, `Token ${token}`), 401, 'AUTH_REQUIRED');

      const store = f.t.server.storage.apiTokens;
      const doomed = await runApiTokenCommand(store, { sub: 'create', name: 'doomed', host: undefined, expiresDays: undefined });
      const doomedAuth = `Bearer ${(doomed as { token: string }).token}`;
      assert.equal((await api('registered_users', { host: 'localhost' }, doomedAuth)).status, 200);
      const revoked = await runApiTokenCommand(store, { sub: 'revoke', id: (doomed as { info: { id: string } }).info.id });
      assert.deepEqual(revoked, { sub: 'revoke', id: (doomed as { info: { id: string } }).info.id, revoked: true });
      assertError(await api('registered_users', { host: 'localhost' }, doomedAuth), 401, 'INVALID_CREDENTIALS');

      const expired = newToken();
      await store.create({ id: expired.id, hash: hashToken(expired.token), name: 'old', host: null, createdAt: Date.now() - 2000, expiresAt: Date.now() - 1000 });
      assertError(await api('registered_users', { host: 'localhost' }, `Bearer ${expired.token}`), 401, 'TOKEN_EXPIRED');
    });

    it('stores only a hash of each token and records its use', async () => {
      assert.equal((await api('stats', { name: 'uptimeseconds' })).status, 200);
      const listed = await f.t.server.storage.apiTokens.list();
      const mine = listed.find((t) => t.name === 'tests');
      assert.ok(mine);
      assert.ok(mine.lastUsedAt !== null, 'last use recorded');
      const row = await f.t.server.storage.apiTokens.get(mine.id);
      assert.deepEqual(row?.hash, hashToken(token));
      assert.ok(!JSON.stringify(listed).includes(token.slice(21)));
    });

    it('accepts an admin JID and password over Basic, and refuses other accounts and wrong passwords', async () => {
      const [carol = ''] = await f.users('carol');
      const ok = await api('check_account', { user: carol, host: 'localhost' }, basic('boss@localhost', 'bosspw'));
      assert.equal(ok.status, 200);
      assert.equal(ok.body, 0);
      assertError(await api('check_account', { user: carol, host: 'localhost' }, basic(`${carol}@localhost`, 'pw')), 403, 'FORBIDDEN');
      assertError(await api('check_account', { user: carol, host: 'localhost' }, basic('boss@localhost', 'wrong')), 401, 'INVALID_CREDENTIALS');
      assertError(await api('check_account', { user: carol, host: 'localhost' }, basic('boss@nowhere.example', 'bosspw')), 401, 'INVALID_CREDENTIALS');
      assertError(await api('check_account', { user: carol, host: 'localhost' }, 'Basic %%%'), 401, 'INVALID_CREDENTIALS');
    });

    it('keeps a host token to its host', async () => {
      const [dave = ''] = await f.users('dave');
      assertError(await api('check_account', { user: dave, host: 'localhost' }, otherHostBearer), 403, 'FORBIDDEN');
      assertError(await api('send_message', { from: `${dave}@localhost`, to: `${dave}@localhost`, body: 'x' }, otherHostBearer), 403, 'FORBIDDEN');
      const r = await api('register', { user: 'eve', host: 'example.net', password: 'pw' }, otherHostBearer);
      assert.equal(r.status, 200);
      assert.deepEqual((await api('registered_users', { host: 'example.net' }, otherHostBearer)).body, ['eve']);
      // Server-wide answers only show its host.
      const c = await f.raw(dave);
      assert.deepEqual((await api('connected_users', {}, otherHostBearer)).body, []);
      assert.deepEqual((await api('stats', { name: 'registeredusers' }, otherHostBearer)).body, { stat: 1 });
      c.destroy();
    });
  });

  describe('requests', () => {
    it('answers unknown commands, other methods and bad bodies', async () => {
      assertError(await api('frobnicate', {}), 404, 'UNKNOWN_COMMAND');
      assertError(await api('', {}), 404, 'UNKNOWN_COMMAND');
      const get = await call(port, 'registered_users', undefined, bearer, { method: 'GET' });
      assertError(get, 405, 'METHOD_NOT_ALLOWED');
      assert.equal(get.headers.get('allow'), 'POST');
      assertError(await call(port, 'registered_users', undefined, bearer, { raw: '{"host": ' }), 400, 'BAD_JSON');
      assertError(await call(port, 'registered_users', undefined, bearer, { raw: '["localhost"]' }), 400, 'BAD_REQUEST');
      assertError(await call(port, 'registered_users', undefined, bearer, { raw: 'x'.repeat(2_000_000) }), 413, 'BODY_TOO_LARGE');
    });

    it('names the argument at fault', async () => {
      assertError(await api('register', { host: 'localhost', password: 'x' }), 400, 'BAD_ARGUMENT', 'user');
      assertError(await api('register', { user: 'a b', host: 'localhost', password: 'x' }), 400, 'BAD_ARGUMENT', 'user');
      assertError(await api('register', { user: 'fred', host: 'localhost', password: { x: 1 } }), 400, 'BAD_ARGUMENT', 'password');
      assertError(await api('registered_users', { host: 'nowhere.example' }), 404, 'HOST_UNKNOWN', 'host');
      assertError(await api('send_message', { type: 'chat', from: 'a@@b', to: 'fred@localhost', body: 'x' }), 400, 'BAD_ARGUMENT', 'from');
      assertError(await api('send_message', { type: 'error', from: 'fred@localhost', to: 'fred@localhost', body: 'x' }), 400, 'BAD_ARGUMENT', 'type');
      assertError(await api('stats', { name: 'processes' }), 400, 'BAD_ARGUMENT', 'name');
      assertError(await api('kick_session', { user: 'fred', host: 'localhost' }), 400, 'BAD_ARGUMENT', 'resource');
    });

    it('refuses plain HTTP from other than loopback unless configured', async () => {
      // The listeners are on loopback in tests, so the remote address is given to the handler directly.
      const answer = async (plain: 'loopback' | 'allow' | 'deny', secure: boolean, ip: string): Promise<{ status: number; body: Record<string, unknown> }> => {
        const out = { status: 0, body: '' };
        const res = {
          headersSent: false, req: { method: 'POST' },
          setHeader: () => undefined,
          writeHead(status: number) { out.status = status; return res; },
          end(b?: Buffer) { out.body = b ? b.toString() : ''; },
          destroy: () => undefined,
        };
        const req = { method: 'POST', headers: {}, resume: () => undefined };
        const api = new RestApi(f.t.server, { enabled: true, basic_auth: true, plain_http: plain });
        await api.handle({ req, res, url: new URL('http://x/api/stats'), secure, remoteAddress: ip, rest: 'stats' } as unknown as HttpRequest);
        return { status: out.status, body: JSON.parse(out.body) as Record<string, unknown> };
      };
      let r = await answer('loopback', false, '203.0.113.5');
      assert.equal(r.status, 403);
      assert.equal(r.body.code, 'TLS_REQUIRED');
      // Past that check, the request lacks credentials.
      assert.equal((await answer('loopback', true, '203.0.113.5')).body.code, 'AUTH_REQUIRED');
      assert.equal((await answer('loopback', false, '::ffff:127.0.0.1')).body.code, 'AUTH_REQUIRED');
      assert.equal((await answer('allow', false, '203.0.113.5')).body.code, 'AUTH_REQUIRED');
      r = await answer('deny', false, '127.0.0.1');
      assert.equal(r.body.code, 'TLS_REQUIRED');
    });

    it('is served over HTTPS too', async () => {
      const r = await call(f.t.httpsPort, 'registered_users', { host: 'example.net' }, bearer, { https: true });
      assert.equal(r.status, 200);
    });
  });
  describe('accounts', () => {
    it('registers, checks, lists, changes passwords and unregisters', async () => {
      let r = await api('register', { user: 'Gina', host: 'localhost', password: 's3cret' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'User gina@localhost successfully registered');
      assertError(await api('register', { user: 'gina', host: 'localhost', password: 'x' }), 409, 'USER_EXISTS');
      assertError(await api('register', { user: 'nobody', host: 'localhost', password: '' }), 400, 'BAD_ARGUMENT', 'password');
      assert.deepEqual((await api('check_account', { user: 'gina', host: 'localhost' })).body, 0);
      assert.deepEqual((await api('check_account', { user: 'ghost', host: 'localhost' })).body, 1);
      assert.ok(((await api('registered_users', { host: 'localhost' })).body as string[]).includes('gina'));

      r = await api('change_password', { user: 'gina', host: 'localhost', newpass: 'n3w' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 0);
      const host = f.t.server.hosts.get('localhost');
      assert.equal(await host?.auth.checkPassword('gina', 'n3w'), 'gina');
      assert.equal(await host?.auth.checkPassword('gina', 's3cret'), false);
      assertError(await api('change_password', { user: 'ghost', host: 'localhost', newpass: 'x' }), 404, 'USER_NOT_FOUND');

      r = await api('unregister', { user: 'gina', host: 'localhost' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 0);
      assert.deepEqual((await api('check_account', { user: 'gina', host: 'localhost' })).body, 1);
      assertError(await api('unregister', { user: 'gina', host: 'localhost' }), 404, 'USER_NOT_FOUND');
    });

    it('creates invitations to register', async () => {
      const r = await api('create_invite', { host: 'localhost', expires: 2 });
      assert.equal(r.status, 200);
      const body = r.body as { token: string; uri: string; expires: string };
      assert.equal(body.uri, `xmpp:localhost?register;preauth=${body.token}`);
      assert.ok(Date.parse(body.expires) > Date.now() + 86_400_000);
      assert.ok(await validInvite(f.t.server.storage.kv, 'localhost', body.token));
      assert.equal(((await api('create_invite', { host: 'localhost' })).body as { expires: unknown }).expires, null);
      assertError(await api('create_invite', { host: 'localhost', expires: 'never' }), 400, 'BAD_ARGUMENT', 'expires');
      assertError(await api('create_invite', { host: 'localhost' }, otherHostBearer), 403, 'FORBIDDEN');
    });

    it('ends the sessions of an unregistered account', async () => {
      const [hal = ''] = await f.users('hal');
      const c = await f.raw(hal);
      assert.equal((await api('unregister', { user: hal, host: 'localhost' })).status, 200);
      await c.expect(/<stream:error><not-authorized/);
      await c.closed();
    });
  });

  describe('sessions', () => {
    it('lists connected users and kicks a session', async () => {
      const [ivy = ''] = await f.users('ivy');
      const c = await f.raw(ivy, 'phone');
      c.send("<presence><show>away</show><status>lunch</status></presence>");
      await c.expect(/<presence[^>]*>/);
      const users = (await api('connected_users')).body as string[];
      assert.ok(users.includes(`${ivy}@localhost/phone`), JSON.stringify(users));
      const info = (await api('connected_users_info')).body as Array<Record<string, unknown>>;
      const mine = info.find((i) => i.jid === `${ivy}@localhost/phone`);
      assert.ok(mine);
      assert.equal(mine.connection, 'tcp_tls');
      assert.equal(mine.ip, '127.0.0.1');
      assert.equal(mine.resource, 'phone');
      assert.equal(mine.status, 'away');
      assert.equal(mine.statustext, 'lunch');

      assertError(await api('kick_session', { user: ivy, host: 'localhost', resource: 'laptop', reason: 'x' }), 404, 'SESSION_NOT_FOUND', 'resource');
      const r = await api('kick_session', { user: ivy, host: 'localhost', resource: 'phone', reason: 'Maintenance' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 0);
      await c.expect(/<stream:error><policy-violation[^>]*\/><text[^>]*>Maintenance<\/text>/);
      await c.closed();
      assert.ok(!((await api('connected_users')).body as string[]).includes(`${ivy}@localhost/phone`));
    });
  });

  describe('stanzas', () => {
    it('send_message reaches an online client and is stored for an offline one', async () => {
      const [jay = '', kim = ''] = await f.users('jay', 'kim');
      const c = await f.raw(jay);
      c.send('<presence/>');
      await c.expect(/<presence[^>]*\/>|<\/presence>/);
      let r = await api('send_message', { type: 'chat', from: 'localhost', to: `${jay}@localhost`, subject: '', body: 'Hello & welcome' });
      assert.equal(r.status, 200);
      assert.equal(r.body, 0);
      await c.expect(/<message[^>]*type=['"]chat['"][^>]*>.*?<body>Hello &amp; welcome<\/body>/s);

      assert.deepEqual((await api('get_offline_count', { user: kim, host: 'localhost' })).body, { value: 0 });
      r = await api('send_message', { type: 'headline', from: `${jay}@localhost`, to: `${kim}@localhost`, subject: 'News', body: 'Kept for later' });
      assert.equal(r.status, 200);
      // Headlines are not stored offline (XEP-0160), a normal message is.
      r = await api('send_message', { type: 'normal', from: `${jay}@localhost`, to: `${kim}@localhost`, subject: 'Note', body: 'Kept for later' });
      assert.equal(r.status, 200);
      assert.deepEqual((await api('get_offline_count', { user: kim, host: 'localhost' })).body, { value: 1 });
      const stored = await f.t.server.storage.offline.list('localhost', kim);
      assert.match(stored[0]?.stanza ?? '', /<subject>Note<\/subject><body>Kept for later<\/body>/);
      assertError(await api('send_message', { type: 'chat', from: 'localhost', to: 'ghost@localhost', body: 'x' }), 404, 'USER_NOT_FOUND', 'to');
      assertError(await api('send_message', { type: 'chat', from: 'localhost', to: 'someone@remote.example', body: 'x' }), 400, 'BAD_ARGUMENT', 'to');
      assertError(await api('get_offline_count', { user: 'ghost', host: 'localhost' }), 404, 'USER_NOT_FOUND');
    });

    it('send_stanza routes a stanza with the given addresses', async () => {
      const [lee = ''] = await f.users('lee');
      const c = await f.raw(lee, 'desk');
      const r = await api('send_stanza', {
        from: 'localhost', to: `${lee}@localhost/desk`,
        stanza: "<message from='spoof@elsewhere' type='chat' id='s1'><body>raw</body><x xmlns='urn:example:x'/></message>",
      });
      assert.equal(r.status, 200);
      const m = await c.expect(/<message[^>]*id=['"]s1['"][^>]*>.*?<\/message>/s);
      assert.match(m[0], /from=['"]localhost['"]/);
      assert.match(m[0], /<x xmlns=['"]urn:example:x['"]\/>/);
      assertError(await api('send_stanza', { from: 'localhost', to: `${lee}@localhost`, stanza: '<message><body>' }), 400, 'BAD_ARGUMENT', 'stanza');
      assertError(await api('send_stanza', { from: 'localhost', to: `${lee}@localhost`, stanza: '<foo/>' }), 400, 'BAD_ARGUMENT', 'stanza');
      assertError(await api('send_stanza', { from: 'localhost', to: `${lee}@localhost`, stanza: "<iq type='get'/>" }), 400, 'BAD_ARGUMENT', 'stanza');
    });
  });

  describe('roster', () => {
    it('adds an item with a roster push to an online client, lists it and deletes it', async () => {
      const [max = '', ned = ''] = await f.users('max', 'ned');
      const c = await f.raw(max);
      c.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
      await c.expect(/<iq[^>]*id=['"]r1['"][^>]*type=['"]result['"]|<iq[^>]*type=['"]result['"][^>]*id=['"]r1['"]/);
      let r = await api('add_rosteritem', {
        localuser: max, localhost: 'localhost', user: ned, host: 'localhost', nick: 'Ned', groups: ['Friends', 'Team 1'], subs: 'both',
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body, 0);
      const push = await c.expect(/<iq[^>]*type=['"]set['"][^>]*>.*?<\/iq>/s);
      assert.match(push[0], /<query xmlns=['"]jabber:iq:roster['"][^>]*><item jid=['"]ned\d+@localhost['"] name=['"]Ned['"] subscription=['"]both['"]><group>Friends<\/group><group>Team 1<\/group><\/item>/);

      // ejabberd's older form: one group string, names separated by ';'.
      r = await api('add_rosteritem', { localuser: max, localhost: 'localhost', user: 'pal', host: 'remote.example', nick: '', group: 'A;B', subs: 'none' });
      assert.equal(r.status, 200);
      const roster = (await api('get_roster', { user: max, host: 'localhost' })).body;
      assert.deepEqual(roster, [
        { jid: `${ned}@localhost`, nick: 'Ned', subscription: 'both', pending: 'none', groups: ['Friends', 'Team 1'] },
        { jid: 'pal@remote.example', nick: '', subscription: 'none', pending: 'none', groups: ['A', 'B'] },
      ]);

      r = await api('delete_rosteritem', { localuser: max, localhost: 'localhost', user: ned, host: 'localhost' });
      assert.equal(r.status, 200);
      await c.expect(/<item jid=['"]ned\d+@localhost['"] subscription=['"]remove['"]\/>/);
      assertError(await api('delete_rosteritem', { localuser: max, localhost: 'localhost', user: ned, host: 'localhost' }), 404, 'ITEM_NOT_FOUND');
      assertError(await api('add_rosteritem', { localuser: max, localhost: 'localhost', user: ned, host: 'localhost', subs: 'some' }), 400, 'BAD_ARGUMENT', 'subs');
      assertError(await api('add_rosteritem', { localuser: 'ghost', localhost: 'localhost', user: ned, host: 'localhost', subs: 'none' }), 404, 'USER_NOT_FOUND', 'localuser');
      assertError(await api('get_roster', { user: 'ghost', host: 'localhost' }), 404, 'USER_NOT_FOUND');
    });

    it('gives presence with a granted subscription', async () => {
      const [oli = '', pam = ''] = await f.users('oli', 'pam');
      const co = await f.raw(oli, 'o');
      const cp = await f.raw(pam, 'p');
      cp.send('<presence><status>here</status></presence>');
      await cp.expect(/<\/presence>/);
      co.send('<presence/>');
      await co.expect(/<presence[^>]*\/>|<\/presence>/);
      // pam shares her presence with oli (from), oli subscribes to pam (to): oli then sees pam.
      assert.equal((await api('add_rosteritem', { localuser: pam, localhost: 'localhost', user: oli, host: 'localhost', nick: '', groups: [], subs: 'from' })).status, 200);
      assert.equal((await api('add_rosteritem', { localuser: oli, localhost: 'localhost', user: pam, host: 'localhost', nick: '', groups: [], subs: 'to' })).status, 200);
      await co.expect(new RegExp(`<presence[^>]*from=['"]${pam}@localhost/p['"][^>]*>.*?<status>here</status>`, 's'));
    });
  });

  describe('stats', () => {
    it('counts registered and online users and uptime', async () => {
      const [quinn = ''] = await f.users('quinn');
      const c = await f.raw(quinn);
      const registered = (await api('stats', { name: 'registeredusers' })).body as { stat: number };
      const listed = ((await api('registered_users', { host: 'localhost' })).body as string[]).length
        + ((await api('registered_users', { host: 'example.net' })).body as string[]).length;
      assert.equal(registered.stat, listed);
      const online = (await api('stats', { name: 'onlineusers' })).body as { stat: number };
      assert.equal(online.stat, ((await api('connected_users')).body as string[]).length);
      assert.ok(online.stat >= 1);
      assert.deepEqual((await api('stats_host', { name: 'onlineusers', host: 'example.net' })).body, { stat: 0 });
      const up = (await api('stats', { name: 'uptimeseconds' })).body as { stat: number };
      assert.ok(Number.isInteger(up.stat) && up.stat >= 0);
      c.destroy();
    });
  });
});

describe('REST API options and brute-force protection', () => {
  it('refuses an address after repeated failures, and can be switched off', async () => {
    const t = await startServer({ auth: { brute_force: { max_failures: 3, window: 600, ban_seconds: 600 } } });
    try {
      const bad = `Bearer ${newToken().token}`;
      for (let i = 0; i < 3; i++) assertError(await call(t.httpPort, 'stats', { name: 'onlineusers' }, bad), 401, 'INVALID_CREDENTIALS');
      const good = await runApiTokenCommand(t.server.storage.apiTokens, { sub: 'create', name: undefined, host: undefined, expiresDays: 1 });
      assertError(await call(t.httpPort, 'stats', { name: 'onlineusers' }, `Bearer ${(good as { token: string }).token}`), 429, 'TOO_MANY_FAILURES');
    } finally {
      await t.stop();
    }
    const off = await startServer({ http: { api: { enabled: false } } });
    try {
      const res = await fetch(`http://127.0.0.1:${off.httpPort}/api/stats`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 404);
      await res.text();
    } finally {
      await off.stop();
    }
  });
});
