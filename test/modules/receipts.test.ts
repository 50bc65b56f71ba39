// XEP-0184 Message Delivery Receipts pass through the server untouched: a request travels with its message (also
// through offline storage) and the receipt routes back to the sender, live or stored until the sender returns.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../helpers/fixture.ts';
import { xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';

const RECEIPTS = 'urn:xmpp:receipts';

describe('message delivery receipts', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start();
  });
  after(async () => {
    await f.stop();
  });

  async function online(c: TestClient): Promise<void> {
    await c.xmpp.send(xml('presence'));
    await c.next((s) => s.is('presence') && s.attrs.from === c.jid);
  }
  const withBody = (body: string) => (s: Stanza): boolean => s.is('message') && s.getChildText('body') === body;
  const receiptFor = (id: string) => (s: Stanza): boolean => s.is('message') && s.getChild('received', RECEIPTS)?.attrs.id === id;

  it('carries the request to the recipient and the receipt back to the sender', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.client(alice, 'a');
    const b = await f.client(bob, 'b');
    await online(a);
    await online(b);
    await a.xmpp.send(xml('message', { to: `${bob}@localhost`, type: 'chat', id: 'r1' }, xml('body', {}, 'hi'), xml('request', { xmlns: RECEIPTS })));
    const m = await b.next(withBody('hi'));
    assert.ok(m.getChild('request', RECEIPTS), 'the request is delivered as sent');
    assert.equal(m.attrs.id, 'r1');
    assert.equal(m.attrs.from, a.jid);

    await b.xmpp.send(xml('message', { to: m.attrs.from, id: 'ack1' }, xml('received', { xmlns: RECEIPTS, id: m.attrs.id })));
    const receipt = await a.next(receiptFor('r1'));
    assert.equal(receipt.attrs.from, b.jid);
  });

  it('keeps the request with an offline message, and stores the receipt until the sender is back', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.client(alice, 'a');
    await online(a);
    await a.xmpp.send(xml('message', { to: `${bob}@localhost`, type: 'chat', id: 'r2' }, xml('body', {}, 'while you were out'), xml('request', { xmlns: RECEIPTS })));
    // The message is stored (no error comes back); then Alice leaves too.
    await a.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.ok(!a.inbox.some((s) => s.attrs.type === 'error'));
    const aliceFull = a.jid;
    await a.stop();

    const b = await f.client(bob, 'b');
    await online(b);
    const m = await b.next(withBody('while you were out'));
    assert.ok(m.getChild('request', RECEIPTS), 'the request survived offline storage');
    assert.ok(m.getChild('delay', 'urn:xmpp:delay'));
    assert.equal(m.attrs.id, 'r2');
    assert.equal(m.attrs.from, aliceFull);

    // The receipt goes to Alice's old full JID: that resource is gone, so it is stored for her account.
    await b.xmpp.send(xml('message', { to: m.attrs.from, id: 'ack2' }, xml('received', { xmlns: RECEIPTS, id: m.attrs.id })));
    await b.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.ok(!b.inbox.some((s) => s.attrs.type === 'error'), 'stored, not bounced');

    const back = await f.client(alice, 'back');
    await online(back);
    const receipt = await back.next(receiptFor('r2'));
    assert.equal(receipt.attrs.from, b.jid);
    assert.ok(receipt.getChild('delay', 'urn:xmpp:delay'));
  });
});
