// XEP-0163 PEP on XEP-0060: notifications by caps +notify, last items on presence and on subscription,
// publish-options, items retrieval, retraction, access models and owner operations, with xmpp.js clients.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectClient, xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import type { C2sSession } from '../../src/core/session.ts';

const CAPS = 'http://jabber.org/protocol/caps';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const OWNER = 'http://jabber.org/protocol/pubsub#owner';
const EVENT = 'http://jabber.org/protocol/pubsub#event';
const ERRORS = 'http://jabber.org/protocol/pubsub#errors';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const DATA = 'urn:xmpp:avatar:data';
const METADATA = 'urn:xmpp:avatar:metadata';
const NICK = 'http://jabber.org/protocol/nick';
const BOOKMARKS = 'urn:xmpp:bookmarks:1';
const BARRIER = 'urn:test:barrier';

type Calleable = { iqCallee: { get(ns: string, name: string, handler: (ctx: { element: Stanza }) => Stanza | undefined): void } };

function form(type: string, fields: Record<string, string>): Stanza {
  return xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, type)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', null, v))));
}
const publishOptions = (fields: Record<string, string>): Stanza =>
  xml('publish-options', null, form('http://jabber.org/protocol/pubsub#publish-options', fields));

/** XEP-0402 §3: how a client publishes a bookmark. */
const BOOKMARK_OPTIONS = {
  'pubsub#persist_items': 'true',
  'pubsub#max_items': 'max',
  'pubsub#send_last_published_item': 'never',
  'pubsub#access_model': 'whitelist',
};

/** The event notification for a node, if the stanza is one. */
function eventItems(s: Stanza, node: string): Stanza | undefined {
  if (!s.is('message')) return undefined;
  const event = s.getChild('event', EVENT);
  const items = event?.getChild('items');
  return items?.attrs.node === node ? items : undefined;
}

