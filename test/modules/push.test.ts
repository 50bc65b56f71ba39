// XEP-0357 push notifications end to end: a raw XEP-0114 component plays the app server's push service.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { connectClient, xml, type TestClient } from '../helpers/xmpp-client.ts';
import { builtinModules } from '../../src/modules/index.ts';
import push, { requestPush } from '../../src/modules/push.ts';
import type { ModuleDefinition } from '../../src/core/module.ts';
import type { Element } from '../../src/xml/element.ts';
import { parseElement } from '../../src/xml/parse.ts';
import { Jid } from '../../src/xmpp/jid.ts';

// The module list the test servers load; push joins it here until src/modules/index.ts lists it.
if (!builtinModules.some((m) => m.id === 'push')) builtinModules.push(push as ModuleDefinition);

const PUSH = 'urn:xmpp:push:0';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const DATA = 'jabber:x:data';
const SERVICE = 'apppush.localhost';
const SECRET = 'app-push-secret';
const OPTIONS_FORM = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr3t</value></field></x>`;

type Harness = {
  t: TestServer;
  users(...names: string[]): Promise<string[]>;
  login(user: string): Promise<RawClient>;
  client(user: string): Promise<TestClient>;
  component(): Promise<RawClient>;
  disconnectComponent(): Promise<void>;
  close(): Promise<void>;
};

async function harness(pushOptions: Record<string, unknown>): Promise<Harness> {
  const t = await startServer({
    listen: { component: { port: 0, enabled: true } },
    components: { [SERVICE]: { secret: SECRET } },
    modules: { push: pushOptions },
  });
  const raws: RawClient[] = [];
  const clients: TestClient[] = [];
  let n = 0;
  let current: RawClient | undefined;
  async function disconnectComponent(): Promise<void> {
    if (current && !current.isClosed) {
      current.send('</stream:stream>');
      await current.closed();
    }
  }
  return {
    t,
    async users(...names) {
      n++;
      const out = names.map((x) => `${x}${n}`);
      for (const u of out) await t.register(u, 'pw');
      return out;
    },
    async login(user) {
      const c = await RawClient.connect(t.port);
      raws.push(c);
      await c.login(user, 'pw', 'r');
      return c;
    },
    async client(user) {
      const c = await connectClient({ port: t.port, username: user, password: 'pw', resource: 'r' });
      clients.push(c);
      return c;
    },
    async component() {
      // One push service connection at a time: the previous test's goes first.
      await disconnectComponent();
      const c = await RawClient.connect(t.server.addresses.component?.port ?? 0);
      raws.push(c);
      c.send(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${SERVICE}'>`);
      const id = /\bid='([^']+)'/.exec((await c.expect(/<stream:stream [^>]*>/))[0])?.[1] ?? '';
      c.send(`<handshake>${createHash('sha1').update(id + SECRET).digest('hex')}</handshake>`);
      await c.expect(/<handshake\/>/);
      current = c;
      return c;
    },
    disconnectComponent,
    async close() {
      for (const c of raws) c.destroy();
      for (const c of clients) await c.stop();
      await t.stop();
    },
  };
}

let seq = 0;
/** An IQ and its answer, consuming the input up to that answer. */
async function iq(c: RawClient, body: string, attrs = ''): Promise<string> {
  const id = `q${++seq}`;
  c.send(`<iq type='set' id='${id}'${attrs}>${body}</iq>`);
  return (await c.expect(new RegExp(`<iq [^>]*id="${id}"[^>]*(?:/>|>[\\s\\S]*?</iq>)`)))[0];
}

const enable = (c: RawClient, node: string, form = ''): Promise<string> =>
  iq(c, `<enable xmlns='${PUSH}' jid='${SERVICE}' node='${node}'>${form}</enable>`);

/** Ends the session and waits until the server has closed it: the account has no available resource. */
async function goOffline(c: RawClient): Promise<void> {
  c.send('</stream:stream>');
  await c.closed();
}

