// XMPP over WebSocket (RFC 7395) at /ws: an independent client (xmpp.js over ws:// and wss://) alongside TCP
// clients, and a raw WebSocket client for the framing and its error paths.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectClient, xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import { CLOSE, FRAMING, OPEN, UpgradeRefused, WsRawClient } from '../helpers/ws-raw-client.ts';
import { standalone } from '../../src/c2s/transports/websocket.ts';
import { Jid } from '../../src/xmpp/jid.ts';

const STREAM_ERROR = (condition: string): RegExp =>
  new RegExp(`^<stream:error xmlns:stream="http://etherx.jabber.org/streams"><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>`);
const SERVER_OPEN = /^<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" id="[A-Za-z0-9_-]+" from="localhost" version="1\.0" xml:lang="en"\/>$/;
const SERVER_CLOSE = `<close xmlns="${FRAMING}"/>`;

/** The parts of xmpp.js that the test types do not declare. */
type Internals = {
  streamManagement: { enabled: boolean; id: string; on(event: 'resumed', fn: () => void): void };
  /** xmpp.js's socket wrapper around the global (WHATWG) WebSocket. */
  socket: { socket: WebSocket | null } | null;
  reconnect: { reconnect(): Promise<void> };
};
const internals = (c: TestClient): Internals => c.xmpp as unknown as Internals;

/** xmpp.js on a ws:// or wss:// service URL. */
function connectWs(url: string, username: string, password: string, resource: string): Promise<TestClient> {
  return connectClient({ service: url, username, password, resource });
}

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const rosterGet = (c: TestClient): Promise<Stanza> =>
  c.xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));

