// XEP-0280 Message Carbons: sent and received copies across three resources, private messages, disabling.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../helpers/fixture.ts';
import { xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import { carbonEligible, carbonCopy } from '../../src/modules/carbons.ts';
import { parseElement } from '../../src/xml/parse.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import type { Element } from '../../src/xml/element.ts';

const CARBONS = 'urn:xmpp:carbons:2';
const FORWARD = 'urn:xmpp:forward:0';

/** The forwarded message inside a carbon of the given kind, or undefined. */
function forwarded(s: Stanza, kind: 'sent' | 'received'): Stanza | undefined {
  return s.getChild(kind, CARBONS)?.getChild('forwarded', FORWARD)?.getChild('message') as Stanza | undefined;
}
const isCarbon = (kind: 'sent' | 'received', body: string) => (s: Stanza): boolean =>
  s.is('message') && forwarded(s, kind)?.getChildText('body') === body;
const isPlain = (body: string) => (s: Stanza): boolean => s.is('message') && s.getChildText('body') === body;

const el = (s: string): Element => {
  const e = parseElement(s);
  assert.ok(e);
  return e;
};

describe('message carbons', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start();
  });
  after(async () => {
    await f.stop();
  });

  async function enable(c: TestClient, on = true): Promise<void> {
    const r = await c.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml(on ? 'enable' : 'disable', { xmlns: CARBONS })));
    assert.equal(r.attrs.type, 'result');
  }
  async function online(c: TestClient, priority = 0): Promise<void> {
    await c.xmpp.send(xml('presence', {}, xml('priority', {}, String(priority))));
    await c.next((s) => s.is('presence') && s.attrs.from === c.jid);
  }
  /** A round trip to the server: what was queued for this client before it has arrived. */
  async function sync(c: TestClient): Promise<void> {
    await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  }

  async function setup(): Promise<{ alice: string; bob: string; r1: TestClient; r2: TestClient; r3: TestClient; b: TestClient }> {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const r1 = await f.client(alice, 'r1');
    const r2 = await f.client(alice, 'r2');
    const r3 = await f.client(alice, 'r3');
    const b = await f.client(bob, 'b');
    await enable(r1);
    await enable(r2);
    // r1 has the highest priority: messages to the bare JID go to it alone.
    await online(r1, 5);
    await online(r2, 0);
    await online(r3, 0);
    await online(b);
    return { alice, bob, r1, r2, r3, b };
  }

  it('advertises urn:xmpp:carbons:2 on the server', async () => {
    const [u] = await f.users('disco') as [string];
    const c = await f.client(u);
    const r = await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const features = r.getChild('query')?.getChildren('feature').map((x) => x.attrs.var) ?? [];
    assert.ok(features.includes(CARBONS));
  });

  it('copies received messages to the enabled resources that did not get them, wrapped as the XEP says', async () => {
    const { alice, bob, r1, r2, r3, b } = await setup();
    // To a full JID: r1 gets the original, r2 (enabled) a copy, r3 (not enabled) nothing.
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r1`, type: 'chat', id: 'm1' }, xml('body', {}, 'to r1')));
    const orig = await r1.next(isPlain('to r1'));
    assert.equal(orig.attrs.from, `${bob}@localhost/b`);
    const copy = await r2.next(isCarbon('received', 'to r1'));
    assert.equal(copy.attrs.from, `${alice}@localhost`);
    assert.equal(copy.attrs.to, `${alice}@localhost/r2`);
    assert.equal(copy.attrs.type, 'chat');
    const inner = forwarded(copy, 'received');
    assert.equal(inner?.attrs.from, `${bob}@localhost/b`);
    assert.equal(inner?.attrs.to, `${alice}@localhost/r1`);
    assert.equal(inner?.attrs.id, 'm1');

    // To the bare JID: the highest-priority resource gets it, the other enabled one a copy.
    await b.xmpp.send(xml('message', { to: `${alice}@localhost`, type: 'chat' }, xml('body', {}, 'to bare')));
    await r1.next(isPlain('to bare'));
    await r2.next(isCarbon('received', 'to bare'));
    await sync(r1);
    await sync(r3);
    assert.ok(!r1.inbox.some(isCarbon('received', 'to r1')), 'the addressed resource gets no copy');
    assert.ok(!r1.inbox.some(isCarbon('received', 'to bare')));
    assert.ok(!r3.inbox.some((s) => isCarbon('received', 'to r1')(s) || isCarbon('received', 'to bare')(s)), 'a resource without carbons gets none');
  });

  it('copies sent messages to the other enabled resources, whether or not the sender enabled carbons', async () => {
    const { alice, bob, r1, r2, r3, b } = await setup();
    // r3 has not enabled carbons: its message is still copied to r1 and r2.
    await r3.xmpp.send(xml('message', { to: `${bob}@localhost`, type: 'chat', id: 's1' }, xml('body', {}, 'from r3')));
    await b.next(isPlain('from r3'));
    for (const c of [r1, r2]) {
      const copy = await c.next(isCarbon('sent', 'from r3'));
      assert.equal(copy.attrs.from, `${alice}@localhost`);
      assert.equal(copy.attrs.to, c.jid);
      const inner = forwarded(copy, 'sent');
      assert.equal(inner?.attrs.from, `${alice}@localhost/r3`);
      assert.equal(inner?.attrs.to, `${bob}@localhost`);
    }
    // r1's own message is not copied back to it.
    await r1.xmpp.send(xml('message', { to: `${bob}@localhost`, type: 'chat' }, xml('body', {}, 'from r1')));
    await r2.next(isCarbon('sent', 'from r1'));
    await b.next(isPlain('from r1'));
    await sync(r1);
    assert.ok(!r1.inbox.some(isCarbon('sent', 'from r1')));
    assert.ok(!r3.inbox.some(isCarbon('sent', 'from r1')), 'r3 did not enable carbons');
  });

  it('makes no copies of messages marked private, and strips <private/> on delivery', async () => {
    const { alice, bob, r1, r2, b } = await setup();
    await r1.xmpp.send(xml('message', { to: `${bob}@localhost/b`, type: 'chat' }, xml('body', {}, 'secret'),
      xml('private', { xmlns: CARBONS }), xml('no-copy', { xmlns: 'urn:xmpp:hints' })));
    const got = await b.next(isPlain('secret'));
    assert.equal(got.getChild('private', CARBONS), undefined, 'the receiving server removes <private/>');
    // The next ordinary message's copy arrives; the private one's never came before it.
    await r1.xmpp.send(xml('message', { to: `${bob}@localhost/b`, type: 'chat' }, xml('body', {}, 'open')));
    await r2.next(isCarbon('sent', 'open'));
    assert.ok(!r2.inbox.some(isCarbon('sent', 'secret')));

    // Inbound: a private message to r1 is not copied to r2; the no-copy hint alone has the same effect.
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r1`, type: 'chat' }, xml('body', {}, 'p1'), xml('private', { xmlns: CARBONS })));
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r1`, type: 'chat' }, xml('body', {}, 'p2'), xml('no-copy', { xmlns: 'urn:xmpp:hints' })));
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r1`, type: 'chat' }, xml('body', {}, 'p3')));
    await r1.next(isPlain('p1'));
    await r2.next(isCarbon('received', 'p3'));
    assert.ok(!r2.inbox.some((s) => isCarbon('received', 'p1')(s) || isCarbon('received', 'p2')(s)));
  });

  it('stops copying after <disable/>, and refuses to change another account\'s setting', async () => {
    const { alice, bob, r1, r2, b } = await setup();
    await enable(r2, false);
    await enable(r2, false); // twice is not an error (§10.1)
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r1`, type: 'chat' }, xml('body', {}, 'after disable')));
    await r1.next(isPlain('after disable'));
    // A message straight to r2 from the same sender: a copy of the first would have come before it.
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r2`, type: 'chat' }, xml('body', {}, 'direct')));
    await r2.next(isPlain('direct'));
    assert.ok(!r2.inbox.some(isCarbon('received', 'after disable')));
    // Re-enabled, copies come again.
    await enable(r2);
    await b.xmpp.send(xml('message', { to: `${alice}@localhost/r1`, type: 'chat' }, xml('body', {}, 'again')));
    await r2.next(isCarbon('received', 'again'));

    await assert.rejects(
      b.xmpp.iqCaller.request(xml('iq', { type: 'set', to: `${alice}@localhost` }, xml('enable', { xmlns: CARBONS }))),
      /not-allowed/,
    );
  });

  it('copies a message to one\'s own account to the other resources, not back to the sender', async () => {
    const { alice, r1, r2, r3 } = await setup();
    await r3.xmpp.send(xml('message', { to: `${alice}@localhost/r2`, type: 'chat' }, xml('body', {}, 'note to self')));
    await r2.next(isPlain('note to self'));
    await r1.next(isCarbon('received', 'note to self'));
    await sync(r2);
    assert.ok(!r2.inbox.some((s) => isCarbon('sent', 'note to self')(s) || isCarbon('received', 'note to self')(s)));
  });
});

