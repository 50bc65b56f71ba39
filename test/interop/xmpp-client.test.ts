// A new user's path with an independent client library: STARTTLS, SCRAM, roster, subscriptions, presence, chat.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectClient, xml, type TestClient } from '../helpers/xmpp-client.ts';

describe('interop with xmpp.js', () => {
  let t: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    // SCRAM-SHA-1 only: proves the login used SCRAM (xmpp.js also speaks PLAIN).
    t = await startServer({ auth: { mechanisms: ['SCRAM-SHA-1'] } });
    await t.register('alice', 'alice-secret');
    await t.register('bob', 'bob-secret');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('logs in over STARTTLS with SCRAM-SHA-1 and binds the requested resource', async () => {
    const alice = await connectClient({ port: t.port, username: 'alice', password: 'alice-secret', resource: 'laptop' });
    clients.push(alice);
    assert.equal(alice.jid, 'alice@localhost/laptop');
    const session = [...t.server.sessions.sessions()].find((s) => s.jid?.toString() === 'alice@localhost/laptop');
    assert.ok(session?.secure, 'the session runs over TLS');
    await alice.stop();
  });

  it('refuses a wrong password', async () => {
    await assert.rejects(connectClient({ port: t.port, username: 'alice', password: 'wrong' }), /not-authorized/);
  });

  it('logs in over direct TLS (XEP-0368)', async () => {
    const c = await connectClient({ port: t.tlsPort, username: 'bob', password: 'bob-secret', directTls: true, resource: 'tls' });
    clients.push(c);
    assert.equal(c.jid, 'bob@localhost/tls');
    await c.stop();
  });

  it('two users add each other, see presence and exchange messages', async () => {
    const alice = await connectClient({ port: t.port, username: 'alice', password: 'alice-secret', resource: 'a' });
    const bob = await connectClient({ port: t.port, username: 'bob', password: 'bob-secret', resource: 'b' });
    clients.push(alice, bob);
    for (const c of [alice, bob]) {
      const roster = await c.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
      assert.equal(roster.getChild('query', 'jabber:iq:roster')?.getChildren('item').length, 0);
      await c.xmpp.send(xml('presence'));
      await c.next((s) => s.is('presence') && s.attrs.from === c.jid); // own presence echoed
    }

    // Alice asks to see Bob's presence; her roster gets a pending item.
    await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
    const push = await alice.next((s) => s.is('iq') && s.attrs.type === 'set');
    const pushed = push.getChild('query', 'jabber:iq:roster')?.getChild('item');
    assert.equal(pushed?.attrs.jid, 'bob@localhost');
    assert.equal(pushed?.attrs.ask, 'subscribe');
    assert.equal(pushed?.attrs.subscription, 'none');

    const request = await bob.next((s) => s.is('presence') && s.attrs.type === 'subscribe');
    assert.equal(request.attrs.from, 'alice@localhost');

    // Bob approves and asks back; Alice approves.
    await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
    await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
    await alice.next((s) => s.is('presence') && s.attrs.type === 'subscribed' && s.attrs.from === 'bob@localhost');
    // Bob's current presence follows the approval.
    await alice.next((s) => s.is('presence') && s.attrs.type === undefined && s.attrs.from === 'bob@localhost/b');
    await alice.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost');
    await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
    await bob.next((s) => s.is('presence') && s.attrs.type === undefined && s.attrs.from === 'alice@localhost/a');

    const aliceRoster = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.equal(aliceRoster.getChild('query')?.getChild('item')?.attrs.subscription, 'both');
    const bobRoster = await bob.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
    assert.equal(bobRoster.getChild('query')?.getChild('item')?.attrs.subscription, 'both');

    await alice.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'Hi Bob')));
    const m1 = await bob.next((s) => s.is('message'));
    assert.equal(m1.getChildText('body'), 'Hi Bob');
    assert.equal(m1.attrs.from, 'alice@localhost/a');
    await bob.xmpp.send(xml('message', { to: m1.attrs.from, type: 'chat', id: 'm2' }, xml('body', {}, 'Hi Alice')));
    const m2 = await alice.next((s) => s.is('message'));
    assert.equal(m2.getChildText('body'), 'Hi Alice');
    assert.equal(m2.attrs.from, 'bob@localhost/b');

    // Bob leaves: Alice sees him go.
    await bob.stop();
    await alice.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'bob@localhost/b');
  });
});