describe('XMPP over WebSocket (RFC 7395)', () => {
  let t: TestServer;
  let wsUrl: string;
  let wssUrl: string;
  const clients: TestClient[] = [];
  const raws: WsRawClient[] = [];
  const raw = async (url = wsUrl): Promise<WsRawClient> => {
    const c = await WsRawClient.connect(url);
    raws.push(c);
    return c;
  };

  before(async () => {
    // SCRAM-SHA-1 only: proves xmpp.js logged in with SCRAM. A small stanza limit bounds WebSocket messages.
    t = await startServer({ auth: { mechanisms: ['SCRAM-SHA-1'] }, limits: { stanza_size: 20_000 } });
    for (const u of ['alice', 'bob', 'carol', 'dave']) await t.register(u, `${u}-secret`);
    wsUrl = `ws://127.0.0.1:${t.httpPort}/ws`;
    wssUrl = `wss://127.0.0.1:${t.httpsPort}/ws`;
  });
  after(async () => {
    for (const c of raws) c.ws.terminate();
    for (const c of clients) await c.stop();
    await t.stop();
  });

  describe('framing', () => {
    it('answers <open/> with <open/> and stream features, each message a standalone document', async () => {
      const c = await raw();
      assert.equal(c.ws.protocol, 'xmpp');
      const { open, features } = await c.open();
      assert.match(open, SERVER_OPEN);
      assert.match(features, /^<stream:features xmlns:stream="http:\/\/etherx\.jabber\.org\/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>SCRAM-SHA-1<\/mechanism><\/mechanisms>/);
      assert.doesNotMatch(features, /starttls/, 'no STARTTLS over WebSocket');
    });

    it('accepts a message that opens with an XML declaration', async () => {
      const c = await raw();
      c.send(`<?xml version='1.0'?>${OPEN()}`);
      assert.match(await c.next(), SERVER_OPEN);
      assert.match(await c.next(), /^<stream:features /);
    });

    it('logs in with SCRAM, opens the stream again after SASL, binds; stanzas carry xmlns="jabber:client"', async () => {
      const c = await raw();
      await c.login('dave', 'dave-secret', 'raw');
      const session = t.server.sessions.get(Jid.parse('dave@localhost/raw'));
      assert.equal(session?.transport, 'websocket');
      assert.equal(session?.secure, false);
      c.send("<iq xmlns='jabber:client' type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
      assert.match(await c.next(), /^<iq xmlns="jabber:client" type="result" id="r1"[^>]*><query xmlns="jabber:iq:roster"/);
      // A stanza without its namespace is read as jabber:client, as on a TCP stream.
      c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
      assert.match(await c.next(), /^<iq xmlns="jabber:client" type="result" id="p1"/);
      c.send(CLOSE);
      assert.equal(await c.next(), SERVER_CLOSE);
      assert.equal(await c.closed(), 1000);
      await until('the session to end', () => t.server.sessions.get(Jid.parse('dave@localhost/raw')) === undefined);
    });

    it('answers <close/> with <close/> and closes the WebSocket', async () => {
      const c = await raw();
      await c.open();
      c.send(CLOSE);
      assert.equal(await c.next(), SERVER_CLOSE);
      assert.equal(await c.closed(), 1000);
    });

    it('ignores a message of only whitespace', async () => {
      const c = await raw();
      await c.open();
      c.send(' \n');
      c.send(CLOSE);
      assert.equal(await c.next(), SERVER_CLOSE);
    });
  });

  describe('refusals and errors', () => {
    it('refuses an upgrade without the xmpp subprotocol', async () => {
      for (const protocols of [[], ['chat']]) {
        await assert.rejects(WsRawClient.connect(wsUrl, { protocols }), (err: unknown) => err instanceof UpgradeRefused && err.status === 400);
      }
    });

    it('answers <open/> in another namespace, or another first element, with invalid-namespace', async () => {
      for (const first of [
        "<open xmlns='jabber:client' to='localhost' version='1.0'/>",
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'/>",
        "<message xmlns='jabber:client' to='bob@localhost'/>",
      ]) {
        const c = await raw();
        c.send(first);
        assert.match(await c.next(), /^<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" id="[^"]+" version="1\.0" xml:lang="en"\/>$/);
        assert.match(await c.next(), STREAM_ERROR('invalid-namespace'));
        assert.equal(await c.next(), SERVER_CLOSE);
        assert.equal(await c.closed(), 1000);
      }
    });

    it('answers a message that is not well-formed with not-well-formed', async () => {
      for (const bad of [
        "<message xmlns='jabber:client'><body>hi</message>",
        "<presence xmlns='jabber:client'>", // not complete in its message
        "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>", // two elements
        '</stream:stream>',
        "<message xmlns='jabber:client'><body><![CDATA[hi</body></message>",
      ]) {
        const c = await raw();
        await c.open();
        c.send(bad);
        assert.match(await c.next(), STREAM_ERROR('not-well-formed'), bad);
        assert.equal(await c.next(), SERVER_CLOSE);
        assert.equal(await c.closed(), 1000);
      }
    });

    it('answers restricted XML with restricted-xml, as on TCP', async () => {
      const c = await raw();
      await c.open();
      c.send("<!-- a comment --><presence xmlns='jabber:client'/>");
      assert.match(await c.next(), STREAM_ERROR('restricted-xml'));
      assert.equal(await c.next(), SERVER_CLOSE);
    });

    it('answers a message over the pre-authentication stanza limit with policy-violation', async () => {
      const c = await raw();
      await c.open();
      c.send(`<message xmlns='jabber:client' to='bob@localhost'><body>${'x'.repeat(12_000)}</body></message>`);
      assert.match(await c.next(), STREAM_ERROR('policy-violation'));
      assert.equal(await c.next(), SERVER_CLOSE);
      assert.equal(await c.closed(), 1000);
    });

    it('applies the depth and attribute limits of TCP streams (policy-violation)', async () => {
      const deep = `${'<a>'.repeat(70)}${'</a>'.repeat(70)}`;
      const attrs = Array.from({ length: 300 }, (_, i) => `a${i}='1'`).join(' ');
      for (const bad of [`<message xmlns='jabber:client'>${deep}</message>`, `<message xmlns='jabber:client' ${attrs}/>`]) {
        const c = await raw();
        await c.open();
        c.send(bad);
        assert.match(await c.next(), STREAM_ERROR('policy-violation'));
        assert.equal(await c.next(), SERVER_CLOSE);
      }
    });

    it('closes the WebSocket with 1009 (message too big) above the stanza limit', async () => {
      const c = await raw();
      await c.open();
      c.send(`<message xmlns='jabber:client' to='bob@localhost'><body>${'x'.repeat(25_000)}</body></message>`);
      assert.equal(await c.closed(), 1009);
    });

    it('answers a binary message with unsupported-encoding and close code 1003', async () => {
      const c = await raw();
      await c.open();
      c.send(Buffer.from("<presence xmlns='jabber:client'/>"), true);
      assert.match(await c.next(), STREAM_ERROR('unsupported-encoding'));
      assert.equal(await c.next(), SERVER_CLOSE);
      assert.equal(await c.closed(), 1003);
    });

    it('answers a stanza before authentication with not-authorized', async () => {
      const c = await raw();
      await c.open();
      c.send("<message xmlns='jabber:client' to='bob@localhost'><body>hi</body></message>");
      assert.match(await c.next(), STREAM_ERROR('not-authorized'));
      assert.equal(await c.next(), SERVER_CLOSE);
      assert.equal(await c.closed(), 1000);
    });

    it('answers an unknown domain with host-unknown', async () => {
      const c = await raw();
      c.send(OPEN('elsewhere.example'));
      assert.match(await c.next(), /^<open /);
      assert.match(await c.next(), STREAM_ERROR('host-unknown'));
      assert.equal(await c.next(), SERVER_CLOSE);
    });
  });

  describe('with xmpp.js', () => {
    it('logs in with SCRAM over ws:// and wss://', async () => {
      const plain = await connectWs(wsUrl, 'alice', 'alice-secret', 'ws');
      const secure = await connectWs(wssUrl, 'alice', 'alice-secret', 'wss');
      clients.push(plain, secure);
      assert.equal(plain.jid, 'alice@localhost/ws');
      assert.equal(secure.jid, 'alice@localhost/wss');
      const s1 = t.server.sessions.get(Jid.parse('alice@localhost/ws'));
      const s2 = t.server.sessions.get(Jid.parse('alice@localhost/wss'));
      assert.equal(s1?.transport, 'websocket');
      assert.equal(s1?.secure, false);
      assert.equal(s2?.transport, 'websocket');
      assert.equal(s2?.secure, true, 'wss:// is TLS');
      await plain.stop();
      await secure.stop();
      await until('both sessions to end', () => [...t.server.sessions.sessions()].every((s) => !s.jid?.toString().startsWith('alice@')));
    });

    it('refuses a wrong password', async () => {
      await assert.rejects(connectWs(wsUrl, 'alice', 'wrong', 'x'), /not-authorized/);
    });

    it('subscribes, sees presence and chats with a TCP client and another WebSocket client; roster works', async () => {
      const alice = await connectWs(wsUrl, 'alice', 'alice-secret', 'a');
      const bob = await connectClient({ port: t.port, username: 'bob', password: 'bob-secret', resource: 'b' });
      const carol = await connectWs(wssUrl, 'carol', 'carol-secret', 'c');
      clients.push(alice, bob, carol);
      for (const c of [alice, bob, carol]) {
        await c.xmpp.send(xml('presence'));
        await c.next((s) => s.is('presence') && s.attrs.from === c.jid);
      }

      // Alice (ws://) and Bob (TCP) subscribe to each other.
      await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
      await bob.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'alice@localhost');
      await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribed' }));
      await bob.xmpp.send(xml('presence', { to: 'alice@localhost', type: 'subscribe' }));
      await alice.next((s) => s.is('presence') && s.attrs.type === undefined && s.attrs.from === 'bob@localhost/b');
      await alice.next((s) => s.is('presence') && s.attrs.type === 'subscribe' && s.attrs.from === 'bob@localhost');
      await alice.xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribed' }));
      await bob.next((s) => s.is('presence') && s.attrs.type === undefined && s.attrs.from === 'alice@localhost/a');
      const roster = await rosterGet(alice);
      const item = roster.getChild('query', 'jabber:iq:roster')?.getChild('item');
      assert.equal(item?.attrs.jid, 'bob@localhost');
      assert.equal(item?.attrs.subscription, 'both');

      // WebSocket <-> TCP.
      await alice.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'ab' }, xml('body', {}, 'Hi Bob <3 & co')));
      const ab = await bob.next((s) => s.is('message') && s.attrs.id === 'ab');
      assert.equal(ab.getChildText('body'), 'Hi Bob <3 & co');
      assert.equal(ab.attrs.from, 'alice@localhost/a');
      await bob.xmpp.send(xml('message', { to: 'alice@localhost/a', type: 'chat', id: 'ba' }, xml('body', {}, 'Hi Alice')));
      assert.equal((await alice.next((s) => s.is('message') && s.attrs.id === 'ba')).getChildText('body'), 'Hi Alice');

      // ws:// <-> wss://.
      await alice.xmpp.send(xml('message', { to: 'carol@localhost/c', type: 'chat', id: 'ac' }, xml('body', {}, 'Hi Carol')));
      const ac = await carol.next((s) => s.is('message') && s.attrs.id === 'ac');
      assert.equal(ac.getChildText('body'), 'Hi Carol');
      assert.equal(ac.attrs.from, 'alice@localhost/a');
      await carol.xmpp.send(xml('message', { to: 'alice@localhost/a', type: 'chat', id: 'ca' }, xml('body', {}, 'Hi Alice')));
      assert.equal((await alice.next((s) => s.is('message') && s.attrs.id === 'ca')).attrs.from, 'carol@localhost/c');

      // Alice closes her stream: Bob sees her go.
      await alice.stop();
      await bob.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'alice@localhost/a');
      await bob.stop();
      await carol.stop();
    });

    it('resumes a stream-managed session after the WebSocket drops, without losing messages', async () => {
      const alice = await connectClient({ port: t.port, username: 'alice', password: 'alice-secret', resource: 'desk' });
      const bob = await connectWs(wsUrl, 'bob', 'bob-secret', 'web');
      clients.push(alice, bob);
      const sm = internals(bob).streamManagement;
      await until('stream management', () => sm.enabled);
      await bob.xmpp.send(xml('presence'));
      await bob.next((s) => s.is('presence') && s.attrs.from === 'bob@localhost/web');
      const session = t.server.sessions.get(Jid.parse('bob@localhost/web'));
      assert.ok(session?.tracker, 'the server tracks the session');

      // The WebSocket goes away without the XMPP stream being closed (a tab closed, a network change).
      let resumed = false;
      sm.on('resumed', () => { resumed = true; });
      internals(bob).socket?.socket?.close();
      await until('the session to detach', () => session?.detached === true);
      await alice.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'away-1' }, xml('body', {}, 'a')));
      await alice.xmpp.send(xml('message', { to: 'bob@localhost/web', type: 'chat', id: 'away-2' }, xml('body', {}, 'b')));
      await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      await internals(bob).reconnect.reconnect();
      await until('resumption', () => resumed);
      await bob.next((s) => s.is('message') && s.attrs.id === 'away-1');
      await bob.next((s) => s.is('message') && s.attrs.id === 'away-2');
      assert.equal(t.server.sessions.get(Jid.parse('bob@localhost/web')), session, 'the same session goes on');
      assert.equal(session?.detached, false);
      assert.equal(session?.transport, 'websocket');
      await bob.xmpp.send(xml('message', { to: 'alice@localhost/desk', type: 'chat', id: 'back' }, xml('body', {}, 'back')));
      await alice.next((s) => s.is('message') && s.attrs.id === 'back');
      assert.equal(bob.inbox.filter((s) => s.is('message')).length, 0, 'nothing twice');
      assert.equal(await t.server.storage.offline.count('localhost', 'bob'), 0);
      await bob.stop();
      await alice.stop();
    });

    it('ends a session whose WebSocket is cut (no stream management) and broadcasts unavailable presence', async () => {
      const desk = await connectClient({ port: t.port, username: 'dave', password: 'dave-secret', resource: 'desk' });
      clients.push(desk);
      await desk.xmpp.send(xml('presence'));
      await desk.next((s) => s.is('presence') && s.attrs.from === 'dave@localhost/desk');
      const c = await raw();
      await c.login('dave', 'dave-secret', 'web');
      c.send("<presence xmlns='jabber:client'/>");
      await desk.next((s) => s.is('presence') && s.attrs.type === undefined && s.attrs.from === 'dave@localhost/web');
      // The TCP connection under the WebSocket is destroyed: no <close/>, no close frame.
      c.ws.terminate();
      await desk.next((s) => s.is('presence') && s.attrs.type === 'unavailable' && s.attrs.from === 'dave@localhost/web');
      await until('the session to end', () => t.server.sessions.get(Jid.parse('dave@localhost/web')) === undefined);
      await desk.stop();
    });
  });
});