describe('carbon eligibility (§6.1)', () => {
  const bob = Jid.parse('bob@example.com/phone');
  const bobBare = Jid.parse('bob@example.com');
  const room = Jid.parse('room@muc.example.com/nick');

  it('copies chat, normal with a body, and IM payloads; not headlines, groupchat or empty normal messages', () => {
    assert.equal(carbonEligible(el(`<message type='chat'><body>x</body></message>`), 'received', bob), true);
    assert.equal(carbonEligible(el(`<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`), 'sent', bob), true);
    assert.equal(carbonEligible(el(`<message><body>x</body></message>`), 'received', bob), true);
    assert.equal(carbonEligible(el(`<message><received xmlns='urn:xmpp:receipts' id='a'/></message>`), 'received', bob), true);
    assert.equal(carbonEligible(el(`<message><displayed xmlns='urn:xmpp:chat-markers:0' id='a'/></message>`), 'sent', bob), true);
    assert.equal(carbonEligible(el(`<message><x xmlns='jabber:x:oob'/></message>`), 'received', bob), false);
    assert.equal(carbonEligible(el(`<message type='headline'><body>news</body></message>`), 'received', bob), false);
    assert.equal(carbonEligible(el(`<message type='groupchat'><body>x</body></message>`), 'received', room), false);
  });

  it('follows the MUC rules: invitations yes, private messages from occupants no, to occupants yes', () => {
    const pm = `<message type='chat'><body>psst</body><x xmlns='http://jabber.org/protocol/muc#user'/></message>`;
    assert.equal(carbonEligible(el(pm), 'received', room), false);
    assert.equal(carbonEligible(el(pm), 'sent', room), true);
    assert.equal(carbonEligible(el(`<message><x xmlns='jabber:x:conference' jid='room@muc.example.com'/></message>`), 'received', bobBare), true);
    assert.equal(carbonEligible(el(`<message from='room@muc.example.com'><x xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@example.com'/></x></message>`), 'received', Jid.parse('room@muc.example.com')), true);
  });

  it('copies error bounces from a bare JID, and nothing marked private or no-copy', () => {
    const err = `<message type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`;
    assert.equal(carbonEligible(el(err), 'received', bobBare), true);
    assert.equal(carbonEligible(el(err), 'received', bob), false);
    assert.equal(carbonEligible(el(err), 'sent', bobBare), false);
    assert.equal(carbonEligible(el(`<message type='chat'><body>x</body><private xmlns='urn:xmpp:carbons:2'/></message>`), 'sent', bob), false);
    assert.equal(carbonEligible(el(`<message type='chat'><body>x</body><no-copy xmlns='urn:xmpp:hints'/></message>`), 'received', bob), false);
  });

  it('serializes a copy with the forwarded message in jabber:client', () => {
    const m = el(`<message from='bob@example.com/phone' to='alice@localhost/a' type='chat' id='i'><body>hi &amp; bye</body></message>`);
    const copy = carbonCopy('received', m, Jid.parse('alice@localhost/a'), Jid.parse('alice@localhost/b'));
    assert.equal(copy.toString(),
      '<message from="alice@localhost" to="alice@localhost/b" type="chat"><received xmlns="urn:xmpp:carbons:2">'
      + '<forwarded xmlns="urn:xmpp:forward:0"><message from="bob@example.com/phone" to="alice@localhost/a" type="chat" id="i" xmlns="jabber:client">'
      + '<body>hi &amp; bye</body></message></forwarded></received></message>');
  });
});
