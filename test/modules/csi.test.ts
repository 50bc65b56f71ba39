// XEP-0352 Client State Indication: while inactive, presence and chat states wait (only the latest per sender),
// anything urgent goes at once after what was held, and <active/> sends the rest.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../helpers/fixture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { csiVerdict } from '../../src/modules/csi.ts';
import { parseElement } from '../../src/xml/parse.ts';

const CSI = 'urn:xmpp:csi:0';

/** Waits for the pattern and returns everything received up to and including it, in order. */
async function until(c: RawClient, re: RegExp): Promise<string> {
  const m = await c.expect(new RegExp(`[\\s\\S]*?${re.source}`));
  return m[0];
}

/** A server round trip: anything written to the client before it is in its buffer afterwards. */
async function sync(c: RawClient, id: string): Promise<string> {
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  return until(c, new RegExp(`<iq [^>]*id="${id}"[^>]*/>`));
}

describe('client state indication', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start({ modules: { csi: { queue_size: 5 } } });
  });
  after(async () => {
    await f.stop();
  });

  it('offers <csi/> after authentication', async () => {
    const [u] = await f.users('feat') as [string];
    const c = await RawClient.connect(f.t.port);
    try {
      await c.openStream();
      await c.starttls();
      const before = await c.openStream();
      // The <csi/> stream feature comes after authentication (Bind2 may name CSI as an inline feature before it).
      assert.doesNotMatch(before, /<csi xmlns="urn:xmpp:csi:0"\/>/);
      c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${u}\0pw`).toString('base64')}</auth>`);
      await c.expect(/<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/>/);
      const after = await c.openStream();
      assert.match(after, /<csi xmlns="urn:xmpp:csi:0"\/>/);
    } finally {
      c.destroy();
    }
  });

  /** Ends the client's stream and returns everything it received until the server closed it. */
  async function closeAndRead(c: RawClient): Promise<string> {
    c.send('</stream:stream>');
    return until(c, /<\/stream:stream>/);
  }

  it('routes messages still held when the session ends, so a receipt is stored for the next login', async () => {
    const [alice, bob] = await f.users('heldA', 'heldB') as [string, string];
    const a = await f.raw(alice, 'r');
    a.send('<presence/>');
    await a.expect(/<presence [^>]*\/>/);
    a.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a, 'held1');
    const b = await f.raw(bob, 'b');
    // A delivery receipt has no body: an inactive client does not get it at once.
    b.send(`<message to='${alice}@localhost/r' id='rcpt1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>`);
    await sync(b, 'held2');
    // No round trip on a's stream: an IQ result is urgent and would release what is held.
    await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(a.buffer, /rcpt1/);
    a.destroy();
    for (let i = 0; i < 100 && (await f.t.server.storage.offline.count('localhost', alice)) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const again = await f.raw(alice, 'again');
    again.send('<presence/>');
    const got = await again.expect(/<message[^>]*id="rcpt1"[\s\S]*?<\/message>/);
    assert.match(got[0], /<received xmlns="urn:xmpp:receipts" id="m1"\/>/);
  });

  it('writes no presence or chat state to an inactive client', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.raw(alice, 'r');
    const b = await f.raw(bob, 'b');
    const to = `${alice}@localhost/r`;
    a.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a, 'i1');
    b.send(`<presence to='${to}'><status>one</status></presence>`);
    b.send(`<message to='${to}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    b.send(`<message to='${to}'><received xmlns='urn:xmpp:receipts' id='r1'/></message>`);
    // Once Bob's ping is answered his stanzas have been routed: written to Alice, they would precede her close.
    await sync(b, 'bs');
    const rest = await closeAndRead(a);
    assert.doesNotMatch(rest, /<presence|<message/, 'held, and dropped with the stream');
  });

  it('sends what was held, the latest per sender, ahead of a message with a body', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.raw(alice, 'r');
    const b1 = await f.raw(bob, 'b1');
    const b2 = await f.raw(bob, 'b2');
    const to = `${alice}@localhost/r`;
    a.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a, 'i1');

    b1.send(`<presence to='${to}'><status>one</status></presence>`);
    b1.send(`<presence to='${to}'><status>two</status></presence>`);
    await sync(b1, 'b1s');
    b2.send(`<presence to='${to}'><show>away</show></presence>`);
    await sync(b2, 'b2s');
    b1.send(`<message to='${to}' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    b1.send(`<message to='${to}' type='chat'><paused xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    b1.send(`<message to='${to}' type='chat' id='hello'><body>hello</body></message>`);
    const got = await until(a, /<message [^>]*id="hello"[^>]*>[\s\S]*?<\/message>/);
    assert.doesNotMatch(got, /<status>one<\/status>/, 'a newer presence from the same full JID replaces the older');
    assert.doesNotMatch(got, /<composing/, 'a newer chat state from the same full JID replaces the older');
    const order = [
      got.search(new RegExp(`<presence [^>]*from="${bob}@localhost/b1"[^>]*><status>two</status>`)),
      got.search(new RegExp(`<presence [^>]*from="${bob}@localhost/b2"[^>]*><show>away</show>`)),
      got.search(/<paused xmlns="http:\/\/jabber.org\/protocol\/chatstates"\/>/),
      got.search(/<body>hello<\/body>/),
    ];
    assert.ok(order.every((i) => i >= 0), `all delivered: ${got}`);
    assert.deepEqual([...order].sort((x, y) => x - y), order, 'held stanzas go first, in order, then the message');
  });

  it('sends what was held on <active/>, before answering what follows it', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.raw(alice, 'r');
    const b = await f.raw(bob, 'b');
    const to = `${alice}@localhost/r`;
    a.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a, 'i1');
    b.send(`<presence to='${to}'><status>first</status></presence>`);
    b.send(`<presence to='${to}'><status>latest</status></presence>`);
    await sync(b, 'bs');
    a.send(`<active xmlns='${CSI}'/>`);
    const flushed = await sync(a, 'i2');
    assert.doesNotMatch(flushed, /<status>first<\/status>/, 'held (and merged) until then');
    assert.match(flushed, /<status>latest<\/status>[\s\S]*<iq [^>]*id="i2"/);
    // Active again: nothing waits.
    b.send(`<presence to='${to}'><status>live</status></presence>`);
    b.send(`<presence to='${to}'><status>live2</status></presence>`);
    await a.expect(/<status>live<\/status>[\s\S]*<status>live2<\/status>/);
  });

  it('lets IQs and errors through at once, after what was held', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.raw(alice, 'r');
    const b = await f.raw(bob, 'b');
    const to = `${alice}@localhost/r`;
    a.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a, 'i1');
    b.send(`<presence to='${to}'><status>dropped</status></presence>`);
    b.send(`<presence to='${to}'><status>held</status></presence>`);
    b.send(`<iq type='get' id='q1' to='${to}'><query xmlns='jabber:iq:version'/></iq>`);
    const got = await until(a, /<iq [^>]*id="q1"[^>]*>/);
    assert.doesNotMatch(got, /dropped/);
    assert.match(got, /<status>held<\/status>[\s\S]*<iq /);
    // An error bounced to the inactive client also goes at once.
    a.send(`<message to='nobody@localhost' type='chat' id='e1'><body>x</body></message>`);
    const err = await until(a, /<message [^>]*id="e1"[^>]*>/);
    assert.match(err, /type="error"/);
  });

  it('holds at most queue_size stanzas: the last one sends them all', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const to = `${alice}@localhost/r`;
    const b = await f.raw(bob, 'b');
    // Four headlines (PEP-style notifications) wait; they are not merged.
    const a1 = await f.raw(alice, 'r');
    a1.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a1, 'i1');
    for (let i = 1; i <= 4; i++) b.send(`<message to='${to}' type='headline'><body>h${i}</body></message>`);
    await sync(b, 'bs1');
    assert.doesNotMatch(await closeAndRead(a1), /<message/);
    // With a fifth the queue of five is full and everything goes.
    const a2 = await f.raw(alice, 'r');
    a2.send(`<inactive xmlns='${CSI}'/>`);
    await sync(a2, 'i2');
    for (let i = 1; i <= 5; i++) b.send(`<message to='${to}' type='headline'><body>h${i}</body></message>`);
    const got = await until(a2, /<body>h5<\/body>/);
    assert.match(got, /h1[\s\S]*h2[\s\S]*h3[\s\S]*h4[\s\S]*h5/);
  });
});

describe('what an inactive client gets at once', () => {
  const verdict = (s: string) => {
    const el = parseElement(s);
    assert.ok(el);
    return csiVerdict(el);
  };

  it('sends messages with a body or subject, IQs, errors, subscription requests and sent carbons', () => {
    for (const s of [
      `<message><body>x</body></message>`,
      `<message type='groupchat'><subject>topic</subject></message>`,
      `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`,
      `<message type='error'/>`,
      `<presence type='subscribe' from='b@x'/>`,
      `<message><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><active xmlns='http://jabber.org/protocol/chatstates'/></message></forwarded></sent></message>`,
      `<message><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>hi</body></message></forwarded></received></message>`,
    ]) assert.deepEqual(verdict(s), { hold: false }, s);
  });

  it('holds presence updates, chat states, receipts and headlines; merges presence and chat states per sender', () => {
    assert.deepEqual(verdict(`<presence from='b@x/1'/>`), { hold: true, key: 'p\u0000b@x/1' });
    assert.deepEqual(verdict(`<presence from='b@x/1' type='unavailable'/>`), { hold: true, key: 'p\u0000b@x/1' });
    assert.deepEqual(verdict(`<message from='b@x/1' type='chat'><gone xmlns='http://jabber.org/protocol/chatstates'/><thread>t</thread></message>`), { hold: true, key: 'c\u0000b@x/1' });
    assert.deepEqual(verdict(`<message from='b@x/1'><received xmlns='urn:xmpp:receipts' id='m'/></message>`), { hold: true, key: undefined });
    assert.deepEqual(verdict(`<message from='b@x' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'/></message>`), { hold: true, key: undefined });
  });
});
