// XEP-0054 vcard-temp and XEP-0153 vCard-based avatars, with xmpp.js and raw sockets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { TestServer } from '../helpers/server.ts';
import { Fixture } from '../helpers/fixture.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';

const VCARD = 'vcard-temp';
const UPDATE = 'vcard-temp:x:update';
const MAX = 4096;

describe('vcard-temp and avatars', () => {
  let f: Fixture;
  let t: TestServer;
  before(async () => {
    f = await Fixture.start({ modules: { vcard: { max_size: MAX } } });
    t = f.t;
  });
  after(() => f.stop());

  const users = (...names: string[]): Promise<string[]> => f.users(...names);
  const client = (user: string, resource = 'r'): Promise<TestClient> => f.client(user, resource);
  const raw = (user: string): Promise<RawClient> => f.raw(user, 'raw');

  /** Mutual presence subscription, written straight to the roster store. */
  async function befriend(a: string, b: string): Promise<void> {
    const item = (jid: string) => ({ jid, subscription: 'both' as const, ask: false, approved: false, groups: [] });
    await t.server.storage.roster.put(t.domain, a, item(`${b}@localhost`));
    await t.server.storage.roster.put(t.domain, b, item(`${a}@localhost`));
  }

  const getVcard = (c: TestClient, to?: string): Promise<Stanza> =>
    c.xmpp.iqCaller.request(xml('iq', { type: 'get', to }, xml('vCard', { xmlns: VCARD })));
  const setVcard = (c: TestClient, ...children: Stanza[]): Promise<Stanza> =>
    c.xmpp.iqCaller.request(xml('iq', { type: 'set' }, xml('vCard', { xmlns: VCARD }, ...children)));
  const photo = (bytes: Buffer): Stanza =>
    xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, bytes.toString('base64').replace(/(.{76})/g, '$1\n')));
  const sha1 = (bytes: Buffer): string => createHash('sha1').update(bytes).digest('hex');
  const updateOf = (p: Stanza): Stanza | undefined => p.getChild('x', UPDATE);

  it('stores a vCard and returns it to its owner and to another user', async () => {
    const [a, b] = await users('va', 'vb');
    const alice = await client(a as string);
    const bob = await client(b as string);
    await setVcard(alice, xml('FN', {}, 'Alice Liddell'), xml('NICKNAME', {}, 'alice & co'),
      xml('TEL', {}, xml('HOME', {}), xml('NUMBER', {}, '555')));

    const own = (await getVcard(alice)).getChild('vCard', VCARD);
    assert.equal(own?.getChildText('FN'), 'Alice Liddell');
    assert.equal(own?.getChildText('NICKNAME'), 'alice & co');
    assert.equal(own?.getChild('TEL')?.getChildText('NUMBER'), '555');

    // Answered by the server on Alice's behalf, from her bare JID.
    const other = await getVcard(bob, `${a}@localhost`);
    assert.equal(other.attrs.from, `${a}@localhost`);
    assert.equal(other.getChild('vCard', VCARD)?.getChildText('FN'), 'Alice Liddell');

    // A new set replaces the whole vCard.
    await setVcard(alice, xml('FN', {}, 'Alice'));
    const replaced = (await getVcard(bob, `${a}@localhost`)).getChild('vCard', VCARD);
    assert.equal(replaced?.getChildText('FN'), 'Alice');
    assert.equal(replaced?.getChild('NICKNAME'), undefined);
  });

  it('answers an empty vCard to its owner, item-not-found to others, service-unavailable for no account', async () => {
    const [a, b] = await users('ea', 'eb');
    const alice = await client(a as string);
    await client(b as string);
    const own = await getVcard(alice);
    const vcard = own.getChild('vCard', VCARD);
    assert.ok(vcard, 'a vCard element is returned');
    assert.equal(vcard.children.length, 0);
    await assert.rejects(getVcard(alice, `${b}@localhost`), { condition: 'item-not-found' });
    await assert.rejects(getVcard(alice, 'nobody-here@localhost'), { condition: 'service-unavailable' });
  });

  it("refuses to set another user's vCard", async () => {
    const [a, b] = await users('fa', 'fb');
    const c = await raw(a as string);
    c.send(`<iq type='set' id='x1' to='${b}@localhost'><vCard xmlns='vcard-temp'><FN>Not Bob</FN></vCard></iq>`);
    const reply = (await c.expect(/<iq[^>]*id="x1"[\s\S]*?<\/iq>/))[0];
    assert.match(reply, /type="error"/);
    assert.match(reply, /<error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    // Bob still has no vCard.
    c.send(`<iq type='get' id='x2' to='${b}@localhost'><vCard xmlns='vcard-temp'/></iq>`);
    assert.match((await c.expect(/<iq[^>]*id="x2"[\s\S]*?<\/iq>/))[0], /<item-not-found /);
  });

  it('refuses a vCard above the size limit and keeps the stored one', async () => {
    const [a] = await users('sz');
    const c = await raw(a as string);
    const fits = 'x'.repeat(MAX - 200);
    c.send(`<iq type='set' id='ok'><vCard xmlns='vcard-temp'><DESC>${fits}</DESC></vCard></iq>`);
    assert.match((await c.expect(/<iq[^>]*id="ok"[^>]*\/>|<iq[^>]*id="ok"[\s\S]*?<\/iq>/))[0], /type="result"/);
    c.send(`<iq type='set' id='big'><vCard xmlns='vcard-temp'><DESC>${'y'.repeat(MAX + 1)}</DESC></vCard></iq>`);
    const refused = (await c.expect(/<iq[^>]*id="big"[\s\S]*?<\/iq>/))[0];
    assert.match(refused, /type="error"/);
    assert.match(refused, /<error type="modify"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    c.send(`<iq type='get' id='g'><vCard xmlns='vcard-temp'/></iq>`);
    const got = (await c.expect(/<iq[^>]*id="g"[\s\S]*?<\/iq>/))[0];
    assert.ok(got.includes(`<DESC>${fits}</DESC>`), 'the earlier vCard is kept');
  });

  it('advertises vcard-temp for the server and accounts', async () => {
    const [a] = await users('di');
    const alice = await client(a as string);
    for (const to of ['localhost', `${a}@localhost`]) {
      const info = await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      const features = info.getChild('query')?.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features?.includes(VCARD), `${to} lists vcard-temp`);
    }
  });

  it('puts the photo hash in presence, re-broadcasts it on change, and overrides the client', async () => {
    const [a, b] = await users('pa', 'pb');
    await befriend(a as string, b as string);
    const alice = await client(a as string);
    const bob = await client(b as string);
    await bob.xmpp.send(xml('presence'));
    await bob.next((s) => s.is('presence') && s.attrs.from === bob.jid);
    await alice.xmpp.send(xml('presence', {}, xml('show', {}, 'chat')));
    const first = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    // No vCard stored yet: the server adds nothing.
    assert.equal(updateOf(first), undefined);

    const png1 = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    await setVcard(alice, xml('FN', {}, 'Alice'), photo(png1));
    const rebroadcast = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    assert.equal(updateOf(rebroadcast)?.getChildText('photo'), sha1(png1));
    assert.equal(rebroadcast.getChildText('show'), 'chat', 'the current presence is what goes out again');

    // The client's own (stale) hash is replaced by the one the server knows.
    await alice.xmpp.send(xml('presence', {}, xml('x', { xmlns: UPDATE }, xml('photo', {}, '0123456789abcdef0123456789abcdef01234567'))));
    const corrected = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    const xs = corrected.getChildren('x').filter((x) => x.attrs.xmlns === UPDATE);
    assert.equal(xs.length, 1);
    assert.equal(xs[0]?.getChildText('photo'), sha1(png1));

    // A new photo: a new hash goes out without the client sending presence.
    const png2 = Buffer.from('89504e470d0a1a0a00000000deadbeef', 'hex');
    await setVcard(alice, xml('FN', {}, 'Alice'), photo(png2));
    const changed = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    assert.equal(updateOf(changed)?.getChildText('photo'), sha1(png2));

    // The photo removed: an empty <photo/> says "no avatar".
    await setVcard(alice, xml('FN', {}, 'Alice'));
    const removed = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    const emptyPhoto = updateOf(removed)?.getChild('photo');
    assert.ok(emptyPhoto, 'an update element with a photo child');
    assert.equal(emptyPhoto.getText(), '');

    // A vCard change that keeps the hash sends nothing new.
    await setVcard(alice, xml('FN', {}, 'Alice L.'));
    await alice.xmpp.send(xml('presence', {}, xml('status', {}, 'marker')));
    const next = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    assert.equal(next.getChildText('status'), 'marker', 'no re-broadcast came before the marker');
  });

  it("leaves the client's update element alone when the server has no vCard", async () => {
    const [a, b] = await users('la', 'lb');
    await befriend(a as string, b as string);
    const alice = await client(a as string);
    const bob = await client(b as string);
    await bob.xmpp.send(xml('presence'));
    await bob.next((s) => s.is('presence') && s.attrs.from === bob.jid);
    await alice.xmpp.send(xml('presence', {}, xml('x', { xmlns: UPDATE }, xml('photo', {}, 'abc'))));
    const p = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    assert.equal(updateOf(p)?.getChildText('photo'), 'abc');
  });

  it('answers probes with the hashed presence to a contact who comes online later', async () => {
    const [a, b] = await users('qa', 'qb');
    await befriend(a as string, b as string);
    const png = Buffer.from('0102030405', 'hex');
    const alice = await client(a as string);
    await setVcard(alice, photo(png));
    await alice.xmpp.send(xml('presence'));
    await alice.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    const bob = await client(b as string);
    await bob.xmpp.send(xml('presence'));
    const p = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
    assert.equal(updateOf(p)?.getChildText('photo'), sha1(png));
  });
});
