// XEP-0030 with XEP-0128/XEP-0157: the server's and accounts' info and items, and the contact addresses form.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { parseElement } from '../../src/xml/parse.ts';
import type { Element } from '../../src/xml/element.ts';

const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';

describe('service discovery', () => {
  let t: TestServer;
  const open: RawClient[] = [];
  let seq = 0;

  before(async () => {
    t = await startServer({
      modules: {
        disco: {
          contact: { admin: ['xmpp:admin@localhost', 'mailto:admin@example.com'], abuse: ['mailto:abuse@example.com'] },
          items: [{ jid: 'pubsub.localhost', name: 'Public pubsub' }],
        },
        upload: false, // the test registers its own upload item
        muc: false, // its conference.localhost item would be listed too
      },
    });
    for (const u of ['owner', 'stranger']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.destroy();
    await t.stop();
  });

  async function login(user: string): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(user, 'pw', 'r');
    return c;
  }

  /** Sends an IQ and returns the parsed reply. */
  async function iq(c: RawClient, attrs: string, body: string): Promise<Element> {
    const id = `q${++seq}`;
    c.send(`<iq type='get' id='${id}' ${attrs}>${body}</iq>`);
    const raw = (await c.expect(new RegExp(`<iq[^>]*id="${id}"[^>]*(/>|>[\\s\\S]*?</iq>)`)))[0];
    const el = parseElement(raw);
    assert.ok(el, raw);
    return el;
  }

  it('answers the server\'s info with its identity, the modules\' features and the contact addresses', async () => {
    const c = await login('owner');
    const reply = await iq(c, "to='localhost'", `<query xmlns='${INFO}'/>`);
    assert.equal(reply.attrs.type, 'result');
    const q = reply.getChild('query', INFO);
    assert.ok(q);
    assert.deepEqual(q.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`), ['server/im']);
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of [INFO, ITEMS, 'urn:xmpp:ping']) assert.ok(features.includes(f), f);
    assert.deepEqual(features, [...features].sort(), 'features are sorted');
    assert.equal(new Set(features).size, features.length, 'and unique');
    // PEP is the account's, not the server's.
    assert.ok(!features.includes('http://jabber.org/protocol/pubsub#publish'));

    const forms = q.getChildren('x', 'jabber:x:data');
    assert.equal(forms.length, 1);
    const form = forms[0] as Element;
    assert.equal(form.attrs.type, 'result');
    const fields = new Map(form.getChildren('field').map((f) => [f.attrs.var, f]));
    assert.equal(fields.get('FORM_TYPE')?.attrs.type, 'hidden');
    assert.equal(fields.get('FORM_TYPE')?.getChildText('value'), 'http://jabber.org/network/serverinfo');
    assert.deepEqual(fields.get('admin-addresses')?.getChildren('value').map((v) => v.text()), ['xmpp:admin@localhost', 'mailto:admin@example.com']);
    assert.equal(fields.get('admin-addresses')?.attrs.type, 'list-multi');
    assert.deepEqual(fields.get('abuse-addresses')?.getChildren('value').map((v) => v.text()), ['mailto:abuse@example.com']);
    assert.equal(fields.has('support-addresses'), false, 'kinds without addresses are left out');

    const unknown = await iq(c, "to='localhost'", `<query xmlns='${INFO}' node='no-such-node'/>`);
    assert.ok(unknown.getChild('error')?.getChild('item-not-found'));
  });

  it('lists configured items and the services modules register', async () => {
    const host = t.server.hosts.get('localhost');
    assert.ok(host);
    const upload = { jid: 'upload.localhost', name: 'File upload' };
    host.discoItems.add(upload);
    try {
      const c = await login('owner');
      const reply = await iq(c, "to='localhost'", `<query xmlns='${ITEMS}'/>`);
      const items = reply.getChild('query', ITEMS)?.getChildren('item').map((i) => ({ ...i.attrs }));
      assert.deepEqual(items, [{ jid: 'pubsub.localhost', name: 'Public pubsub' }, upload]);
      const node = await iq(c, "to='localhost'", `<query xmlns='${ITEMS}' node='nothing-here'/>`);
      assert.ok(node.getChild('error')?.getChild('item-not-found'));
    } finally {
      host.discoItems.delete(upload);
    }
  });

  it('answers for an account: the pep identity and its features, to anyone, and nothing for an unknown account', async () => {
    const owner = await login('owner');
    const own = (await iq(owner, '', `<query xmlns='${INFO}'/>`)).getChild('query', INFO);
    assert.ok(own);
    const identities = own.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`);
    assert.deepEqual(identities.sort(), ['account/registered', 'pubsub/pep']);
    const features = own.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['http://jabber.org/protocol/pubsub#publish', 'http://jabber.org/protocol/pubsub#publish-options', INFO]) {
      assert.ok(features.includes(f), f);
    }

    // Anyone may ask (XEP-0163 'Contact Service Discovery'); what is listed depends on who asks.
    const stranger = await login('stranger');
    const info = await iq(stranger, "to='owner@localhost'", `<query xmlns='${INFO}'/>`);
    assert.equal(info.attrs.type, 'result');
    assert.ok(info.getChild('query', INFO)?.getChildren('identity').some((i) => i.attrs.category === 'pubsub' && i.attrs.type === 'pep'));
    const items = await iq(stranger, "to='owner@localhost'", `<query xmlns='${ITEMS}'/>`);
    assert.equal(items.attrs.type, 'result');
    assert.equal(items.getChild('query', ITEMS)?.getChildren('item').length, 0);
    const none = await iq(stranger, "to='nobody@localhost'", `<query xmlns='${INFO}'/>`);
    assert.ok(none.getChild('error')?.getChild('service-unavailable'), 'no account, no answer on its behalf');
  });

  it('refuses contact addresses that are not URIs before any port opens', async () => {
    await assert.rejects(startServer({ modules: { disco: { contact: { admin: ['admin at example dot com'] } } } }),
      (err: Error) => err.name === 'ConfigError' && /modules\.disco\.contact\.admin/.test(err.message));
  });
});
