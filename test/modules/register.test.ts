// XEP-0077: In-Band Registration — registration before authentication, password change and cancellation after
// it, access rules, the per-address rate limit, username and password policy.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { connectClient, xml as xxml } from '../helpers/xmpp-client.ts';
import { parseElement } from '../../src/xml/parse.ts';
import type { Element } from '../../src/xml/element.ts';
import { PRIORITY } from '../../src/core/hooks.ts';
import { RegistrationRateLimit, rateKey } from '../../src/modules/register/rate-limit.ts';
import { checkPassword, passwordEntropy } from '../../src/modules/register/policy.ts';

const REGISTER = 'jabber:iq:register';
const FEATURE = /<register xmlns="http:\/\/jabber.org\/features\/iq-register"\/>/;
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const PASSWORD = 'correct horse battery';

const open: RawClient[] = [];
let seq = 0;
const fresh = (prefix = 'user'): string => `${prefix}${++seq}`;

async function connect(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  open.push(c);
  return c;
}

/** STARTTLS done, a fresh stream open: where an unauthenticated client registers. Returns the features too. */
async function preauth(port: number): Promise<{ c: RawClient; features: string }> {
  const c = await connect(port);
  await c.openStream();
  await c.starttls();
  return { c, features: await c.openStream() };
}

/** Sends an IQ and returns the parsed reply with that id. */
async function iq(c: RawClient, id: string, stanza: string): Promise<Element> {
  c.send(stanza);
  const m = await c.expect(new RegExp(`<iq\\b[^>]*\\bid="${id}"[^>]*?(?:/>|>[\\s\\S]*?</iq>)`));
  const el = parseElement(m[0]);
  assert.ok(el, `parsable reply: ${m[0]}`);
  return el;
}

function legacySet(id: string, username: string, password: string, to = 'localhost'): string {
  return `<iq type='set' id='${id}' to='${to}'><query xmlns='${REGISTER}'><username>${username}</username><password>${password}</password></query></iq>`;
}

function formSet(id: string, fields: Record<string, string>, formType = REGISTER): string {
  const f = Object.entries(fields).map(([k, v]) => `<field var='${k}'><value>${v}</value></field>`).join('');
  return `<iq type='set' id='${id}'><query xmlns='${REGISTER}'><x xmlns='jabber:x:data' type='submit'>` +
    `<field type='hidden' var='FORM_TYPE'><value>${formType}</value></field>${f}</x></query></iq>`;
}

/** The defined condition and type of an error reply. */
function errorOf(reply: Element): { condition: string | undefined; type: string | undefined; text: string | undefined } {
  assert.equal(reply.attrs.type, 'error', `an error: ${reply.toString()}`);
  const error = reply.getChild('error');
  const condition = error?.getElements().find((e) => e.attrs.xmlns === STANZAS && e.name !== 'text');
  return { condition: condition?.name, type: error?.attrs.type, text: error?.getChild('text', STANZAS)?.text() };
}

async function registerRaw(port: number, user: string, password = PASSWORD): Promise<Element> {
  const { c } = await preauth(port);
  const r = await iq(c, 'r', legacySet('r', user, password));
  c.destroy();
  return r;
}

async function login(port: number, user: string, password = PASSWORD, resource?: string): Promise<RawClient> {
  const c = await connect(port);
  await c.login(user, password, resource);
  return c;
}

async function loginFails(port: number, user: string, password: string): Promise<void> {
  const { c } = await preauth(port);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
  await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/);
  c.destroy();
}

after(() => {
  for (const c of open) c.destroy();
});

/** Waits (a bounded number of turns of the event loop) for something that happens after a reply. */
async function eventually<T>(probe: () => T | undefined, turns = 500): Promise<T | undefined> {
  for (let i = 0; i < turns; i++) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}

