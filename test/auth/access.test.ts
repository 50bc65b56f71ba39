// Access rules, brute-force protection and anonymous logins.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AccessControl } from '../../src/auth/access.ts';
import { LoginFailures } from '../../src/auth/login-failures.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { startServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const plain = (user: string, pw: string): string => `<auth xmlns='${SASL}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${pw}`).toString('base64')}</auth>`;

describe('access control', () => {
  it('has defaults: anyone may log in, registration from loopback, admin from the admins list', () => {
    const ac = new AccessControl(parseConfig({ admins: ['boss@localhost'] }));
    const alice = Jid.parse('alice@localhost');
    assert.equal(ac.allowed('c2s', { jid: alice, ip: '203.0.113.9', host: 'localhost' }), true);
    assert.equal(ac.allowed('register', { ip: '127.0.0.1', host: 'localhost' }), true);
    assert.equal(ac.allowed('register', { ip: '::ffff:127.0.0.5', host: 'localhost' }), true);
    assert.equal(ac.allowed('register', { ip: '::1', host: 'localhost' }), true);
    assert.equal(ac.allowed('register', { ip: '192.0.2.1', host: 'localhost' }), false);
    assert.equal(ac.allowed('admin', { jid: Jid.parse('Boss@LocalHost'), host: 'localhost' }), true);
    assert.equal(ac.allowed('admin', { jid: alice, host: 'localhost' }), false);
    assert.equal(ac.allowed('no-such-rule', { jid: alice, host: 'localhost' }), false);
  });

  it('matches users, servers and networks, first entry wins', () => {
    const ac = new AccessControl(parseConfig({
      hosts: ['localhost', 'app.test'],
      acl: { blocked: { user: ['mallory', 'eve@app.test'] }, app: { server: ['app.test'] }, office: { ip: ['10.1.0.0/16', '2001:db8::/32'] } },
      access: { c2s: [{ deny: 'blocked' }, { allow: 'app' }, { allow: 'office' }, 'deny'] },
    }));
    const check = (jid: string, ip: string): boolean => ac.allowed('c2s', { jid: Jid.parse(jid), ip, host: 'localhost' });
    assert.equal(check('mallory@localhost', '10.1.2.3'), false);
    assert.equal(check('mallory@app.test', '10.1.2.3'), false);
    assert.equal(check('eve@app.test', '10.1.2.3'), false);
    assert.equal(check('eve@localhost', '10.1.2.3'), true);
    assert.equal(check('bob@app.test', '192.0.2.1'), true);
    assert.equal(check('bob@localhost', '2001:db8::7'), true);
    assert.equal(check('bob@localhost', '192.0.2.1'), false);
  });

  it('lets a host have its own ACLs, rules and admins', () => {
    const ac = new AccessControl(parseConfig({
      hosts: ['localhost', 'app.test'],
      admins: ['root@localhost'],
      host_config: {
        'app.test': {
          acl: { staff: { server: ['localhost'] } },
          access: { c2s: [{ allow: 'staff' }, 'deny'], register: ['allow'] },
          admins: ['ops@app.test'],
        },
      },
    }));
    const app = (jid: string, rule: string, ip = '192.0.2.1'): boolean => ac.allowed(rule, { jid: Jid.parse(jid), ip, host: 'app.test' });
    const local = (jid: string, rule: string, ip = '192.0.2.1'): boolean => ac.allowed(rule, { jid: Jid.parse(jid), ip, host: 'localhost' });
    assert.equal(app('bob@app.test', 'c2s'), false);
    assert.equal(app('alice@localhost', 'c2s'), true);
    assert.equal(local('bob@app.test', 'c2s'), true);
    assert.equal(app('x@app.test', 'register'), true);
    assert.equal(local('x@localhost', 'register'), false);
    assert.equal(app('ops@app.test', 'admin'), true);
    assert.equal(app('root@localhost', 'admin'), true);
    assert.equal(local('ops@app.test', 'admin'), false);
    assert.throws(() => new AccessControl(parseConfig({ host_config: { x: { access: { c2s: [{ allow: 'ghost' }] } } } })), /host_config\.x\.access\.c2s: unknown acl ghost/);
  });

  it('refuses rules naming unknown ACLs and bad networks at start-up', () => {
    assert.throws(() => new AccessControl(parseConfig({ access: { c2s: [{ allow: 'nobody-defined-this' }] } })), (e: unknown) => e instanceof ConfigError && /access\.c2s: unknown acl/.test(e.message));
    assert.throws(() => new AccessControl(parseConfig({ acl: { x: { ip: ['10.0.0.0/33'] } } })), /acl\.x\.ip/);
  });
});