/** The next publish the push service receives. */
async function nextPublish(comp: RawClient): Promise<Element> {
  const raw = (await comp.expect(/<iq [^>]*type="set"[^>]*>[\s\S]*?<\/iq>/))[0];
  const el = parseElement(raw);
  assert.ok(el, `unparsable: ${raw}`);
  return el;
}

/** Round trip on the component's stream: everything the server sent it before is in what this returns. */
async function sync(comp: RawClient): Promise<string> {
  const id = `sync${++seq}`;
  comp.send(`<iq type='get' id='${id}' from='${SERVICE}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  return (await comp.expect(new RegExp(`[\\s\\S]*?<iq [^>]*id="${id}"[^>]*/>`)))[0];
}

async function pingUser(c: TestClient): Promise<void> {
  const id = `p${++seq}`;
  await c.xmpp.send(xml('iq', { type: 'get', id, to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  await c.next((s) => s.attrs.id === id);
}

function notificationOf(iqEl: Element): { node: string | undefined; fields: Map<string, string>; publishOptions: Element | undefined } {
  const pubsub = iqEl.getChild('pubsub', PUBSUB);
  const publish = pubsub?.getChild('publish');
  const form = publish?.getChild('item')?.getChild('notification', PUSH)?.getChild('x', DATA);
  assert.ok(form, `no notification form in ${iqEl.toString()}`);
  assert.equal(form.attrs.type, 'submit');
  const fields = new Map<string, string>();
  for (const f of form.getChildren('field')) fields.set(f.attrs.var ?? '', f.getChildText('value') ?? '');
  return { node: publish?.attrs.node, fields, publishOptions: pubsub?.getChild('publish-options')?.getChild('x', DATA) };
}

const answer = (comp: RawClient, req: Element, error?: string): void => {
  const { id, to, from } = req.attrs;
  comp.send(error === undefined
    ? `<iq type='result' id='${id}' from='${to}' to='${from}'/>`
    : `<iq type='error' id='${id}' from='${to}' to='${from}'>${error}</iq>`);
};

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('push notifications (XEP-0357), sender included', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ include_sender: true, max_transient_errors: 5 });
  });
  after(async () => {
    await h.close();
  });
  const registrations = (user: string) => h.t.server.storage.push.list('localhost', user);

  it('advertises urn:xmpp:push:0 on the account', async () => {
    const [b] = (await h.users('d')) as [string];
    const cb = await h.login(b);
    cb.send(`<iq type='get' id='disco1' to='${b}@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const r = (await cb.expect(/<iq [^>]*id="disco1"[\s\S]*?<\/iq>/))[0];
    assert.match(r, /<feature var="urn:xmpp:push:0"\/>/);
  });

  it('publishes one notification per stored message, with the count and sender, and the publish options', async () => {
    const comp = await h.component();
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const cb = await h.login(b);
    assert.match(await enable(cb, 'node-b', OPTIONS_FORM), /type="result"/);
    await goOffline(cb);

    const ca = await h.client(a);
    for (let i = 1; i <= 3; i++) {
      await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: `m${i}` }, xml('body', {}, `secret text ${i}`)));
    }
    for (let i = 1; i <= 3; i++) {
      const req = await nextPublish(comp);
      assert.equal(req.attrs.from, `${b}@localhost`);
      assert.equal(req.attrs.to, SERVICE);
      const { node, fields, publishOptions } = notificationOf(req);
      assert.equal(node, 'node-b');
      assert.equal(fields.get('FORM_TYPE'), 'urn:xmpp:push:summary');
      assert.equal(fields.get('message-count'), String(i));
      assert.equal(fields.get('last-message-sender'), `${a}@localhost/r`);
      assert.equal(fields.has('last-message-body'), false);
      assert.ok(publishOptions, 'publish-options carried');
      assert.match(publishOptions.toString(), /<field var="secret"><value>s3cr3t<\/value><\/field>/);
      answer(comp, req);
    }
    await pingUser(ca);
    assert.doesNotMatch(await sync(comp), /type="set"/, 'exactly three publishes');
    assert.equal(ca.inbox.some((s) => s.attrs.type === 'error'), false);

    const back = await h.login(b);
    back.send('<presence/>');
    for (let i = 1; i <= 3; i++) await back.expect(new RegExp(`<message [^>]*id="m${i}"[\\s\\S]*?secret text ${i}`));
    assert.equal((await registrations(b)).length, 1);
  });

  it('publishes nothing for an account without registrations, and nothing after disable', async () => {
    const comp = await h.component();
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const ca = await h.client(a);
    let cb = await h.login(b);
    await goOffline(cb);
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'none' }, xml('body', {}, 'x')));
    await pingUser(ca);
    assert.doesNotMatch(await sync(comp), /type="set"/);

    cb = await h.login(b);
    assert.match(await enable(cb, 'node-1'), /type="result"/);
    assert.match(await enable(cb, 'node-2'), /type="result"/);
    await goOffline(cb);
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'two' }, xml('body', {}, 'x')));
    const nodes = [notificationOf(await nextPublish(comp)).node, notificationOf(await nextPublish(comp)).node].sort();
    assert.deepEqual(nodes, ['node-1', 'node-2']);

    cb = await h.login(b);
    assert.match(await iq(cb, `<disable xmlns='${PUSH}' jid='${SERVICE}' node='node-1'/>`), /type="result"/);
    assert.deepEqual((await registrations(b)).map((r) => r.node), ['node-2']);
    assert.match(await iq(cb, `<disable xmlns='${PUSH}' jid='${SERVICE}'/>`), /type="result"/);
    assert.deepEqual(await registrations(b), []);
    await goOffline(cb);
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'after' }, xml('body', {}, 'x')));
    await pingUser(ca);
    assert.doesNotMatch(await sync(comp), /type="set"/, 'no publish after disable');
  });

  it('refuses malformed requests and other accounts\' settings', async () => {
    const [b, c] = (await h.users('b', 'c')) as [string, string];
    const cb = await h.login(b);
    const bad = /type="error"[\s\S]*<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/;
    assert.match(await iq(cb, `<enable xmlns='${PUSH}' node='n'/>`), bad);
    assert.match(await iq(cb, `<enable xmlns='${PUSH}' jid='${SERVICE}'/>`), bad);
    assert.match(await iq(cb, `<enable xmlns='${PUSH}' jid='${SERVICE}' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>`), bad);
    assert.match(await iq(cb, `<disable xmlns='${PUSH}'/>`), bad);
    assert.match(await iq(cb, `<enable xmlns='${PUSH}' jid='a@@b' node='n'/>`), /<jid-malformed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(await iq(cb, `<enable xmlns='${PUSH}' jid='${SERVICE}' node='n'/>`, ` to='${c}@localhost'`), /<forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.deepEqual(await registrations(b), []);
    assert.deepEqual(await registrations(c), []);
  });

  it('stores messages while the push service is down and keeps the registration for when it returns', async () => {
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const cb = await h.login(b);
    await enable(cb, 'node-down');
    await goOffline(cb);
    await h.disconnectComponent();
    assert.equal(h.t.server.router.hasRoute(SERVICE), false);
    const ca = await h.client(a);
    for (let i = 1; i <= 3; i++) await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: `d${i}` }, xml('body', {}, `down ${i}`)));
    await pingUser(ca);
    assert.equal(ca.inbox.some((s) => s.attrs.type === 'error'), false, 'the sender sees no error');

    const comp = await h.component();
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'd4' }, xml('body', {}, 'down 4')));
    const req = await nextPublish(comp);
    assert.equal(notificationOf(req).fields.get('message-count'), '4');
    answer(comp, req);

    const back = await h.login(b);
    back.send('<presence/>');
    for (let i = 1; i <= 4; i++) await back.expect(new RegExp(`<message [^>]*id="d${i}"`));
  });

  it('removes the registration when the service answers a publish with an error', async () => {
    const comp = await h.component();
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const cb = await h.login(b);
    await enable(cb, 'node-gone');
    await goOffline(cb);
    const ca = await h.client(a);
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'e1' }, xml('body', {}, 'x')));
    answer(comp, await nextPublish(comp), `<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`);
    await eventually(async () => (await registrations(b)).length === 0, 'registration removed');
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'e2' }, xml('body', {}, 'x')));
    await pingUser(ca);
    assert.doesNotMatch(await sync(comp), /type="set"/);
  });

  it('keeps the registration through transient errors until max_transient_errors in a row', async () => {
    const comp = await h.component();
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const cb = await h.login(b);
    await enable(cb, 'node-flaky');
    await goOffline(cb);
    const ca = await h.client(a);
    const wait = `<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`;
    for (let i = 1; i <= 5; i++) {
      await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: `f${i}` }, xml('body', {}, 'x')));
      const req = await nextPublish(comp);
      assert.equal(notificationOf(req).fields.get('message-count'), String(i), 'still registered');
      answer(comp, req, wait);
      await sync(comp);
    }
    await eventually(async () => (await registrations(b)).length === 0, 'removed after five in a row');
  });

  it('drops the registration when the service withdraws the affiliation', async () => {
    const comp = await h.component();
    const [b] = (await h.users('b')) as [string];
    const cb = await h.login(b);
    await enable(cb, 'node-aff');
    comp.send(`<message from='${SERVICE}' to='${b}@localhost' id='aff'><pubsub xmlns='${PUBSUB}' node='node-aff'><affiliation jid='${b}@localhost' affiliation='none'/></pubsub></message>`);
    await eventually(async () => (await registrations(b)).length === 0, 'registration removed');
  });

  it('lets another module (stream management) request the same push for a detached session', async () => {
    const comp = await h.component();
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const cb = await h.login(b);
    await enable(cb, 'node-sm');
    const host = h.t.server.hosts.get('localhost');
    assert.ok(host);
    const stanza = parseElement(`<message from='${a}@localhost/r' to='${b}@localhost' type='chat'><body>hi</body></message>`);
    assert.ok(stanza);
    await requestPush({ host, user: Jid.parse(`${b}@localhost/r`), reason: 'no-active-session', stanza, count: 7 });
    const { fields } = notificationOf(await nextPublish(comp));
    assert.equal(fields.get('message-count'), '7');
    assert.equal(fields.get('last-message-sender'), `${a}@localhost/r`);
  });
});

describe('push notifications with bodies and without sender', () => {
  let h: Harness;
  before(async () => {
    h = await harness({ include_body: true, include_sender: false, publish_from: 'host' });
  });
  after(async () => {
    await h.close();
  });

  it('includes last-message-body only when configured, and publishes from the server when asked', async () => {
    const comp = await h.component();
    const [a, b] = (await h.users('a', 'b')) as [string, string];
    const cb = await h.login(b);
    await enable(cb, 'node-body');
    await goOffline(cb);
    const ca = await h.client(a);
    await ca.xmpp.send(xml('message', { to: `${b}@localhost`, type: 'chat', id: 'b1' }, xml('body', {}, 'Wherefore art thou?')));
    const req = await nextPublish(comp);
    assert.equal(req.attrs.from, 'localhost');
    const { fields, publishOptions } = notificationOf(req);
    assert.equal(fields.get('message-count'), '1');
    assert.equal(fields.get('last-message-body'), 'Wherefore art thou?');
    assert.equal(fields.has('last-message-sender'), false);
    assert.equal(publishOptions, undefined);
    answer(comp, req);
    await pingUser(ca);
    assert.equal((await h.t.server.storage.push.list('localhost', b)).length, 1);
  });
});
