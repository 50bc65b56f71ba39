// XEP-0049 private XML storage, with xmpp.js and raw sockets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestServer } from '../helpers/server.ts';
import { Fixture } from '../helpers/fixture.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';

const PRIVATE = 'jabber:iq:private';

describe('private XML storage', () => {
  let f: Fixture;
  let t: TestServer;
  before(async () => {
    f = await Fixture.start();
    t = f.t;
  });
  after(() => f.stop());

  const users = (...names: string[]): Promise<string[]> => f.users(...names);
  const client = (user: string, resource = 'r'): Promise<TestClient> => f.client(user, resource);
  const raw = (user: string): Promise<RawClient> => f.raw(user, 'raw');

  const query = (type: 'get' | 'set', ...children: Stanza[]): Stanza => xml('iq', { type }, xml('query', { xmlns: PRIVATE }, ...children));
  const get = async (c: TestClient, el: Stanza): Promise<Stanza | undefined> =>
    (await c.xmpp.iqCaller.request(query('get', el))).getChild('query', PRIVATE);

  /** Sends raw XML and returns the reply to the IQ with this id. */
  async function rawIq(c: RawClient, id: string, body: string): Promise<string> {
    c.send(body);
    return (await c.expect(new RegExp(`<iq[^>]*id="${id}"[^>]*/>|<iq[^>]*id="${id}"[\\s\\S]*?</iq>`)))[0];
  }

  it('stores per namespace and returns what was stored, across sessions', async () => {
    const [a] = await users('pr');
    const c = await client(a as string);
    await c.xmpp.iqCaller.request(query('set',
      xml('exodus', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'Hamlet')),
      xml('storage', { xmlns: 'storage:bookmarks' }, xml('conference', { jid: 'room@muc.localhost', autojoin: 'true' }))));
    await c.stop();

    const again = await client(a as string);
    const prefs = await get(again, xml('exodus', { xmlns: 'exodus:prefs' }));
    assert.equal(prefs?.getChildren('exodus').length, 1);
    assert.equal(prefs?.getChild('exodus', 'exodus:prefs')?.getChildText('defaultnick'), 'Hamlet');
    const marks = await get(again, xml('storage', { xmlns: 'storage:bookmarks' }));
    assert.equal(marks?.getChild('storage', 'storage:bookmarks')?.getChild('conference')?.attrs.jid, 'room@muc.localhost');
    assert.equal(marks?.getChild('exodus'), undefined, 'only the namespace asked for');

    // A set replaces that namespace only.
    await again.xmpp.iqCaller.request(query('set', xml('exodus', { xmlns: 'exodus:prefs' }, xml('defaultnick', {}, 'Ophelia'))));
    const replaced = await get(again, xml('exodus', { xmlns: 'exodus:prefs' }));
    assert.equal(replaced?.getChild('exodus')?.getChildText('defaultnick'), 'Ophelia');
    const kept = await get(again, xml('storage', { xmlns: 'storage:bookmarks' }));
    assert.ok(kept?.getChild('storage')?.getChild('conference'));
  });

  it('returns the element asked for when nothing is stored', async () => {
    const [a] = await users('pe');
    const c = await client(a as string);
    const r = await get(c, xml('prefs', { xmlns: 'urn:example:nothing' }));
    const el = r?.getChild('prefs', 'urn:example:nothing');
    assert.ok(el);
    assert.equal(el.children.length, 0);
  });

  it('keeps several elements of one namespace together', async () => {
    const [a] = await users('pm');
    const c = await client(a as string);
    await c.xmpp.iqCaller.request(query('set', xml('note', { xmlns: 'urn:example:notes' }, 'one'), xml('note', { xmlns: 'urn:example:notes' }, 'two')));
    const r = await get(c, xml('note', { xmlns: 'urn:example:notes' }));
    assert.deepEqual(r?.getChildren('note').map((x) => x.getText()), ['one', 'two']);
  });

  it('refuses reserved namespaces with not-acceptable', async () => {
    const [a] = await users('rs');
    const c = await raw(a as string);
    const reserved = [
      `<query xmlns='jabber:iq:roster'/>`,
      `<x xmlns='jabber:x:data'/>`,
      `<query xmlns='http://jabber.org/protocol/disco#info'/>`,
      `<vCard xmlns='vcard-temp'><FN>Hamlet</FN></vCard>`,
    ];
    for (const [i, el] of reserved.entries()) {
      for (const type of ['set', 'get']) {
        const reply = await rawIq(c, `r${type}${i}`, `<iq type='${type}' id='r${type}${i}'><query xmlns='${PRIVATE}'>${el}</query></iq>`);
        assert.match(reply, /type="error"/);
        assert.match(reply, /<error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/, `${type} ${el}`);
      }
    }
  });

  it('refuses empty queries, children without a namespace, and gets of several namespaces', async () => {
    const [a] = await users('bq');
    const c = await raw(a as string);
    assert.match(await rawIq(c, 'e1', `<iq type='get' id='e1'><query xmlns='${PRIVATE}'/></iq>`), /<not-acceptable /);
    assert.match(await rawIq(c, 'e2', `<iq type='set' id='e2'><query xmlns='${PRIVATE}'/></iq>`), /<not-acceptable /);
    assert.match(await rawIq(c, 'e3', `<iq type='set' id='e3'><query xmlns='${PRIVATE}'><prefs/></query></iq>`), /<not-acceptable /);
    assert.match(await rawIq(c, 'e4', `<iq type='get' id='e4'><query xmlns='${PRIVATE}'><a xmlns='urn:a'/><b xmlns='urn:b'/></query></iq>`), /<bad-request /);
  });

  it("refuses another user's private data, for get and set", async () => {
    const [a, b] = await users('oa', 'ob');
    const bob = await client(b as string);
    await bob.xmpp.iqCaller.request(query('set', xml('secret', { xmlns: 'urn:example:secret' }, 'bob only')));
    const c = await raw(a as string);
    const getReply = await rawIq(c, 'o1', `<iq type='get' id='o1' to='${b}@localhost'><query xmlns='${PRIVATE}'><secret xmlns='urn:example:secret'/></query></iq>`);
    assert.match(getReply, /<error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.doesNotMatch(getReply, /bob only/);
    const setReply = await rawIq(c, 'o2', `<iq type='set' id='o2' to='${b}@localhost'><query xmlns='${PRIVATE}'><secret xmlns='urn:example:secret'>mallory</secret></query></iq>`);
    assert.match(setReply, /<forbidden /);
    const still = await get(bob, xml('secret', { xmlns: 'urn:example:secret' }));
    assert.equal(still?.getChildText('secret'), 'bob only');
  });

  it('refuses data above the size limit', async () => {
    const [a] = await users('big');
    const c = await raw(a as string);
    const reply = await rawIq(c, 'b1', `<iq type='set' id='b1'><query xmlns='${PRIVATE}'><blob xmlns='urn:example:blob'>${'z'.repeat(70_000)}</blob></query></iq>`);
    assert.match(reply, /<error type="modify"><policy-violation /);
  });

  it('is advertised as a feature', async () => {
    const [a] = await users('fe');
    const c = await client(a as string);
    const info = await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    assert.ok(info.getChild('query')?.getChildren('feature').some((f) => f.attrs.var === PRIVATE));
  });
});
