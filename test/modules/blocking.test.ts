// XEP-0191 Blocking Command: the list and its pushes, and what happens to stanzas both ways once a JID is blocked.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../helpers/fixture.ts';
import { xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import { isBlockedBy } from '../../src/modules/blocking.ts';
import { Jid } from '../../src/xmpp/jid.ts';

const BLOCKING = 'urn:xmpp:blocking';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

describe('blocking command', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start();
  });
  after(async () => {
    await f.stop();
  });

  const iq = (c: TestClient, type: 'get' | 'set', payload: ReturnType<typeof xml>): Promise<Stanza> =>
    c.xmpp.iqCaller.request(xml('iq', { type }, payload)) as Promise<Stanza>;
  const blocklist = async (c: TestClient): Promise<string[]> => {
    const r = await iq(c, 'get', xml('blocklist', { xmlns: BLOCKING }));
    return r.getChild('blocklist', BLOCKING)?.getChildren('item').map((i) => i.attrs.jid as string) ?? [];
  };
  const block = (c: TestClient, ...jids: string[]) => iq(c, 'set', xml('block', { xmlns: BLOCKING }, ...jids.map((jid) => xml('item', { jid }))));
  const unblock = (c: TestClient, ...jids: string[]) => iq(c, 'set', xml('unblock', { xmlns: BLOCKING }, ...jids.map((jid) => xml('item', { jid }))));
  /** A server round trip: whatever was written to the client before has arrived. */
  const sync = (c: TestClient) => c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  const online = async (c: TestClient, status?: string): Promise<void> => {
    await c.xmpp.send(xml('presence', {}, status ? xml('status', {}, status) : undefined));
    await c.next((s) => s.is('presence') && s.attrs.from === c.jid && s.getChildText('status') === (status ?? null));
  };
  const pushOf = (name: 'block' | 'unblock') => (s: Stanza): boolean => s.is('iq') && s.attrs.type === 'set' && s.getChild(name, BLOCKING) !== undefined;
  const itemsOf = (s: Stanza, name: 'block' | 'unblock'): string[] => s.getChild(name, BLOCKING)?.getChildren('item').map((i) => i.attrs.jid as string) ?? [];

  /** Two accounts subscribed to each other's presence. */
  async function friends(): Promise<[string, string]> {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const item = (jid: string) => ({ jid, subscription: 'both' as const, ask: false, approved: false, groups: [] });
    await f.t.server.storage.roster.put('localhost', alice, item(`${bob}@localhost`));
    await f.t.server.storage.roster.put('localhost', bob, item(`${alice}@localhost`));
    return [alice, bob];
  }

  it('advertises urn:xmpp:blocking', async () => {
    const [u] = await f.users('disco') as [string];
    const c = await f.client(u);
    const r = await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(r.getChild('query')?.getChildren('feature').some((x) => x.attrs.var === BLOCKING));
  });

  it('blocks and unblocks, pushing each change to the resources that asked for the list', async () => {
    const [alice, bob, carol] = await f.users('alice', 'bob', 'carol') as [string, string, string];
    const a1 = await f.client(alice, 'a1');
    const a2 = await f.client(alice, 'a2');
    const a3 = await f.client(alice, 'a3');
    assert.deepEqual(await blocklist(a1), []);
    assert.deepEqual(await blocklist(a2), []);

    await block(a1, `${bob}@localhost`);
    for (const c of [a1, a2]) {
      const push = await c.next(pushOf('block'));
      assert.equal(push.attrs.to, c.jid);
      assert.deepEqual(itemsOf(push, 'block'), [`${bob}@localhost`]);
    }
    await sync(a3);
    assert.ok(!a3.inbox.some(pushOf('block')), 'a3 never asked for the list');
    assert.deepEqual(await blocklist(a3), [`${bob}@localhost`]);

    // JIDs are stored prepared; several at once.
    await block(a2, `${carol.toUpperCase()}@LOCALHOST`, 'spam.example');
    for (const c of [a1, a2, a3]) assert.deepEqual(itemsOf(await c.next(pushOf('block')), 'block'), [`${carol}@localhost`, 'spam.example']);
    assert.deepEqual(await blocklist(a1), [`${bob}@localhost`, `${carol}@localhost`, 'spam.example']);

    await unblock(a3, `${bob}@localhost`);
    for (const c of [a1, a2, a3]) assert.deepEqual(itemsOf(await c.next(pushOf('unblock')), 'unblock'), [`${bob}@localhost`]);
    assert.deepEqual(await blocklist(a1), [`${carol}@localhost`, 'spam.example']);

    // The list outlives the sessions.
    const later = await f.client(alice, 'later');
    assert.deepEqual(await blocklist(later), [`${carol}@localhost`, 'spam.example']);

    // An empty unblock lifts every block, and is pushed as such.
    await unblock(a1);
    for (const c of [a1, a2, a3, later]) assert.deepEqual(itemsOf(await c.next(pushOf('unblock')), 'unblock'), []);
    assert.deepEqual(await blocklist(a2), []);
  });

  it('refuses a block without items or with a malformed JID, and another account\'s list', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.client(alice);
    await assert.rejects(block(a), /bad-request/);
    await assert.rejects(block(a, 'a@b@c/'), /jid-malformed/);
    await assert.rejects(a.xmpp.iqCaller.request(xml('iq', { type: 'get', to: `${bob}@localhost` }, xml('blocklist', { xmlns: BLOCKING }))), /service-unavailable/);
    assert.deepEqual(await blocklist(a), []);
  });

  it('does not deliver messages or IQs from a blocked JID: the sender gets service-unavailable', async () => {
    const [alice, bob] = await friends();
    const a = await f.client(alice, 'a');
    const b = await f.client(bob, 'b');
    await online(a);
    await online(b);
    await block(a, `${bob}@localhost`);

    await b.xmpp.send(xml('message', { to: `${alice}@localhost`, type: 'chat', id: 'm1' }, xml('body', {}, 'let me in')));
    const err = await b.next((s) => s.is('message') && s.attrs.id === 'm1');
    assert.equal(err.attrs.type, 'error');
    assert.equal(err.attrs.from, `${alice}@localhost`);
    assert.ok(err.getChild('error')?.getChild('service-unavailable', STANZAS));
    await assert.rejects(b.xmpp.iqCaller.request(xml('iq', { type: 'get', to: a.jid }, xml('query', { xmlns: 'jabber:iq:version' }))), /service-unavailable/);
    await sync(a);
    assert.ok(!a.inbox.some((s) => s.is('message') || s.is('iq') && s.attrs.type === 'get'));

    // Nor is anything stored for later.
    await a.stop();
    await b.xmpp.send(xml('message', { to: `${alice}@localhost`, type: 'chat', id: 'm2' }, xml('body', {}, 'while you sleep')));
    assert.equal((await b.next((s) => s.is('message') && s.attrs.id === 'm2')).attrs.type, 'error');
    assert.equal(await f.t.server.storage.offline.count('localhost', alice), 0);
  });

  it('refuses what the user sends to a blocked JID with not-acceptable and <blocked/>', async () => {
    const [alice, bob] = await friends();
    const a = await f.client(alice, 'a');
    const b = await f.client(bob, 'b');
    await online(b);
    await block(a, `${bob}@localhost`);
    await a.xmpp.send(xml('message', { to: `${bob}@localhost`, type: 'chat', id: 'out' }, xml('body', {}, 'hello?')));
    const err = await a.next((s) => s.is('message') && s.attrs.id === 'out');
    assert.equal(err.attrs.type, 'error');
    assert.equal(err.attrs.from, `${bob}@localhost`);
    const e = err.getChild('error');
    assert.equal(e?.attrs.type, 'cancel');
    assert.ok(e?.getChild('not-acceptable', STANZAS));
    assert.ok(e?.getChild('blocked', 'urn:xmpp:blocking:errors'));
    await assert.rejects(a.xmpp.iqCaller.request(xml('iq', { type: 'get', to: b.jid }, xml('ping', { xmlns: 'urn:xmpp:ping' }))), /not-acceptable/);
    await sync(b);
    assert.ok(!b.inbox.some((s) => s.is('message') && s.getChildText('body') === 'hello?'));
  });

  it('sends unavailable to a blocked contact and drops its presence; unblocking restores both ways', async () => {
    const [alice, bob] = await friends();
    const a = await f.client(alice, 'a');
    const b = await f.client(bob, 'b');
    await online(a);
    await online(b);
    await a.next((s) => s.is('presence') && s.attrs.from === b.jid); // Bob's presence reached Alice

    await b.next((s) => s.is('presence') && s.attrs.from === a.jid && s.attrs.type === undefined);
    await block(a, `${bob}@localhost`);
    await b.next((s) => s.is('presence') && s.attrs.from === a.jid && s.attrs.type === 'unavailable');

    // Bob's presence update does not reach Alice (her check runs before Bob hears his own echo).
    await online(b, 'can you see me');
    await sync(a);
    assert.ok(!a.inbox.some((s) => s.is('presence') && s.attrs.from === b.jid));
    // Nor does Alice's reach Bob: the server does not broadcast to a JID she blocked.
    await online(a, 'hidden');
    await sync(b);
    assert.ok(!b.inbox.some((s) => s.is('presence') && s.attrs.from === a.jid));

    await unblock(a, `${bob}@localhost`);
    // Bob gets Alice's current presence; Alice's server probes Bob, so she sees him again.
    const back = await b.next((s) => s.is('presence') && s.attrs.from === a.jid);
    assert.equal(back.attrs.type, undefined);
    assert.equal(back.getChildText('status'), 'hidden');
    const seen = await a.next((s) => s.is('presence') && s.attrs.from === b.jid);
    assert.equal(seen.attrs.type, undefined);
    assert.equal(seen.getChildText('status'), 'can you see me');
  });

  it('does not hand over offline messages from a JID blocked since they were stored', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const b = await f.client(bob, 'b');
    await b.xmpp.send(xml('message', { to: `${alice}@localhost`, type: 'chat' }, xml('body', {}, 'stored earlier')));
    await sync(b);
    assert.equal(await f.t.server.storage.offline.count('localhost', alice), 1);
    const a = await f.client(alice, 'a');
    await block(a, `${bob}@localhost`); // before initial presence, which releases offline messages
    await online(a);
    await sync(a);
    assert.ok(!a.inbox.some((s) => s.is('message') && s.getChildText('body') === 'stored earlier'));
  });
});

describe('block list JID matching (§6)', () => {
  const list = new Set(['bob@example.com', 'eve@example.com/laptop', 'spam.example', 'example.net/bot']);
  const blocked = (s: string): boolean => isBlockedBy(list, Jid.parse(s));

  it('matches full JIDs, bare JIDs with any resource, domains with everything in and below them', () => {
    assert.equal(blocked('bob@example.com'), true);
    assert.equal(blocked('bob@example.com/phone'), true);
    assert.equal(blocked('eve@example.com/laptop'), true);
    assert.equal(blocked('eve@example.com/phone'), false);
    assert.equal(blocked('eve@example.com'), false);
    assert.equal(blocked('spam.example'), true);
    assert.equal(blocked('anyone@spam.example/x'), true);
    assert.equal(blocked('chat.spam.example'), true);
    assert.equal(blocked('notspam.example'), false);
    assert.equal(blocked('example.net/bot'), true);
    assert.equal(blocked('example.net'), false);
    assert.equal(blocked('someone@example.net/bot'), false);
  });
});
