// XEP-0115: the server's caps in stream features, and client caps verified and cached once per hash.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { connectClient, xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import { capsVer, parseInfo } from '../../src/modules/caps.ts';
import { parseElement } from '../../src/xml/parse.ts';
import type { C2sSession } from '../../src/core/session.ts';
import { iqRequestsOf } from '../../src/core/iq-requests.ts';
import { StanzaError } from '../../src/core/errors.ts';
import { xml as sxml } from '../../src/xml/element.ts';

const CAPS = 'http://jabber.org/protocol/caps';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';

type Identity = { category: string; type: string; lang?: string; name?: string };
type Form = Array<{ var: string; type?: string; values: string[] }>;

/** XEP-0115 §5.1, written again here from the spec so the server's code is checked against another reading. */
function verOf(identities: Identity[], features: string[], forms: Form[] = []): string {
  let s = '';
  for (const i of [...identities].sort((a, b) => cmp(a.category, b.category) || cmp(a.type, b.type) || cmp(a.lang ?? '', b.lang ?? ''))) {
    s += `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}<`;
  }
  for (const f of [...features].sort(cmp)) s += `${f}<`;
  const typed = forms.map((f) => ({ type: f.find((x) => x.var === 'FORM_TYPE')?.values[0] ?? '', fields: f.filter((x) => x.var !== 'FORM_TYPE') }));
  for (const form of typed.sort((a, b) => cmp(a.type, b.type))) {
    s += `${form.type}<`;
    for (const field of [...form.fields].sort((a, b) => cmp(a.var, b.var))) {
      s += `${field.var}<`;
      for (const v of [...field.values].sort(cmp)) s += `${v}<`;
    }
  }
  return createHash('sha1').update(s, 'utf8').digest('base64');
}
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), 'condition never met');
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

type Calleable = { iqCallee: { get(ns: string, name: string, handler: (ctx: { element: Stanza }) => Stanza | undefined): void } };