describe('failed login tracking', () => {
  it('bans an address after the threshold for the ban time, and counts within the window only', () => {
    let now = 0;
    const f = new LoginFailures({ max_failures: 3, window: 60, ban_seconds: 100 }, () => now);
    assert.equal(f.recordFailure('192.0.2.1', 'alice'), false);
    now += 61_000; // outside the window: the count starts again
    assert.equal(f.recordFailure('192.0.2.1'), false);
    assert.equal(f.recordFailure('192.0.2.1'), false);
    assert.equal(f.isBanned('192.0.2.1'), false);
    assert.equal(f.recordFailure('::ffff:192.0.2.1'), true);
    assert.equal(f.isBanned('192.0.2.1'), true);
    assert.equal(f.isBanned('192.0.2.2'), false);
    now += 100_001;
    assert.equal(f.isBanned('192.0.2.1'), false);
    assert.equal(f.accountFailures('alice'), 1);
  });

  it('refuses an address after repeated failures, with a text, while the account still logs in from elsewhere', async () => {
    const t = await startServer({ auth: { brute_force: { max_failures: 3, window: 600, ban_seconds: 600 } } });
    try {
      await t.register('alice', 'right');
      const c = await RawClient.connect(t.port, { localAddress: '127.0.0.2' });
      await c.openStream();
      await c.starttls();
      await c.openStream();
      for (let i = 0; i < 3; i++) {
        c.send(plain('alice', 'wrong'));
        await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure>/);
      }
      c.send(plain('alice', 'right'));
      const refused = await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><text[^>]*>([^<]+)<\/text><\/failure>/);
      assert.match(refused[1] as string, /Too many failed logins/);
      c.destroy();
      const other = await RawClient.connect(t.port, { localAddress: '127.0.0.3' });
      assert.equal(await other.login('alice', 'right', 'elsewhere'), 'alice@localhost/elsewhere');
      other.destroy();
    } finally {
      await t.stop();
    }
  });

  it('refuses a login the c2s rule denies', async () => {
    const t = await startServer({ acl: { blocked: { user: ['mallory'] } }, access: { c2s: [{ deny: 'blocked' }, 'allow'] } });
    try {
      await t.register('mallory', 'pw');
      await t.register('alice', 'pw');
      const c = await RawClient.connect(t.port);
      await c.openStream();
      await c.starttls();
      await c.openStream();
      c.send(plain('mallory', 'pw'));
      await c.expect(/<not-authorized\/><text[^>]*>Login not allowed by service policy<\/text>/);
      c.destroy();
      const ok = await RawClient.connect(t.port);
      assert.equal(await ok.login('alice', 'pw', 'r'), 'alice@localhost/r');
      ok.destroy();
    } finally {
      await t.stop();
    }
  });
});

describe('anonymous logins', () => {
  it('offers ANONYMOUS only where configured, and gives each guest a fresh JID', async () => {
    const plainHost = await startServer();
    try {
      const c = await RawClient.connect(plainHost.port);
      await c.openStream();
      await c.starttls();
      assert.doesNotMatch(await c.openStream(), /ANONYMOUS/);
      c.destroy();
    } finally {
      await plainHost.stop();
    }
    const t = await startServer({ auth: { methods: ['internal', 'anonymous'] } });
    try {
      await t.register('alice', 'pw');
      const alice = await RawClient.connect(t.port);
      await alice.login('alice', 'pw', 'a');
      alice.send('<presence/>');
      await alice.expect(/<presence from="alice@localhost\/a"/);
      const jids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const g = await RawClient.connect(t.port);
        await g.openStream();
        await g.starttls();
        assert.match(await g.openStream(), /<mechanism>ANONYMOUS<\/mechanism>/);
        g.send(`<auth xmlns='${SASL}' mechanism='ANONYMOUS'/>`);
        await g.expect(/<success/);
        await g.openStream();
        g.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
        const m = await g.expect(/<jid>([^<]+)<\/jid>/);
        jids.push(m[1] as string);
        g.send(`<message to='alice@localhost' type='chat' id='g${i}'><body>hello from a guest</body></message>`);
        await alice.expect(new RegExp(`<message[^>]*id="g${i}"[^>]*from="${(m[1] as string).replace(/[.]/g, '\\.')}"`));
        g.destroy();
      }
      assert.notEqual(jids[0], jids[1]);
      for (const j of jids) assert.match(j, /^guest-[0-9a-f]{16}@localhost\//);
    } finally {
      await t.stop();
    }
  });
});