describe('WebSocket policies: allowed origins, plain ws:// without authentication', () => {
  let t: TestServer;
  const raws: WsRawClient[] = [];
  before(async () => {
    t = await startServer({ http: { websocket: { origins: ['https://app.example.com'], plain_http: false } } });
    await t.register('erin', 'erin-secret');
  });
  after(async () => {
    for (const c of raws) c.ws.terminate();
    await t.stop();
  });

  it('refuses an Origin that is not listed with 403, and accepts a listed one or none', async () => {
    const url = `ws://127.0.0.1:${t.httpPort}/ws`;
    await assert.rejects(WsRawClient.connect(url, { origin: 'https://evil.example' }), (err: unknown) => err instanceof UpgradeRefused && err.status === 403);
    for (const origin of ['https://app.example.com', 'HTTPS://APP.EXAMPLE.COM', undefined]) {
      const c = await WsRawClient.connect(url, origin === undefined ? {} : { origin });
      raws.push(c);
      assert.match((await c.open()).open, SERVER_OPEN);
    }
  });

  it('offers no authentication over ws:// when plain_http is off, and refuses SASL with encryption-required', async () => {
    const c = await WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`);
    raws.push(c);
    const { features } = await c.open();
    assert.doesNotMatch(features, /mechanisms/);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGVyaW4AZXJpbi1zZWNyZXQ=</auth>");
    assert.match(await c.next(), /^<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><encryption-required\/>/);
  });

  it('still lets xmpp.js log in over wss://', async () => {
    const c = await connectWs(`wss://127.0.0.1:${t.httpsPort}/ws`, 'erin', 'erin-secret', 'web');
    assert.equal(c.jid, 'erin@localhost/web');
    await c.stop();
  });
});

