// RFC 6120 §8 and RFC 6121 §8: stamping, addressing, delivery by priority, and the errors the spec names.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { Jid } from '../../src/xmpp/jid.ts';

const stanzaError = (condition: string): RegExp => new RegExp(`<error type="\\w+"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>`);

describe('routing', () => {
  let t: TestServer;
  const open: RawClient[] = [];
  before(async () => {
    // Without offline storage, so the bare RFC 6121 rules show.
    // The tests keep alice's sessions open: more resources than the default per-account cap.
    t = await startServer({ modules: { offline: false }, limits: { max_sessions_per_account: 0 } });
    for (const u of ['alice', 'bob', 'carol']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.destroy();
    await t.stop();
  });

  async function login(user: string, resource: string, presence?: string): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(user, 'pw', resource);
    if (presence !== undefined) {
      c.send(presence);
      await c.expect(new RegExp(`<presence[^>]*from="${user}@localhost/${resource}"`));
    }
    return c;
  }

  it('stamps from with the sender full JID, whatever the client claims', async () => {
    const bob = await login('bob', 'r1', '<presence/>');
    const alice = await login('alice', 'r1');
    alice.send(`<message to='bob@localhost' from='carol@localhost/fake' type='chat' id='s1'><body>spoof</body></message>`);
    const m = await bob.expect(/<message[^>]*id="s1"[^>]*>/);
    assert.match(m[0], /from="alice@localhost\/r1"/);
    assert.doesNotMatch(m[0], /carol/);
  });

  it('normalizes the to address and answers jid-malformed for an invalid one', async () => {
    const bob = await login('bob', 'norm', '<presence/>');
    const alice = await login('alice', 'norm');
    alice.send(`<message to='BOB@LocalHost/norm' type='chat' id='n1'><body>x</body></message>`);
    const m = await bob.expect(/<message[^>]*id="n1"[^>]*>/);
    assert.match(m[0], /to="bob@localhost\/norm"/);
    alice.send(`<message to='a@b@c' type='chat' id='bad1'><body>x</body></message>`);
    const e = await alice.expect(/<message[^>]*id="bad1"[\s\S]*?<\/message>/);
    assert.match(e[0], stanzaError('jid-malformed'));
  });

  it('answers a message to an unknown user with service-unavailable', async () => {
    const alice = await login('alice', 'unk');
    alice.send(`<message to='nobody@localhost' type='chat' id='u1'><body>x</body></message>`);
    const e = await alice.expect(/<message[^>]*id="u1"[\s\S]*?<\/message>/);
    assert.match(e[0], /type="error"/);
    assert.match(e[0], /from="nobody@localhost"/);
    assert.match(e[0], stanzaError('service-unavailable'));
  });

  it('bounces chat to an account with no available resource (no offline storage loaded)', async () => {
    const alice = await login('alice', 'off');
    alice.send(`<message to='carol@localhost' type='chat' id='o1'><body>x</body></message>`);
    const e = await alice.expect(/<message[^>]*id="o1"[\s\S]*?<\/message>/);
    assert.match(e[0], stanzaError('service-unavailable'));
  });

  it('answers an unknown IQ namespace with service-unavailable and IQs to the bare JID on the account\'s behalf', async () => {
    const alice = await login('alice', 'iq');
    alice.send(`<iq type='get' id='q1' to='localhost'><query xmlns='urn:example:nothing'/></iq>`);
    assert.match((await alice.expect(/<iq[^>]*id="q1"[\s\S]*?<\/iq>/))[0], stanzaError('service-unavailable'));
    alice.send(`<iq type='get' id='q2' to='bob@localhost'><query xmlns='urn:example:nothing'/></iq>`);
    const e = await alice.expect(/<iq[^>]*id="q2"[\s\S]*?<\/iq>/);
    assert.match(e[0], /from="bob@localhost"/);
    assert.match(e[0], stanzaError('service-unavailable'));
    alice.send(`<iq type='get' id='q3' to='bob@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const info = await alice.expect(/<iq[^>]*id="q3"[\s\S]*?<\/iq>/);
    assert.match(info[0], /type="result"/);
    assert.match(info[0], /<identity category="account" type="registered"\/>/);
    alice.send(`<iq type='get' id='q4' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await alice.expect(/<iq type="result" id="q4" to="alice@localhost\/iq" from="localhost"\/>/);
  });

  it('answers a malformed IQ with bad-request and never answers an error with an error', async () => {
    const alice = await login('alice', 'bad');
    alice.send(`<iq type='get' id='b1' to='localhost'/>`);
    assert.match((await alice.expect(/<iq[^>]*id="b1"[\s\S]*?<\/iq>/))[0], stanzaError('bad-request'));
    alice.send(`<iq type='fetch' id='b2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.match((await alice.expect(/<iq[^>]*id="b2"[\s\S]*?<\/iq>/))[0], stanzaError('bad-request'));
    alice.send(`<message to='nobody@localhost' type='error' id='e1'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    alice.send(`<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await alice.expect(/<iq type="result" id="after"/);
    assert.doesNotMatch(alice.buffer, /id="e1"/);
  });

  it('delivers to the highest-priority resources and never to a negative priority', async () => {
    const low = await login('carol', 'low', `<presence><priority>1</priority></presence>`);
    const high = await login('carol', 'high', `<presence><priority>5</priority></presence>`);
    const neg = await login('carol', 'neg', `<presence><priority>-1</priority></presence>`);
    const alice = await login('alice', 'prio');
    alice.send(`<message to='carol@localhost' type='chat' id='p1'><body>top</body></message>`);
    await high.expect(/id="p1"/);
    alice.send(`<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await alice.expect(/id="sync"/);
    await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(low.buffer, /id="p1"/);
    assert.doesNotMatch(neg.buffer, /id="p1"/);
    // A full JID reaches that resource, whatever its priority.
    alice.send(`<message to='carol@localhost/neg' type='chat' id='p2'><body>direct</body></message>`);
    await neg.expect(/id="p2"/);
    // A chat to a resource that is gone is treated as sent to the bare JID.
    alice.send(`<message to='carol@localhost/gone' type='chat' id='p3'><body>x</body></message>`);
    await high.expect(/id="p3"/);
    for (const c of [low, high, neg]) c.destroy();
  });

  it('an IQ to an offline full JID gets service-unavailable', async () => {
    const alice = await login('alice', 'iqoff');
    alice.send(`<iq type='get' id='f1' to='bob@localhost/nowhere'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.match((await alice.expect(/<iq[^>]*id="f1"[\s\S]*?<\/iq>/))[0], stanzaError('service-unavailable'));
  });

  it('a second session with the same full JID replaces the first, which gets conflict', async () => {
    const first = await login('alice', 'dup');
    const second = await login('alice', 'dup');
    await first.expect(/<stream:error><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await first.closed();
    second.send(`<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await second.expect(/id="alive"/);
    assert.equal(t.server.sessions.resources(Jid.parse('alice@localhost')).filter((s) => s.jid?.resource === 'dup').length, 1);
  });

  it('a message to a remote domain gets remote-server-not-found', async () => {
    const alice = await login('alice', 'remote');
    alice.send(`<message to='someone@example.org' type='chat' id='r1'><body>x</body></message>`);
    assert.match((await alice.expect(/<message[^>]*id="r1"[\s\S]*?<\/message>/))[0], stanzaError('remote-server-not-found'));
  });

  it('unknown extensions pass through untouched', async () => {
    const bob = await login('bob', 'ext', '<presence/>');
    const alice = await login('alice', 'ext');
    alice.send(`<message to='bob@localhost/ext' type='chat' id='x1'><body>a &amp; b &lt; c</body><custom xmlns='urn:example:x' a='1'><deep><deeper>v</deeper></deep></custom></message>`);
    const m = await bob.expect(/<message[^>]*id="x1"[\s\S]*?<\/message>/);
    assert.match(m[0], /<body>a &amp; b &lt; c<\/body><custom xmlns="urn:example:x" a="1"><deep><deeper>v<\/deeper><\/deep><\/custom>/);
  });
});
