// XEP-0114 external components: handshake, routing both ways, addressing rules, limits, and an independent library.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { component as xmppComponent, xml as cxml } from '@xmpp/component';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { connectClient, xml, type TestClient } from '../helpers/xmpp-client.ts';
import { ConfigError } from '../../src/core/errors.ts';

const SECRET = 'echo-secret-42';
const header = (domain: string, ns = 'jabber:component:accept'): string =>
  `<?xml version='1.0'?><stream:stream xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`;
const sha1 = (s: string): string => createHash('sha1').update(s, 'utf8').digest('hex');

describe('external components (XEP-0114)', () => {
  let t: TestServer;
  let port: number;
  const open: RawClient[] = [];
  const clients: TestClient[] = [];
  let n = 0;

  before(async () => {
    t = await startServer({
      listen: { component: { port: 0, enabled: true } },
      components: { 'echo.localhost': { secret: SECRET }, 'Bot.Localhost': { secret: 'bot-secret-42' }, 'lib.localhost': { secret: 'lib-secret-42' } },
    });
    port = t.server.addresses.component?.port ?? 0;
    assert.ok(port > 0);
  });
  after(async () => {
    for (const c of open) c.destroy();
    for (const c of clients) await c.stop();
    await t.stop();
  });

  async function raw(): Promise<RawClient> {
    const c = await RawClient.connect(port);
    open.push(c);
    return c;
  }

  /** Opens a component stream; returns the connection and the stream id the server chose. */
  async function openComponent(domain: string): Promise<{ c: RawClient; id: string; head: string }> {
    const c = await raw();
    c.send(header(domain));
    const m = await c.expect(/<stream:stream [^>]*>/);
    const id = /\bid='([^']+)'/.exec(m[0])?.[1];
    assert.ok(id, 'the header carries an id');
    return { c, id, head: m[0] };
  }

  async function component(domain = 'echo.localhost', secret = SECRET): Promise<RawClient> {
    const { c, id } = await openComponent(domain);
    c.send(`<handshake>${sha1(id + secret)}</handshake>`);
    await c.expect(/<handshake\/>/);
    return c;
  }

  async function user(): Promise<TestClient> {
    n++;
    const name = `u${n}`;
    await t.register(name, 'pw');
    const c = await connectClient({ port: t.port, username: name, password: 'pw', resource: 'r' });
    clients.push(c);
    return c;
  }

  it('accepts the handshake: header in jabber:component:accept with an id, then <handshake/>', async () => {
    const { c, id, head } = await openComponent('echo.localhost');
    assert.match(head, /xmlns='jabber:component:accept'/);
    assert.match(head, /from='echo.localhost'/);
    assert.ok(id.length >= 16);
    assert.equal(t.server.router.hasRoute('echo.localhost'), false);
    c.send(`<handshake>${sha1(id + SECRET).toUpperCase()}</handshake>`);
    await c.expect(/<handshake\/>/);
    assert.equal(t.server.router.hasRoute('echo.localhost'), true);
    assert.deepEqual(t.server.components?.connected(), ['echo.localhost']);
    c.send('</stream:stream>');
    await c.closed();
    assert.equal(t.server.router.hasRoute('echo.localhost'), false);
  });

  it('gives every connection its own stream id', async () => {
    const a = await openComponent('echo.localhost');
    const b = await openComponent('echo.localhost');
    assert.notEqual(a.id, b.id);
    a.c.destroy();
    b.c.destroy();
  });

  it('refuses a wrong secret with not-authorized and closes', async () => {
    const { c, id } = await openComponent('echo.localhost');
    c.send(`<handshake>${sha1(id + 'not-the-secret')}</handshake>`);
    await c.expect(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.expect(/<\/stream:stream>/);
    await c.closed();
    assert.equal(t.server.router.hasRoute('echo.localhost'), false);
  });

  it('refuses a handshake computed over another stream id', async () => {
    const { c } = await openComponent('echo.localhost');
    c.send(`<handshake>${sha1('some-other-id' + SECRET)}</handshake>`);
    await c.expect(/<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed();
  });

  it('answers host-unknown for a domain with no component configured, and for a virtual host', async () => {
    for (const domain of ['nobody.localhost', 'localhost']) {
      const c = await raw();
      c.send(header(domain));
      const m = await c.expect(/<stream:stream [^>]*>/);
      assert.doesNotMatch(m[0], /from=/);
      await c.expect(/<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await c.closed();
    }
  });

  it('matches the configured domain after preparing it (case-insensitive)', async () => {
    const c = await component('bot.localhost', 'bot-secret-42');
    assert.equal(t.server.router.hasRoute('bot.localhost'), true);
    c.destroy();
  });

  it('refuses the client namespace on the component port', async () => {
    const c = await raw();
    c.send(header('echo.localhost', 'jabber:client'));
    await c.expect(/<stream:error><invalid-namespace xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed();
  });

  it('refuses stanzas before the handshake', async () => {
    const { c } = await openComponent('echo.localhost');
    c.send(`<message from='echo.localhost' to='a@localhost'><body>x</body></message>`);
    await c.expect(/<stream:error><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed();
  });

  it('keeps the first connection of a domain and refuses a second with conflict', async () => {
    const first = await component();
    const { c, id } = await openComponent('echo.localhost');
    c.send(`<handshake>${sha1(id + SECRET)}</handshake>`);
    await c.expect(/<stream:error><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed();
    assert.equal(t.server.router.hasRoute('echo.localhost'), true);
    assert.equal(first.isClosed, false);
    first.send('</stream:stream>');
    await first.closed();
  });

  it('routes a user\'s message to the component (domain, bare and full JIDs) and the reply back', async () => {
    const comp = await component();
    const u = await user();
    await u.xmpp.send(xml('message', { to: 'echo.localhost', type: 'chat', id: 'm1' }, xml('body', {}, 'hello component')));
    const got = (await comp.expect(/<message [^>]*id="m1"[^>]*>[\s\S]*?<\/message>/))[0];
    assert.match(got, new RegExp(`from="${u.jid.replace('.', '\\.')}"`));
    assert.match(got, /to="echo.localhost"/);
    assert.match(got, /<body>hello component<\/body>/);

    comp.send(`<message from='echo.localhost' to='${u.jid}' type='chat' id='r1'><body>echo: hello component</body></message>`);
    const reply = await u.next((s) => s.is('message') && s.attrs.id === 'r1');
    assert.equal(reply.attrs.from, 'echo.localhost');
    assert.equal(reply.getChildText('body'), 'echo: hello component');

    for (const to of ['room@echo.localhost', 'room@echo.localhost/nick']) {
      await u.xmpp.send(xml('message', { to, type: 'chat', id: `m-${to}` }, xml('body', {}, 'x')));
      const m = (await comp.expect(new RegExp(`<message [^>]*id="m-${to.replace('.', '\\.')}"[^>]*>`)))[0];
      assert.match(m, new RegExp(`to="${to.replace('.', '\\.')}"`));
    }

    // The component may send from any address in its domain.
    comp.send(`<message from='alice@echo.localhost/phone' to='${u.jid}' id='r2'><body>from a user of the component</body></message>`);
    const r2 = await u.next((s) => s.is('message') && s.attrs.id === 'r2');
    assert.equal(r2.attrs.from, 'alice@echo.localhost/phone');
    comp.send('</stream:stream>');
    await comp.closed();
  });

  it('lets the component query the server and answers it', async () => {
    const comp = await component();
    comp.send(`<iq type='get' id='p1' from='echo.localhost' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const r = (await comp.expect(/<iq [^>]*id="p1"[^>]*\/?>/))[0];
    assert.match(r, /type="result"/);
    assert.match(r, /from="localhost"/);
    assert.match(r, /to="echo.localhost"/);
    comp.destroy();
  });

  it('closes the stream with invalid-from when the component spoofs another domain', async () => {
    const comp = await component();
    const u = await user();
    comp.send(`<message from='${u.jid.split('/')[0]}' to='${u.jid}' id='spoof'><body>I am you</body></message>`);
    await comp.expect(/<stream:error><invalid-from xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await comp.closed();
    assert.equal(t.server.router.hasRoute('echo.localhost'), false);
    // Nothing reached the user.
    await u.xmpp.send(xml('iq', { type: 'get', id: 'ping-after-spoof', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await u.next((s) => s.attrs.id === 'ping-after-spoof');
    assert.equal(u.inbox.some((s) => s.attrs.id === 'spoof'), false);
  });

  it('requires both addresses on component stanzas (improper-addressing)', async () => {
    const comp = await component();
    comp.send(`<message to='a@localhost'><body>no from</body></message>`);
    await comp.expect(/<stream:error><improper-addressing xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await comp.closed();
  });

  it('bounces a malformed stanza to the component with a stanza error, keeping the stream', async () => {
    const comp = await component();
    comp.send(`<iq type='get' from='echo.localhost' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await comp.expect(/<iq [^>]*type="error"[^>]*>[\s\S]*?<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    comp.send(`<message from='echo.localhost' to='a@@localhost' id='bad-to'><body>x</body></message>`);
    const e = (await comp.expect(/<message [^>]*id="bad-to"[^>]*>[\s\S]*?<\/message>/))[0];
    assert.match(e, /<jid-malformed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(e, /from="localhost"/);
    assert.equal(comp.isClosed, false);
    comp.destroy();
  });

  it('answers remote-server-not-found for the domain once the component is gone', async () => {
    const comp = await component();
    comp.send('</stream:stream>');
    await comp.closed();
    const u = await user();
    await u.xmpp.send(xml('message', { to: 'echo.localhost', type: 'chat', id: 'gone' }, xml('body', {}, 'anyone?')));
    const err = await u.next((s) => s.attrs.id === 'gone');
    assert.equal(err.attrs.type, 'error');
    assert.equal(err.attrs.from, 'echo.localhost');
    assert.ok(err.getChild('error')?.getChild('remote-server-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
  });

  it('applies the pre-authentication stanza limit before the handshake', async () => {
    const { c } = await openComponent('echo.localhost');
    c.send(`<handshake>${'a'.repeat(20_000)}</handshake>`);
    await c.expect(/<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed();
  });

  it('interoperates with xmpp.js\'s @xmpp/component', async () => {
    const comp = xmppComponent({ service: `xmpp://127.0.0.1:${port}`, domain: 'lib.localhost', password: 'lib-secret-42' });
    comp.reconnect.stop();
    comp.on('error', () => undefined);
    comp.on('stanza', (s: { is(n: string): boolean; attrs: Record<string, string>; getChildText(n: string): string | null }) => {
      if (s.is('message') && s.attrs.type !== 'error') {
        void comp.send(cxml('message', { to: s.attrs.from, from: s.attrs.to, type: 'chat', id: `echo-${s.attrs.id}` }, cxml('body', {}, `echo: ${s.getChildText('body')}`)));
      }
    });
    const address = await comp.start();
    try {
      assert.equal(address.toString(), 'lib.localhost');
      const u = await user();
      await u.xmpp.send(xml('message', { to: 'bot@lib.localhost', type: 'chat', id: 'lib1' }, xml('body', {}, 'ping')));
      const r = await u.next((s) => s.attrs.id === 'echo-lib1');
      assert.equal(r.attrs.from, 'bot@lib.localhost');
      assert.equal(r.getChildText('body'), 'echo: ping');
    } finally {
      await comp.stop();
    }
  });
});

describe('component configuration and timeouts', () => {
  it('refuses to start when a component domain is a virtual host', async () => {
    await assert.rejects(
      startServer({ listen: { component: { port: 0, enabled: true } }, components: { localhost: { secret: 'clash-secret' } } }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('components.localhost')),
    );
  });

  it('ends a stream that does not finish the handshake in time with connection-timeout', async () => {
    const t = await startServer({
      listen: { component: { port: 0, enabled: true } },
      components: { 'slow.localhost': { secret: 'slow-secret' } },
      limits: { negotiation_timeout: 0.2 },
    });
    try {
      const c = await RawClient.connect(t.server.addresses.component?.port ?? 0);
      c.send(header('slow.localhost'));
      await c.expect(/<stream:error><connection-timeout xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      await c.closed();
    } finally {
      await t.stop();
    }
  });

  it('closes connected components with system-shutdown when the server stops', async () => {
    const t = await startServer({
      listen: { component: { port: 0, enabled: true } },
      components: { 'stop.localhost': { secret: 'stop-secret' } },
    });
    const c = await RawClient.connect(t.server.addresses.component?.port ?? 0);
    c.send(header('stop.localhost'));
    const id = /\bid='([^']+)'/.exec((await c.expect(/<stream:stream [^>]*>/))[0])?.[1] ?? '';
    c.send(`<handshake>${sha1(id + 'stop-secret')}</handshake>`);
    await c.expect(/<handshake\/>/);
    await t.stop();
    await c.expect(/<stream:error><system-shutdown xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed();
  });
});