describe('WebSocket endpoint lifecycle', () => {
  it('ends open streams with system-shutdown when the server stops', async () => {
    const t = await startServer();
    try {
      const c = await WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`);
      await c.open();
      const stopping = t.stop();
      assert.match(await c.next(), STREAM_ERROR('system-shutdown'));
      assert.equal(await c.next(), SERVER_CLOSE);
      await stopping;
    } catch (err) {
      await t.stop().catch(() => undefined);
      throw err;
    }
  });

  it('counts WebSocket connections against limits.connections and refuses one over the cap with a stream error', async () => {
    const t = await startServer({ limits: { connections: { max_total: 1 } } });
    try {
      const first = await WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`);
      const second = await WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`);
      assert.match(await second.next(), /^<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" id="[^"]+" version="1\.0" xml:lang="en"\/>$/);
      assert.match(await second.next(), STREAM_ERROR('resource-constraint'));
      assert.equal(await second.next(), SERVER_CLOSE);
      await second.closed();
      // The first one is served; once it is gone, a new one is admitted.
      assert.match((await first.open()).open, SERVER_OPEN);
      first.send(CLOSE);
      await first.closed();
      await until('the connection to be released', () => t.server.connectionGuard.open === 0);
      const third = await WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`);
      assert.match((await third.open()).open, SERVER_OPEN);
      third.ws.terminate();
    } finally {
      await t.stop();
    }
  });

  it('is not served when disabled', async () => {
    const t = await startServer({ http: { websocket: { enabled: false } } });
    try {
      await assert.rejects(WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`), (err: unknown) => err instanceof UpgradeRefused && err.status === 404);
    } finally {
      await t.stop();
    }
  });
});

describe('standalone (outgoing namespaces, RFC 7395 §3.3.3)', () => {
  it('adds xmlns="jabber:client" to a top-level element without one', () => {
    assert.equal(standalone('<message to="a@b" id="x"><body>hi</body></message>'), '<message xmlns="jabber:client" to="a@b" id="x"><body>hi</body></message>');
    assert.equal(standalone('<presence/>'), '<presence xmlns="jabber:client"/>');
  });
  it('declares the stream prefix on stream:features and stream:error', () => {
    assert.equal(standalone('<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>'),
      '<stream:features xmlns:stream="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>');
  });
  it('leaves elements that declare their namespace alone, however their attribute values read', () => {
    for (const s of ['<r xmlns="urn:xmpp:sm:3"/>', '<iq type="result" xmlns="jabber:client" id="1"/>', `<close xmlns="${FRAMING}"/>`]) assert.equal(standalone(s), s);
    assert.equal(standalone('<message id=" xmlns=&quot;x" type="chat"/>'), '<message xmlns="jabber:client" id=" xmlns=&quot;x" type="chat"/>');
  });
});