describe('entity capabilities', () => {
  let t: TestServer;
  const open: Array<{ stop(): unknown }> = [];
  let n = 0;
  const resolved: Array<{ session: C2sSession; features: ReadonlySet<string> }> = [];

  before(async () => {
    t = await startServer({ modules: { disco: { contact: { admin: ['xmpp:admin@localhost', 'mailto:admin@example.com'], abuse: ['mailto:abuse@example.com'] } } } });
    t.server.hosts.get('localhost')?.bus.on('caps/resolved', (e) => { resolved.push(e); });
  });
  after(async () => {
    for (const c of open) await c.stop();
    await t.stop();
  });

  async function user(): Promise<string> {
    const name = `caps${++n}`;
    await t.register(name, 'pw');
    return name;
  }

  /** Waits for the server to have learnt a resource's features. */
  async function featuresOf(jid: string): Promise<ReadonlySet<string>> {
    for (let i = 0; i < 500; i++) {
      const hit = resolved.find((r) => r.session.jid?.toString() === jid);
      if (hit) return hit.features;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`caps of ${jid} never resolved`);
  }

  /** An xmpp.js client that answers disco#info for its caps node and counts how often it is asked. */
  async function capsClient(features: string[], opts: { lie?: boolean; resource?: string } = {}): Promise<{ c: TestClient; asked: () => number; ver: string }> {
    const c = await connectClient({ port: t.port, username: await user(), password: 'pw', resource: opts.resource ?? 'r' });
    open.push(c);
    const identity = { category: 'client', type: 'pc', name: 'Test client' };
    const ver = verOf([identity], features);
    let asked = 0;
    (c.xmpp as unknown as Calleable).iqCallee.get(DISCO_INFO, 'query', ({ element }) => {
      asked++;
      const answered = opts.lie ? [...features, 'urn:example:extra'] : features;
      return xml('query', { xmlns: DISCO_INFO, node: element.attrs.node },
        xml('identity', identity), ...answered.map((f) => xml('feature', { var: f })));
    });
    await c.xmpp.send(xml('presence', null, xml('c', { xmlns: CAPS, hash: 'sha-1', node: 'https://client.example', ver })));
    return { c, asked: () => asked, ver };
  }

  it('computes the XEP-0115 §5.2 and §5.3 example verification strings', () => {
    const simple = parseElement(`<query xmlns='${DISCO_INFO}'><identity category='client' name='Exodus 0.9.1' type='pc'/>`
      + `<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>`
      + `<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query>`);
    assert.ok(simple);
    assert.equal(capsVer(parseInfo(simple)), 'QgayPKawpkPSDYmwT/WM94uAlu0=');

    const complex = parseElement(`<query xmlns='${DISCO_INFO}'>`
      + `<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>`
      + `<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>`
      + `<feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/>`
      + `<feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/>`
      + `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>`
      + `<field var='ip_version'><value>ipv4</value><value>ipv6</value></field><field var='os'><value>Mac</value></field>`
      + `<field var='os_version'><value>10.5.1</value></field><field var='software'><value>Psi</value></field>`
      + `<field var='software_version'><value>0.11</value></field></x></query>`);
    assert.ok(complex);
    assert.equal(capsVer(parseInfo(complex)), 'q07IKJEyjvHSyhy//CH0CxmKi8w=');
    // §5.4: a duplicated feature makes the information ill-formed.
    const dup = parseInfo(simple);
    dup.features.push(dup.features[0] as string);
    assert.equal(capsVer(dup), undefined);
  });

  it('advertises the server\'s caps in stream features with the ver of its disco#info', async () => {
    const name = await user();
    const c = await RawClient.connect(t.port);
    open.push({ stop: () => c.destroy() });
    await c.openStream();
    await c.starttls();
    const preauth = await c.openStream();
    const m = preauth.match(/<c xmlns="http:\/\/jabber\.org\/protocol\/caps" hash="sha-1" node="https:\/\/parley\.im" ver="([^"]+)"\/>/);
    assert.ok(m, preauth);
    const ver = m[1] as string;

    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${name}\0pw`).toString('base64')}</auth>`);
    await c.expect(/<success/);
    const bound = await c.openStream();
    assert.match(bound, new RegExp(`<c xmlns="${CAPS}" hash="sha-1" node="https://parley.im" ver="${ver.replace(/[+/]/g, '\\$&')}"/>`));
    c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    await c.expect(/<\/iq>/);

    c.send(`<iq type='get' id='d1' to='localhost'><query xmlns='${DISCO_INFO}'/></iq>`);
    const result = parseElement((await c.expect(/<iq[^>]*id="d1"[\s\S]*?<\/iq>/))[0]);
    const query = result?.getChild('query', DISCO_INFO);
    assert.ok(query);
    const identities = query.getChildren('identity').map((i) => ({ category: i.attrs.category ?? '', type: i.attrs.type ?? '', name: i.attrs.name, lang: i.attrs['xml:lang'] }));
    const features = query.getChildren('feature').map((f) => f.attrs.var ?? '');
    const forms = query.getChildren('x', 'jabber:x:data').map((x) => x.getChildren('field').map((f) => ({
      var: f.attrs.var ?? '', type: f.attrs.type, values: f.getChildren('value').map((v) => v.text()),
    })));
    assert.equal(forms.length, 1, 'the contact addresses form is part of the hashed information');
    assert.equal(verOf(identities, features, forms), ver);

    // §6.2: node#ver answers with the same information.
    c.send(`<iq type='get' id='d2' to='localhost'><query xmlns='${DISCO_INFO}' node='https://parley.im#${ver}'/></iq>`);
    const again = parseElement((await c.expect(/<iq[^>]*id="d2"[\s\S]*?<\/iq>/))[0])?.getChild('query', DISCO_INFO);
    assert.equal(again?.attrs.node, `https://parley.im#${ver}`);
    assert.deepEqual(again?.getChildren('feature').map((f) => f.attrs.var), features);
    c.send(`<iq type='get' id='d3' to='localhost'><query xmlns='${DISCO_INFO}' node='https://parley.im#stale'/></iq>`);
    assert.match((await c.expect(/<iq[^>]*id="d3"[\s\S]*?<\/iq>/))[0], /<item-not-found/);
  });

  it('asks each hash once, whoever advertises it, and keeps the features per session', async () => {
    const features = [DISCO_INFO, 'urn:xmpp:avatar:metadata+notify', 'urn:test:once'];
    const first = await capsClient(features);
    const got = await featuresOf(first.c.jid);
    assert.ok(got.has('urn:xmpp:avatar:metadata+notify'));
    const second = await capsClient(features);
    const third = await capsClient(features, { resource: 'other' });
    assert.deepEqual([...(await featuresOf(second.c.jid))].sort(), [...features].sort());
    assert.deepEqual([...(await featuresOf(third.c.jid))].sort(), [...features].sort());
    assert.equal(first.asked() + second.asked() + third.asked(), 1);
    assert.equal(first.asked(), 1);

    // Another release of the client is another hash: asked once more.
    const fourth = await capsClient([...features, 'urn:test:new']);
    await featuresOf(fourth.c.jid);
    assert.equal(fourth.asked(), 1);
  });

  it('does not accept (or cache) an answer that does not match the hash', async () => {
    const features = [DISCO_INFO, 'urn:test:liar'];
    const liar = await capsClient(features, { lie: true });
    await until(() => liar.asked() === 1);
    // A round trip after the answer: the liar's stream is handled in order, so the answer has been judged.
    await liar.c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    // The answer was refused and not cached: an honest client with the same caps is asked again.
    const honest = await capsClient(features);
    assert.deepEqual([...(await featuresOf(honest.c.jid))].sort(), [...features].sort());
    assert.equal(liar.asked(), 1);
    assert.equal(honest.asked(), 1);
    assert.equal(resolved.some((r) => r.session.jid?.toString() === liar.c.jid), false);
  });

  it('tracks IQs the server sends: the answer from the addressee settles them, nothing else does', async () => {
    const host = t.server.hosts.get('localhost');
    assert.ok(host);
    const requests = iqRequestsOf(host);
    const [u1, u2] = [await user(), await user()];
    const target = await RawClient.connect(t.port);
    const other = await RawClient.connect(t.port);
    open.push({ stop: () => target.destroy() }, { stop: () => other.destroy() });
    const jid = await target.login(u1, 'pw', 'r');
    await other.login(u2, 'pw', 'r');

    const pending = requests.request(sxml('iq', { type: 'get', to: jid }, sxml('query', { xmlns: 'jabber:iq:version' })), 5000);
    const id = (await target.expect(/<iq type="get"[^>]* id="(parley-[^"]+)"/))[1] as string;
    // Someone else answering with the same id is not the addressee: ignored.
    other.send(`<iq type='result' id='${id}' to='localhost'><query xmlns='jabber:iq:version'><name>spoof</name></query></iq>`);
    other.send(`<iq type='get' id='after-spoof' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await other.expect(/id="after-spoof"/); // the spoof has been routed by now
    target.send(`<iq type='result' id='${id}' to='localhost'><query xmlns='jabber:iq:version'><name>real</name></query></iq>`);
    const result = await pending;
    assert.equal(result.getChild('query')?.getChildText('name'), 'real');

    const refused = requests.request(sxml('iq', { type: 'get', to: jid }, sxml('query', { xmlns: 'jabber:iq:version' })), 5000);
    const id2 = (await target.expect(/<iq type="get"[^>]* id="(parley-[^"]+)"/))[1] as string;
    target.send(`<iq type='error' id='${id2}' to='localhost'><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    await assert.rejects(refused, (err: unknown) => err instanceof StanzaError && err.condition === 'feature-not-implemented' && err.type === 'cancel');

    // A resource that is not there: the bounce settles it.
    await assert.rejects(requests.request(sxml('iq', { type: 'get', to: `${u1}@localhost/gone` }, sxml('ping', { xmlns: 'urn:xmpp:ping' }))),
      (err: unknown) => err instanceof StanzaError && err.condition === 'service-unavailable');
    // Silence: the timeout rejects it.
    await assert.rejects(requests.request(sxml('iq', { type: 'get', to: jid }, sxml('ping', { xmlns: 'urn:xmpp:ping' })), 50),
      (err: unknown) => err instanceof StanzaError && err.condition === 'remote-server-timeout');
    assert.equal(requests.size, 0);
  });
});