describe('personal eventing', () => {
  let t: TestServer;
  const clients: TestClient[] = [];
  const resolved = new Set<string>();
  let n = 0;
  let seq = 0;

  before(async () => {
    t = await startServer();
    t.server.hosts.get('localhost')?.bus.on('caps/resolved', ({ session }: { session: C2sSession }) => {
      if (session.jid) resolved.add(session.jid.toString());
    });
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  async function users(...names: string[]): Promise<string[]> {
    n++;
    const out = names.map((x) => `${x}${n}`);
    for (const u of out) await t.register(u, 'pw');
    return out;
  }

  /** Makes two accounts see each other's presence, as an accepted subscription both ways would. */
  async function befriend(a: string, b: string): Promise<void> {
    const item = (jid: string) => ({ jid: `${jid}@localhost`, subscription: 'both' as const, ask: false, approved: false, groups: [] });
    await t.server.storage.roster.put('localhost', a, item(b));
    await t.server.storage.roster.put('localhost', b, item(a));
  }

  /** Logs in with caps advertising `+notify` for `notify`, sends available presence, waits for the caps to be known. */
  async function login(user: string, resource: string, notify: string[]): Promise<TestClient> {
    const c = await connectClient({ port: t.port, username: user, password: 'pw', resource });
    clients.push(c);
    const features = [DISCO_INFO, ...notify.map((node) => `${node}+notify`)].sort();
    let s = 'client/pc//Test<';
    for (const f of features) s += `${f}<`;
    const ver = createHash('sha1').update(s).digest('base64');
    (c.xmpp as unknown as Calleable).iqCallee.get(DISCO_INFO, 'query', ({ element }) =>
      xml('query', { xmlns: DISCO_INFO, node: element.attrs.node }, xml('identity', { category: 'client', type: 'pc', name: 'Test' }),
        ...features.map((f) => xml('feature', { var: f }))));
    await c.xmpp.send(xml('presence', null, xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://client.example', ver })));
    for (let i = 0; i < 500 && !resolved.has(c.jid); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(resolved.has(c.jid), `caps of ${c.jid} resolved`);
    return c;
  }

  /** Sends an IQ and waits for its answer, result or error. */
  async function request(c: TestClient, attrs: Record<string, string>, payload: Stanza): Promise<Stanza> {
    const id = `p${++seq}`;
    await c.xmpp.send(xml('iq', { ...attrs, id }, payload));
    return c.next((s) => s.is('iq') && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'));
  }

  async function publish(c: TestClient, node: string, id: string | undefined, payload: Stanza, options?: Record<string, string>): Promise<Stanza> {
    return request(c, { type: 'set' }, xml('pubsub', { xmlns: PUBSUB },
      xml('publish', { node }, xml('item', { id }, payload)), options ? publishOptions(options) : undefined));
  }

  async function items(c: TestClient, owner: string, node: string, opts: { max?: number; ids?: string[] } = {}): Promise<Stanza> {
    return request(c, { type: 'get', to: `${owner}@localhost` }, xml('pubsub', { xmlns: PUBSUB },
      xml('items', { node, max_items: opts.max?.toString() }, ...(opts.ids ?? []).map((id) => xml('item', { id })))));
  }

  function errorOf(reply: Stanza): { type?: string; condition?: string; app?: string } {
    const error = reply.getChild('error');
    const els = (error?.children ?? []).filter((c): c is Stanza => typeof c !== 'string');
    return {
      type: error?.attrs.type,
      condition: els.find((e) => e.attrs.xmlns === STANZAS && e.name !== 'text')?.name,
      app: els.find((e) => e.attrs.xmlns === ERRORS)?.name,
    };
  }

  /** Publishes to the barrier node: once it arrives, anything published before would have arrived too. */
  async function barrier(owner: TestClient, ...waiting: TestClient[]): Promise<void> {
    const id = `b${++seq}`;
    assert.equal((await publish(owner, BARRIER, id, xml('x', { xmlns: BARRIER }))).attrs.type, 'result');
    for (const c of waiting) await c.next((s) => eventItems(s, BARRIER)?.getChild('item')?.attrs.id === id);
  }

  it('notifies the contacts whose caps ask for the node (+notify) and no one else, then sends the last item on presence', async () => {
    const [a, b, c] = await users('alice', 'bob', 'carol') as [string, string, string];
    await befriend(a, b);
    await befriend(a, c);
    const bob = await login(b, 'r', [METADATA, BARRIER]);
    const carol = await login(c, 'r', [BARRIER]);
    const alice = await login(a, 'r', [METADATA]);

    const png = Buffer.from('not really a png');
    const hash = createHash('sha1').update(png).digest('hex');
    assert.equal((await publish(alice, DATA, hash, xml('data', { xmlns: DATA }, png.toString('base64')))).attrs.type, 'result');
    const reply = await publish(alice, METADATA, hash, xml('metadata', { xmlns: METADATA },
      xml('info', { bytes: String(png.length), id: hash, type: 'image/png', height: '64', width: '64' })));
    assert.equal(reply.attrs.type, 'result');
    assert.equal(reply.getChild('pubsub', PUBSUB)?.getChild('publish')?.getChild('item')?.attrs.id, hash);

    const note = await bob.next((s) => eventItems(s, METADATA) !== undefined);
    assert.equal(note.attrs.from, `${a}@localhost`);
    // XEP-0033 replyto names the publishing resource.
    assert.equal(note.getChild('addresses', 'http://jabber.org/protocol/address')?.getChild('address')?.attrs.jid, alice.jid);
    assert.equal(note.attrs.to, bob.jid);
    assert.equal(note.attrs.type, 'headline');
    const item = eventItems(note, METADATA)?.getChild('item');
    assert.equal(item?.attrs.id, hash);
    assert.equal(item?.getChild('metadata', METADATA)?.getChild('info')?.attrs.bytes, String(png.length));
    // The owner's own resource asked for it too.
    await alice.next((s) => eventItems(s, METADATA) !== undefined);

    await barrier(alice, bob, carol);
    assert.equal(carol.inbox.some((s) => eventItems(s, METADATA) || eventItems(s, DATA)), false, 'carol did not ask for avatars');
    assert.equal(bob.inbox.some((s) => eventItems(s, DATA)), false, 'bob asked for metadata, not data');

    // A resource that becomes available later gets the last item (XEP-0163 §4.3.3), stamped with its date.
    const phone = await login(b, 'phone', [METADATA]);
    const last = await phone.next((s) => eventItems(s, METADATA) !== undefined);
    assert.equal(eventItems(last, METADATA)?.getChild('item')?.attrs.id, hash);
    assert.ok(last.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp);
  });

  it('sends the last item to a new contact when the subscription is approved', async () => {
    const [a, d] = await users('alice', 'dave') as [string, string];
    const alice = await login(a, 'r', []);
    assert.equal((await publish(alice, NICK, 'current', xml('nick', { xmlns: NICK }, 'Alice'))).attrs.type, 'result');
    const dave = await login(d, 'r', [NICK]);
    assert.equal(dave.inbox.some((s) => eventItems(s, NICK)), false, 'not a contact yet');

    await dave.xmpp.send(xml('presence', { to: `${a}@localhost`, type: 'subscribe' }));
    await alice.next((s) => s.is('presence') && s.attrs.type === 'subscribe');
    await alice.xmpp.send(xml('presence', { to: `${d}@localhost`, type: 'subscribed' }));
    const note = await dave.next((s) => eventItems(s, NICK) !== undefined);
    assert.equal(note.attrs.from, `${a}@localhost`);
    assert.equal(eventItems(note, NICK)?.getChild('item')?.getChildText('nick', NICK), 'Alice');

    // And later publications, since Dave now sees Alice's presence.
    await publish(alice, NICK, 'current', xml('nick', { xmlns: NICK }, 'Alice L.'));
    const next = await dave.next((s) => eventItems(s, NICK) !== undefined);
    assert.equal(eventItems(next, NICK)?.getChild('item')?.getChildText('nick', NICK), 'Alice L.');
  });

  it('checks publish-options as preconditions and creates the node with them', async () => {
    const [a] = await users('alice') as [string];
    const alice = await login(a, 'r', []);
    const node = 'urn:test:options';
    const first = await publish(alice, node, '1', xml('x', { xmlns: node }), { 'pubsub#access_model': 'open', 'pubsub#max_items': '5' });
    assert.equal(first.attrs.type, 'result');
    // Matching options publish.
    assert.equal((await publish(alice, node, '2', xml('x', { xmlns: node }), { 'pubsub#access_model': 'open' })).attrs.type, 'result');
    // A different access model fails the precondition (XEP-0060 §7.1.5).
    const failed = await publish(alice, node, '3', xml('x', { xmlns: node }), { 'pubsub#access_model': 'whitelist' });
    assert.equal(failed.attrs.type, 'error');
    assert.deepEqual(errorOf(failed), { type: 'cancel', condition: 'conflict', app: 'precondition-not-met' });
    // An option this service does not know cannot be met either.
    const unknown = await publish(alice, node, '3', xml('x', { xmlns: node }), { 'pubsub#frobnicate': '1' });
    assert.deepEqual(errorOf(unknown), { type: 'cancel', condition: 'conflict', app: 'precondition-not-met' });
    // The failed publications stored nothing.
    const stored = await items(alice, a, node);
    assert.deepEqual(stored.getChild('pubsub', PUBSUB)?.getChild('items')?.getChildren('item').map((i) => i.attrs.id), ['1', '2']);

    const config = await request(alice, { type: 'get' }, xml('pubsub', { xmlns: OWNER }, xml('configure', { node })));
    const fields = new Map(config.getChild('pubsub', OWNER)?.getChild('configure')?.getChild('x', 'jabber:x:data')
      ?.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.equal(fields.get('pubsub#access_model'), 'open');
    assert.equal(fields.get('pubsub#max_items'), '5');
  });

  it('returns items by id and the most recent by max_items, to those the access model admits', async () => {
    const [a, b, s] = await users('alice', 'bob', 'stranger') as [string, string, string];
    await befriend(a, b);
    const node = 'urn:test:list';
    const alice = await login(a, 'r', []);
    const bob = await login(b, 'r', [node]);
    for (const id of ['i1', 'i2', 'i3']) {
      assert.equal((await publish(alice, node, id, xml('entry', { xmlns: node }, id), { 'pubsub#max_items': '10' })).attrs.type, 'result');
      await bob.next((st) => eventItems(st, node)?.getChild('item')?.attrs.id === id);
    }
    const ids = (reply: Stanza): Array<string | undefined> =>
      reply.getChild('pubsub', PUBSUB)?.getChild('items')?.getChildren('item').map((i) => i.attrs.id) ?? [];
    assert.deepEqual(ids(await items(bob, a, node)), ['i1', 'i2', 'i3']);
    assert.deepEqual(ids(await items(bob, a, node, { max: 2 })), ['i2', 'i3']);
    const byId = await items(bob, a, node, { ids: ['i1'] });
    assert.deepEqual(ids(byId), ['i1']);
    assert.equal(byId.getChild('pubsub', PUBSUB)?.getChild('items')?.getChild('item')?.getChildText('entry', node), 'i1');

    const missing = await items(bob, a, 'urn:test:nothing');
    assert.equal(errorOf(missing).condition, 'item-not-found');

    // The default access model is presence: someone without a subscription is refused (XEP-0060 §6.5.9).
    const stranger = await login(s, 'r', []);
    const refused = await items(stranger, a, node);
    assert.deepEqual(errorOf(refused), { type: 'auth', condition: 'not-authorized', app: 'presence-subscription-required' });
    // An open node they may read, and discover.
    const open = 'urn:test:open';
    assert.equal((await publish(alice, open, 'o1', xml('x', { xmlns: open }), { 'pubsub#access_model': 'open' })).attrs.type, 'result');
    assert.deepEqual(ids(await items(stranger, a, open)), ['o1']);
    const listing = await request(stranger, { type: 'get', to: `${a}@localhost` }, xml('query', { xmlns: DISCO_ITEMS }));
    assert.deepEqual(listing.getChild('query', DISCO_ITEMS)?.getChildren('item').map((i) => i.attrs.node), [open]);

    // Only the owner publishes.
    const intruder = await request(bob, { type: 'set', to: `${a}@localhost` }, xml('pubsub', { xmlns: PUBSUB },
      xml('publish', { node }, xml('item', { id: 'x' }, xml('entry', { xmlns: node })))));
    assert.equal(errorOf(intruder).condition, 'forbidden');

    // Retracting with notify tells bob (XEP-0060 §7.2.2.1).
    const retract = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: PUBSUB },
      xml('retract', { node, notify: 'true' }, xml('item', { id: 'i2' }))));
    assert.equal(retract.attrs.type, 'result');
    const note = await bob.next((st) => eventItems(st, node)?.getChild('retract') !== undefined);
    assert.equal(eventItems(note, node)?.getChild('retract')?.attrs.id, 'i2');
    assert.deepEqual(ids(await items(bob, a, node)), ['i1', 'i3']);
    const again = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: PUBSUB },
      xml('retract', { node }, xml('item', { id: 'i2' }))));
    assert.equal(errorOf(again).condition, 'item-not-found');
  });

  it('keeps whitelist nodes (bookmarks, private data) to the owner', async () => {
    const [a, b] = await users('alice', 'bob') as [string, string];
    await befriend(a, b);
    const alice = await login(a, 'r', [BOOKMARKS]);
    const other = await login(a, 'other', [BOOKMARKS]);
    const bob = await login(b, 'r', [BOOKMARKS, BARRIER]);
    const room = 'room@conference.localhost';
    const reply = await publish(alice, BOOKMARKS, room,
      xml('conference', { xmlns: BOOKMARKS, name: 'The room', autojoin: 'true' }, xml('nick', null, 'alice')), BOOKMARK_OPTIONS);
    assert.equal(reply.attrs.type, 'result');
    // The owner's other resource is told (XEP-0402 §3.3); the contact is not.
    const note = await other.next((s) => eventItems(s, BOOKMARKS) !== undefined);
    assert.equal(eventItems(note, BOOKMARKS)?.getChild('item')?.attrs.id, room);
    await barrier(alice, bob);
    assert.equal(bob.inbox.some((s) => eventItems(s, BOOKMARKS)), false);

    const refused = await items(bob, a, BOOKMARKS);
    assert.deepEqual(errorOf(refused), { type: 'cancel', condition: 'not-allowed', app: 'closed-node' });
    const own = await items(alice, a, BOOKMARKS);
    assert.equal(own.getChild('pubsub', PUBSUB)?.getChild('items')?.getChild('item')?.attrs.id, room);

    // Nor does bob discover the node; the barrier node (presence access) he does.
    const listing = await request(bob, { type: 'get', to: `${a}@localhost` }, xml('query', { xmlns: DISCO_ITEMS }));
    const nodes = listing.getChild('query', DISCO_ITEMS)?.getChildren('item').map((i) => i.attrs.node);
    assert.deepEqual(nodes, [BARRIER]);
    const ownListing = await request(alice, { type: 'get' }, xml('query', { xmlns: DISCO_ITEMS }));
    assert.deepEqual(ownListing.getChild('query', DISCO_ITEMS)?.getChildren('item').map((i) => i.attrs.node).sort(), [BARRIER, BOOKMARKS].sort());

    // A bookmark publication with the same options meets the preconditions ('max' is the server's maximum).
    assert.equal((await publish(alice, BOOKMARKS, 'other@conference.localhost', xml('conference', { xmlns: BOOKMARKS }), BOOKMARK_OPTIONS)).attrs.type, 'result');

    // XEP-0223: private data is a whitelist node too; a member of the whitelist may read it.
    const priv = 'urn:test:private';
    assert.equal((await publish(alice, priv, 'current', xml('secret', { xmlns: priv }, 's3cret'),
      { 'pubsub#persist_items': 'true', 'pubsub#access_model': 'whitelist' })).attrs.type, 'result');
    assert.equal(errorOf(await items(bob, a, priv)).condition, 'not-allowed');
    const grant = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: OWNER },
      xml('affiliations', { node: priv }, xml('affiliation', { jid: `${b}@localhost`, affiliation: 'member' }))));
    assert.equal(grant.attrs.type, 'result');
    assert.equal((await items(bob, a, priv)).getChild('pubsub', PUBSUB)?.getChild('items')?.getChild('item')?.getChildText('secret', priv), 's3cret');
  });

  it('lets the owner configure, purge and delete a node, notifying subscribers', async () => {
    const [a, b] = await users('alice', 'bob') as [string, string];
    await befriend(a, b);
    const node = 'urn:test:owned';
    const alice = await login(a, 'r', []);
    const bob = await login(b, 'r', [node]);
    await publish(alice, node, 'one', xml('x', { xmlns: node }));
    await bob.next((s) => eventItems(s, node) !== undefined);

    // Configure: max_items up to 2, then two more items keep only the last two.
    const set = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: OWNER },
      xml('configure', { node }, form('http://jabber.org/protocol/pubsub#node_config', { 'pubsub#max_items': '2', 'pubsub#deliver_payloads': '0' }))));
    assert.equal(set.attrs.type, 'result');
    await publish(alice, node, 'two', xml('x', { xmlns: node }));
    const bare = await bob.next((s) => eventItems(s, node)?.getChild('item')?.attrs.id === 'two');
    assert.equal(eventItems(bare, node)?.getChild('item')?.children.length, 0, 'deliver_payloads off: no payload');
    await publish(alice, node, 'three', xml('x', { xmlns: node }));
    const kept = await items(alice, a, node);
    assert.deepEqual(kept.getChild('pubsub', PUBSUB)?.getChild('items')?.getChildren('item').map((i) => i.attrs.id), ['two', 'three']);
    const bad = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: OWNER },
      xml('configure', { node }, form('http://jabber.org/protocol/pubsub#node_config', { 'pubsub#access_model': 'roster' }))));
    assert.equal(errorOf(bad).condition, 'not-acceptable');
    const notOwner = await request(bob, { type: 'get', to: `${a}@localhost` }, xml('pubsub', { xmlns: OWNER }, xml('configure', { node })));
    assert.equal(errorOf(notOwner).condition, 'forbidden');

    const purge = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: OWNER }, xml('purge', { node })));
    assert.equal(purge.attrs.type, 'result');
    await bob.next((s) => s.getChild('event', EVENT)?.getChild('purge')?.attrs.node === node);
    assert.equal((await items(alice, a, node)).getChild('pubsub', PUBSUB)?.getChild('items')?.getChildren('item').length, 0);

    const del = await request(alice, { type: 'set' }, xml('pubsub', { xmlns: OWNER }, xml('delete', { node })));
    assert.equal(del.attrs.type, 'result');
    await bob.next((s) => s.getChild('event', EVENT)?.getChild('delete')?.attrs.node === node);
    assert.equal(errorOf(await items(alice, a, node)).condition, 'item-not-found');
  });
});