describe('in-band registration (XEP-0077)', () => {
  let t: TestServer;
  const welcomed: Element[] = [];
  before(async () => {
    // Rate limit off here, since every test connects from 127.0.0.1; it has its own server below.
    t = await startServer({
      modules: { register: { rate_limit: { registrations: 0 }, welcome_message: { subject: 'Welcome', body: 'Hello and welcome!' } } },
    });
    // Stands in for offline storage: takes (and records) what is offered for offline accounts.
    t.server.hosts.get('localhost')?.bus.on('message/offline', (e) => {
      welcomed.push(e.stanza);
      return true;
    }, { priority: PRIORITY.FILTER });
  });
  after(() => t.stop());

  describe('before authentication', () => {
    it('advertises the stream feature over TLS and not before it', async () => {
      const c = await connect(t.port);
      const plain = await c.openStream();
      assert.doesNotMatch(plain, FEATURE);
      await c.starttls();
      assert.match(await c.openStream(), FEATURE);
    });

    it('returns the legacy fields and a data form for a get', async () => {
      const { c } = await preauth(t.port);
      const r = await iq(c, 'g1', `<iq type='get' id='g1' to='localhost'><query xmlns='${REGISTER}'/></iq>`);
      assert.equal(r.attrs.type, 'result');
      assert.equal(r.attrs.to, undefined, 'the client has no address yet');
      const q = r.getChild('query', REGISTER);
      assert.ok(q);
      assert.equal(q.getChild('registered'), undefined);
      assert.ok((q.getChildText('instructions') ?? '').length > 0);
      assert.equal(q.getChildText('username'), '');
      assert.equal(q.getChildText('password'), '');
      const form = q.getChild('x', 'jabber:x:data');
      assert.equal(form?.attrs.type, 'form');
      const fields = new Map(form?.getChildren('field').map((f) => [f.attrs.var, f]));
      assert.equal(fields.get('FORM_TYPE')?.attrs.type, 'hidden');
      assert.equal(fields.get('FORM_TYPE')?.getChildText('value'), REGISTER);
      assert.equal(fields.get('username')?.attrs.type, 'text-single');
      assert.equal(fields.get('password')?.attrs.type, 'text-private');
      assert.ok(fields.get('username')?.getChild('required'));
      assert.ok(fields.get('password')?.getChild('required'));
    });

    it('registers with the legacy fields, then the new account logs in', async () => {
      const user = fresh();
      const r = await registerRaw(t.port, user);
      assert.equal(r.attrs.type, 'result');
      assert.equal(r.getElements().length, 0);
      const c = await login(t.port, user);
      c.destroy();
    });

    it('registers with the data form (which takes precedence over legacy fields)', async () => {
      const user = fresh();
      const { c } = await preauth(t.port);
      const stanza = formSet('f1', { username: user, password: PASSWORD }).replace(`<query xmlns='${REGISTER}'>`, `<query xmlns='${REGISTER}'><username>ignored${user}</username><password>x</password>`);
      const r = await iq(c, 'f1', stanza);
      assert.equal(r.attrs.type, 'result', r.toString());
      (await login(t.port, user)).destroy();
      await loginFails(t.port, `ignored${user}`, 'x');
    });

    it('answers conflict for a taken username, without echoing the password', async () => {
      const user = fresh();
      assert.equal((await registerRaw(t.port, user)).attrs.type, 'result');
      const r = await registerRaw(t.port, user, 'another password');
      assert.equal(errorOf(r).condition, 'conflict');
      assert.equal(errorOf(r).type, 'cancel');
      assert.doesNotMatch(r.toString(), /another password/);
      // The first password still holds.
      (await login(t.port, user)).destroy();
    });

    it('allows one registration per connection (XEP-0077 §3.1.1)', async () => {
      const { c } = await preauth(t.port);
      assert.equal((await iq(c, 'a', legacySet('a', fresh(), PASSWORD))).attrs.type, 'result');
      const second = fresh();
      const r = await iq(c, 'b', legacySet('b', second, PASSWORD));
      assert.equal(errorOf(r).condition, 'not-acceptable');
      await loginFails(t.port, second, PASSWORD);
    });

    it('refuses reserved names whatever their case', async () => {
      for (const name of ['admin', 'PostMaster']) {
        const r = await registerRaw(t.port, name);
        assert.equal(errorOf(r).condition, 'not-acceptable');
        assert.match(errorOf(r).text ?? '', /reserved/);
      }
      assert.equal(await t.server.hosts.get('localhost')?.auth.userExists('admin'), false);
    });

    it('refuses usernames that are not valid localparts', async () => {
      for (const name of ['two words', 'a@b', 'x/y']) {
        const r = await registerRaw(t.port, name);
        assert.equal(errorOf(r).condition, 'not-acceptable', name);
      }
    });

    it('refuses a missing, empty or weak password', async () => {
      const user = fresh();
      const { c } = await preauth(t.port);
      const missing = await iq(c, 'm', `<iq type='set' id='m'><query xmlns='${REGISTER}'><username>${user}</username></query></iq>`);
      assert.equal(errorOf(missing).condition, 'not-acceptable');
      const empty = await iq(c, 'e', `<iq type='set' id='e'><query xmlns='${REGISTER}'><username>${user}</username><password/></query></iq>`);
      assert.equal(errorOf(empty).condition, 'not-acceptable');
      const weak = await iq(c, 'w', legacySet('w', user, 'short'));
      assert.equal(errorOf(weak).condition, 'not-acceptable');
      assert.match(errorOf(weak).text ?? '', /at least 8 characters/);
      assert.equal(await t.server.hosts.get('localhost')?.auth.userExists(user), false);
      // None of these counted as this connection's registration.
      assert.equal((await iq(c, 'ok', legacySet('ok', user, PASSWORD))).attrs.type, 'result');
    });

    it('refuses <remove/> before authentication with unexpected-request', async () => {
      const { c } = await preauth(t.port);
      const r = await iq(c, 'rm', `<iq type='set' id='rm'><query xmlns='${REGISTER}'><remove/></query></iq>`);
      assert.equal(errorOf(r).condition, 'unexpected-request');
    });

    it('answers only for this server before authentication', async () => {
      const { c } = await preauth(t.port);
      const r = await iq(c, 'o', legacySet('o', fresh(), PASSWORD, 'someone@localhost'));
      assert.equal(errorOf(r).condition, 'service-unavailable');
    });

    it('routes the welcome message to the new account, from the host', async () => {
      const user = fresh();
      await registerRaw(t.port, user);
      // The result can overtake the welcome message, which is routed after it.
      const m = await eventually(() => welcomed.find((s) => s.attrs.to === `${user}@localhost`));
      assert.ok(m, 'the welcome message was offered for the offline account');
      assert.equal(m.attrs.from, 'localhost');
      assert.equal(m.attrs.type, 'normal');
      assert.equal(m.getChildText('subject'), 'Welcome');
      assert.equal(m.getChildText('body'), 'Hello and welcome!');
    });
  });

  describe('after authentication', () => {
    it('lists jabber:iq:register in disco#info and reports the registration', async () => {
      const user = fresh();
      await t.register(user, PASSWORD);
      const c = await login(t.port, user);
      const info = await iq(c, 'd', `<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
      assert.ok(info.getChild('query')?.getChildren('feature').some((f) => f.attrs.var === REGISTER));
      const r = await iq(c, 'g', `<iq type='get' id='g'><query xmlns='${REGISTER}'/></iq>`);
      const q = r.getChild('query', REGISTER);
      assert.ok(q?.getChild('registered'), '<registered/>');
      assert.equal(q?.getChildText('username'), user);
      assert.equal(q?.getChildText('password'), '', 'the password is never returned');
      assert.ok((q?.getChildText('instructions') ?? '').length > 0);
      c.destroy();
    });

    it('changes the password; the new one logs in and the old one does not', async () => {
      const user = fresh();
      await t.register(user, PASSWORD);
      const c = await login(t.port, user);
      const r = await iq(c, 'p', legacySet('p', user, 'a brand new secret'));
      assert.equal(r.attrs.type, 'result');
      c.destroy();
      (await login(t.port, user, 'a brand new secret')).destroy();
      await loginFails(t.port, user, PASSWORD);
    });

    it('changes the password with the changepassword form, checking the old password', async () => {
      const user = fresh();
      await t.register(user, PASSWORD);
      const c = await login(t.port, user);
      const wrong = await iq(c, 'w', formSet('w', { username: `${user}@localhost`, old_password: 'not it at all', password: 'formed new secret' }, 'jabber:iq:register:changepassword'));
      assert.equal(errorOf(wrong).condition, 'not-authorized');
      const ok = await iq(c, 'k', formSet('k', { username: `${user}@localhost`, old_password: PASSWORD, password: 'formed new secret' }, 'jabber:iq:register:changepassword'));
      assert.equal(ok.attrs.type, 'result', ok.toString());
      c.destroy();
      (await login(t.port, user, 'formed new secret')).destroy();
    });

    it('refuses bad password changes and keeps the password', async () => {
      const user = fresh();
      const other = fresh();
      await t.register(user, PASSWORD);
      await t.register(other, PASSWORD);
      const c = await login(t.port, user);
      const foreign = await iq(c, 'f', legacySet('f', other, 'hijacked password'));
      assert.equal(errorOf(foreign).condition, 'forbidden');
      assert.doesNotMatch(foreign.toString(), /hijacked/, 'the error does not echo the password');
      const empty = await iq(c, 'e', `<iq type='set' id='e'><query xmlns='${REGISTER}'><username>${user}</username><password/></query></iq>`);
      assert.equal(errorOf(empty).condition, 'bad-request');
      const noUser = await iq(c, 'n', `<iq type='set' id='n'><query xmlns='${REGISTER}'><password>no username here</password></query></iq>`);
      assert.equal(errorOf(noUser).condition, 'bad-request');
      const weak = await iq(c, 'k', legacySet('k', user, 'weak'));
      assert.equal(errorOf(weak).condition, 'not-acceptable');
      c.destroy();
      (await login(t.port, user)).destroy();
      (await login(t.port, other)).destroy();
    });

    it("answers service-unavailable for another account's bare JID", async () => {
      const user = fresh();
      const other = fresh();
      await t.register(user, PASSWORD);
      await t.register(other, PASSWORD);
      const c = await login(t.port, user);
      const r = await iq(c, 'x', `<iq type='set' id='x' to='${other}@localhost'><query xmlns='${REGISTER}'><remove/></query></iq>`);
      assert.equal(errorOf(r).condition, 'service-unavailable');
      c.destroy();
      (await login(t.port, other)).destroy();
    });

    it('cancels: result first, then not-authorized closes every session, and the account is gone', async () => {
      const user = fresh();
      await t.register(user, PASSWORD);
      const other = await login(t.port, user, PASSWORD, 'other');
      const c = await login(t.port, user, PASSWORD, 'main');
      const removed: string[] = [];
      t.server.hosts.get('localhost')?.bus.on('account/removed', (e) => {
        removed.push(e.user.toString());
      });
      c.send(`<iq type='set' id='unreg1'><query xmlns='${REGISTER}'><remove/></query></iq>`);
      await c.expect(/<iq type="result" id="unreg1"[^>]*\/>/);
      await c.expect(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await c.closed();
      await other.expect(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await other.closed();
      assert.deepEqual(removed, [`${user}@localhost`]);
      assert.equal(await t.server.hosts.get('localhost')?.auth.userExists(user), false);
      await loginFails(t.port, user, PASSWORD);
    });

    it('refuses <remove/> with other children (bad-request) and keeps the account', async () => {
      const user = fresh();
      await t.register(user, PASSWORD);
      const c = await login(t.port, user);
      const r = await iq(c, 'b', `<iq type='set' id='b'><query xmlns='${REGISTER}'><remove/><username>${user}</username></query></iq>`);
      assert.equal(errorOf(r).condition, 'bad-request');
      c.destroy();
      (await login(t.port, user)).destroy();
    });

    it('cancels with the cancel form', async () => {
      const user = fresh();
      await t.register(user, PASSWORD);
      const c = await login(t.port, user);
      const r = await iq(c, 'cf', formSet('cf', { username: user, password: PASSWORD }, 'jabber:iq:register:cancel'));
      assert.equal(r.attrs.type, 'result');
      await c.closed();
      await loginFails(t.port, user, PASSWORD);
    });
  });
});

describe('in-band registration: the welcome message with offline storage', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ modules: { register: { welcome_message: { body: 'Welcome aboard' } } } });
  });
  after(() => t.stop());

  it('is kept for the new account and delivered at its first login', async () => {
    const user = fresh('welcome');
    assert.equal((await registerRaw(t.port, user)).attrs.type, 'result');
    const c = await login(t.port, user);
    c.send('<presence/>');
    const m = parseElement((await c.expect(/<message\b[^>]*>[\s\S]*?<\/message>/))[0]);
    assert.equal(m?.attrs.from, 'localhost');
    assert.equal(m?.getChildText('body'), 'Welcome aboard');
    c.destroy();
  });
});

describe('in-band registration: rate limit per address', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ modules: { register: null } });
  });
  after(() => t.stop());

  it('counts only successful registrations, then refuses with resource-constraint', async () => {
    const failed = await registerRaw(t.port, fresh('rl'), 'weak');
    assert.equal(errorOf(failed).condition, 'not-acceptable');
    const first = fresh('rl');
    assert.equal((await registerRaw(t.port, first)).attrs.type, 'result', 'a failure does not spend the budget');
    const second = fresh('rl');
    const r = await registerRaw(t.port, second);
    assert.equal(errorOf(r).condition, 'resource-constraint');
    assert.equal(errorOf(r).type, 'wait');
    await loginFails(t.port, second, PASSWORD);
    (await login(t.port, first)).destroy();
  });
});

describe('in-band registration: access rules and configuration', () => {
  it('refuses a denied network: no feature, not-allowed for get and set', async () => {
    const t = await startServer({ access: { register: ['deny'] } });
    try {
      const { c, features } = await preauth(t.port);
      assert.doesNotMatch(features, FEATURE);
      assert.match(features, /<mechanisms/);
      const g = await iq(c, 'g', `<iq type='get' id='g'><query xmlns='${REGISTER}'/></iq>`);
      assert.equal(errorOf(g).condition, 'not-allowed');
      const user = fresh('denied');
      const s = await iq(c, 's', legacySet('s', user, PASSWORD));
      assert.equal(errorOf(s).condition, 'not-allowed');
      assert.equal(await t.server.hosts.get('localhost')?.auth.userExists(user), false);
      // Registered users still manage their account.
      await t.register('keeper', PASSWORD);
      const k = await login(t.port, 'keeper');
      assert.equal((await iq(k, 'p', legacySet('p', 'keeper', 'the next password'))).attrs.type, 'result');
    } finally {
      await t.stop();
    }
  });

  it('names the access rule in a module option', async () => {
    const t = await startServer({ access: { signup: ['deny'] }, modules: { register: { access: 'signup' } } });
    try {
      const { features } = await preauth(t.port);
      assert.doesNotMatch(features, FEATURE);
    } finally {
      await t.stop();
    }
  });

  it('refuses to start with an unknown access rule or bad options', async () => {
    await assert.rejects(startServer({ modules: { register: { access: 'nonexistent' } } }), /no access rule named "nonexistent"/);
    await assert.rejects(startServer({ modules: { register: { min_password_length: 0 } } }), /modules\.register\.min_password_length/);
    await assert.rejects(startServer({ modules: { register: { surprise: true } } }), /modules\.register/);
  });

  it('over an unencrypted stream (STARTTLS optional): no feature, and a get is refused', async () => {
    const t = await startServer({ listen: { c2s: { port: 0, bind: '127.0.0.1', starttls: 'optional' } } });
    try {
      const c = await connect(t.port);
      const features = await c.openStream();
      assert.match(features, /<mechanisms/);
      assert.doesNotMatch(features, FEATURE);
      const g = await iq(c, 'g', `<iq type='get' id='g'><query xmlns='${REGISTER}'/></iq>`);
      assert.equal(errorOf(g).condition, 'not-authorized');
      await c.starttls();
      assert.match(await c.openStream(), FEATURE);
    } finally {
      await t.stop();
    }
  });

  it('disabled: no feature; service-unavailable once authenticated; the core refuses pre-auth stanzas', async () => {
    const t = await startServer({ modules: { register: false } });
    try {
      const { c, features } = await preauth(t.port);
      assert.doesNotMatch(features, FEATURE);
      await t.register('someone', PASSWORD);
      const s = await login(t.port, 'someone');
      const r = await iq(s, 'g', `<iq type='get' id='g'><query xmlns='${REGISTER}'/></iq>`);
      assert.equal(errorOf(r).condition, 'service-unavailable');
      const p = await iq(s, 'p', legacySet('p', 'someone', 'the next password'));
      assert.equal(errorOf(p).condition, 'service-unavailable');
      // Without the module nothing answers stanzas before authentication: the core ends the stream.
      c.send(`<iq type='get' id='x'><query xmlns='${REGISTER}'/></iq>`);
      await c.expect(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    } finally {
      await t.stop();
    }
  });
});

describe('in-band registration with xmpp.js', () => {
  // xmpp.js 0.14 has no XEP-0077 package (nothing under node_modules/@xmpp speaks jabber:iq:register), so the
  // account is created over a raw socket and xmpp.js does what a client does after logging in.
  let t: TestServer;
  before(async () => {
    t = await startServer({ modules: { register: { rate_limit: { registrations: 0 } } } });
  });
  after(() => t.stop());

  it('logs in with a new account, changes the password, logs in again, then cancels', async () => {
    const user = fresh('js');
    assert.equal((await registerRaw(t.port, user)).attrs.type, 'result');
    const a = await connectClient({ port: t.port, username: user, password: PASSWORD, resource: 'js' });
    try {
      assert.equal(a.jid, `${user}@localhost/js`);
      const info = await a.xmpp.iqCaller.request(xxml('iq', { type: 'get', to: 'localhost' }, xxml('query', { xmlns: REGISTER })));
      assert.ok(info.getChild('query', REGISTER)?.getChild('registered'));
      await a.xmpp.iqCaller.request(xxml('iq', { type: 'set', to: 'localhost' },
        xxml('query', { xmlns: REGISTER }, xxml('username', {}, user), xxml('password', {}, 'changed by xmpp.js'))));
    } finally {
      await a.stop();
    }
    await assert.rejects(connectClient({ port: t.port, username: user, password: PASSWORD }), /not-authorized/);
    const b = await connectClient({ port: t.port, username: user, password: 'changed by xmpp.js', resource: 'again' });
    try {
      const done = await b.xmpp.iqCaller.request(xxml('iq', { type: 'set' }, xxml('query', { xmlns: REGISTER }, xxml('remove'))));
      assert.equal(done.attrs.type, 'result');
    } finally {
      await b.stop();
    }
    await assert.rejects(connectClient({ port: t.port, username: user, password: 'changed by xmpp.js' }), /not-authorized/);
  });
});

describe('registration policy helpers', () => {
  it('keys IPv4 by address and IPv6 by /64', () => {
    assert.equal(rateKey('192.0.2.7'), '192.0.2.7');
    assert.equal(rateKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(rateKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(rateKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(rateKey('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(rateKey('::1'), '0:0:0:0::/64');
    assert.equal(rateKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  });

  it('limits reservations per key within the window and gives released slots back', () => {
    let now = 0;
    const limit = new RegistrationRateLimit({ count: 2, windowMs: 1000, now: () => now });
    const r1 = limit.reserve('192.0.2.1');
    assert.ok(r1);
    assert.ok(limit.reserve('192.0.2.1'));
    assert.equal(limit.reserve('192.0.2.1'), undefined, 'the budget is spent');
    assert.ok(limit.reserve('192.0.2.2'), 'another address has its own budget');
    r1();
    assert.ok(limit.reserve('192.0.2.1'), 'a released slot can be used again');
    assert.equal(limit.reserve('192.0.2.1'), undefined);
    assert.equal(limit.reserve('2001:db8::1') !== undefined && limit.reserve('2001:db8::2') !== undefined, true);
    assert.equal(limit.reserve('2001:db8::3'), undefined, 'the /64 shares one budget');
    now = 1000;
    assert.ok(limit.reserve('192.0.2.1'), 'the window has passed');
  });

  it('bounds memory: prunes expired keys and forgets the oldest beyond the cap', () => {
    let now = 0;
    const limit = new RegistrationRateLimit({ count: 1, windowMs: 1000, maxKeys: 3, now: () => now });
    for (let i = 1; i <= 5; i++) {
      now = i;
      limit.reserve(`198.51.100.${i}`);
    }
    assert.equal(limit.size, 3);
    assert.ok(limit.reserve('198.51.100.1'), 'the oldest address was forgotten');
    assert.equal(limit.reserve('198.51.100.5'), undefined, 'a recent one is remembered');
    now = 5000;
    limit.prune();
    assert.equal(limit.size, 0);
  });

  it('checks password length in code points and, when asked, an entropy estimate', () => {
    assert.throws(() => checkPassword('1234567', { minLength: 8, minEntropy: 0 }), /at least 8 characters/);
    assert.doesNotThrow(() => checkPassword('\u{1F600}'.repeat(8), { minLength: 8, minEntropy: 0 }));
    assert.throws(() => checkPassword('\u{1F600}'.repeat(7), { minLength: 8, minEntropy: 0 }));
    assert.equal(passwordEntropy(''), 0);
    assert.equal(Math.round(passwordEntropy('abcdefgh')), Math.round(8 * Math.log2(26)));
    assert.equal(Math.round(passwordEntropy('aB3$')), Math.round(4 * Math.log2(95)));
    assert.throws(() => checkPassword('aaaaaaaaaa', { minLength: 8, minEntropy: 60 }), /too weak/);
    assert.doesNotThrow(() => checkPassword('Tr0ub4dor&3xyz', { minLength: 8, minEntropy: 60 }));
  });
});
