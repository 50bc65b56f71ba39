// XEP-0124 (BOSH) and XEP-0206 (XMPP Over BOSH) at /bosh: an independent client library (Strophe.js) logging
// in and chatting with a TCP client, then the protocol rules checked with hand-written requests.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Fixture } from '../helpers/fixture.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectClient, xml, type TestClient } from '../helpers/xmpp-client.ts';
import { request } from '../helpers/http.ts';
import { $iq, $msg, $pres, HTTPBIND, RawBosh, Strophe, XBOSH, bodyAttrs, stropheLogin, type DomElement } from '../helpers/bosh.ts';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const EMPTY = `<body xmlns='${HTTPBIND}'/>`;
const RESTART = { 'xmlns:xmpp': XBOSH, 'xmpp:restart': 'true' };
const ping = (id: string): string => `<iq type='get' id='${id}' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>`;

async function befriend(t: TestServer, a: string, b: string): Promise<void> {
  const item = (jid: string) => ({ jid: `${jid}@localhost`, subscription: 'both' as const, ask: false, approved: false, groups: [] });
  await t.server.storage.roster.put('localhost', a, item(b));
  await t.server.storage.roster.put('localhost', b, item(a));
}

/** Whether a promise is still pending after the server answered another request (a round trip). */
async function stillPending(p: Promise<unknown>, port: number, tls: boolean): Promise<boolean> {
  let settled = false;
  void p.then(() => { settled = true; }, () => { settled = true; });
  await request({ port, path: '/bosh', method: 'OPTIONS', tls });
  return !settled;
}

async function online(c: TestClient): Promise<void> {
  await c.xmpp.send(xml('presence'));
  await c.next((s) => s.is('presence') && s.attrs.from === c.jid);
}

describe('BOSH', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start({ http: { max_body: 65_536 } });
  });
  after(async () => {
    await f.stop();
  });

  describe('with Strophe.js', () => {
    it('logs in with SCRAM over plain HTTP, gets the roster and chats with a TCP client, then logs out', async () => {
      const [a, b] = await f.users('alice', 'bob');
      await befriend(f.t, a as string, b as string);
      const bob = await f.client(b as string);
      await online(bob);

      const alice = await stropheLogin(`http://127.0.0.1:${f.t.httpPort}/bosh`, `${a}@localhost/web`, 'pw');
      assert.equal(alice.jid, `${a}@localhost/web`);
      // PLAIN is never offered without TLS: Strophe authenticated with SCRAM.
      assert.ok(alice.sent.some((x) => /<auth [^>]*mechanism="SCRAM-SHA-/.test(x)), alice.sent.join('\n'));
      const session = [...f.t.server.sessions.sessions()].find((s) => s.jid?.toString() === alice.jid);
      assert.equal(session?.transport, 'bosh');
      assert.equal(session?.secure, false);

      const roster = await new Promise<DomElement>((resolve, reject) => {
        alice.conn.sendIQ($iq({ type: 'get' }).c('query', { xmlns: 'jabber:iq:roster' }), resolve, reject);
      });
      const items = roster.getElementsByTagName('item');
      assert.equal(items.length, 1);
      assert.equal(items[0]?.getAttribute('jid'), `${b}@localhost`);

      alice.conn.send($pres());
      const available = await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid);
      assert.equal(available.attrs.type, undefined);
      await alice.next((el) => el.nodeName === 'presence' && el.getAttribute('from') === bob.jid);

      alice.conn.send($msg({ to: bob.jid, type: 'chat' }).c('body').t('hello from BOSH'));
      const m1 = await bob.next((s) => s.is('message'));
      assert.equal(m1.attrs.from, alice.jid);
      assert.equal(m1.getChildText('body'), 'hello from BOSH');

      await bob.xmpp.send(xml('message', { to: alice.jid, type: 'chat' }, xml('body', {}, 'hello from TCP')));
      const m2 = await alice.next((el) => el.nodeName === 'message');
      assert.equal(m2.getAttribute('from'), bob.jid);
      assert.equal(m2.getElementsByTagName('body')[0]?.textContent, 'hello from TCP');

      await alice.logout();
      await bob.next((s) => s.is('presence') && s.attrs.from === alice.jid && s.attrs.type === 'unavailable');
      assert.equal([...f.t.server.sessions.sessions()].some((s) => s.jid?.toString() === alice.jid), false);
    });

    it('logs in with PLAIN over HTTPS', async () => {
      const [c] = await f.users('carol');
      const carol = await stropheLogin(`https://localhost:${f.t.httpsPort}/bosh`, `${c}@localhost/tls`, 'pw', [Strophe.SASLPlain]);
      assert.ok(carol.sent.some((x) => /<auth [^>]*mechanism="PLAIN"/.test(x)), carol.sent.join('\n'));
      const session = [...f.t.server.sessions.sessions()].find((s) => s.jid?.toString() === carol.jid);
      assert.equal(session?.secure, true);
      await carol.logout();
    });
  });

  describe('session creation', () => {
    it('answers with the negotiated session attributes and the stream features', async () => {
      const rid = 4242;
      const reply = await RawBosh.post(f.t.httpPort,
        `<body rid='${rid}' to='localhost' xml:lang='en' wait='30' hold='3' ver='1.6' xmpp:version='1.0' xmlns='${HTTPBIND}' xmlns:xmpp='${XBOSH}'/>`);
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['content-type'], 'text/xml; charset=utf-8');
      assert.equal(reply.headers['access-control-allow-origin'], '*');
      const a = bodyAttrs(reply.body);
      assert.match(a.sid ?? '', /^[A-Za-z0-9_-]{20,}$/);
      assert.equal(a.wait, '30'); // the client asked for less than max_wait
      assert.equal(a.hold, '1'); // max_hold
      assert.equal(a.requests, '2');
      assert.equal(a.inactivity, '60');
      assert.equal(a.maxpause, '120');
      assert.equal(a.ver, '1.6'); // the lower version
      assert.equal(a.secure, 'false');
      assert.equal(a.from, 'localhost');
      assert.ok(a.authid);
      assert.equal(a['xmpp:version'], '1.0');
      assert.equal(a['xmpp:restartlogic'], 'true');
      assert.equal(a['xmlns:xmpp'], XBOSH);
      assert.equal(a['xmlns:stream'], 'http://etherx.jabber.org/streams');
      assert.match(reply.body, new RegExp(`<stream:features><mechanisms xmlns="${SASL}">`));
      assert.doesNotMatch(reply.body, /<mechanism>PLAIN<\/mechanism>/);
      const end = await RawBosh.post(f.t.httpPort, `<body rid='${rid + 1}' sid='${a.sid}' type='terminate' xmlns='${HTTPBIND}'/>`);
      assert.equal(end.body, `<body xmlns='${HTTPBIND}' type='terminate'/>`);
    });

    it('offers PLAIN and says secure over HTTPS', async () => {
      const s = new RawBosh(f.t.httpsPort, true);
      const body = await s.create();
      assert.equal(bodyAttrs(body).secure, 'true');
      assert.match(body, /<mechanism>PLAIN<\/mechanism>/);
      await s.send('', { type: 'terminate' });
    });

    it('refuses an unknown domain with host-unknown and a missing one with improper-addressing', async () => {
      const unknown = await new RawBosh(f.t.httpPort).create({ to: 'elsewhere.example' });
      assert.equal(unknown, `<body xmlns='${HTTPBIND}' type='terminate' condition='host-unknown'/>`);
      const missing = await new RawBosh(f.t.httpPort).create({ to: '' });
      assert.equal(bodyAttrs(missing).condition, 'improper-addressing');
    });

    it('answers bad XML and a wrong wrapper with bad-request (HTTP 200)', async () => {
      for (const body of ['not xml', `<body rid='1' to='localhost' xmlns='${HTTPBIND}'><unclosed></body>`, `<stream rid='1' xmlns='${HTTPBIND}'/>`, `<body rid='1' to='localhost'/>`]) {
        const reply = await RawBosh.post(f.t.httpPort, body);
        assert.equal(reply.status, 200);
        assert.equal(reply.body, `<body xmlns='${HTTPBIND}' type='terminate' condition='bad-request'/>`, body);
      }
      const noRid = await RawBosh.post(f.t.httpPort, `<body to='localhost' xmlns='${HTTPBIND}'/>`);
      assert.equal(bodyAttrs(noRid.body).condition, 'bad-request');
    });

    it('refuses a body larger than http.max_body with 413', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      const big = `<message to='x@localhost' xmlns='jabber:client'><body>${'x'.repeat(70_000)}</body></message>`;
      const reply = await RawBosh.post(f.t.httpPort, s.wrap(s.rid + 1, big));
      assert.equal(reply.status, 413);
    });

    it('ends the session with remote-stream-error when a stanza is over the stanza size limit', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      // Before authentication the limit is limits.stanza_size_preauth (10000 bytes).
      const body = await s.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${'A'.repeat(20_000)}</auth>`);
      assert.equal(bodyAttrs(body).type, 'terminate');
      assert.equal(bodyAttrs(body).condition, 'remote-stream-error');
      assert.match(body, /<stream:error><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
      assert.equal(bodyAttrs(await s.send('')).condition, 'item-not-found');
    });
  });

  describe('request ids', () => {
    it('answers a repeated rid with the buffered response, and an older one with item-not-found', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      // A restart answers at once with fresh features and a new stream id (authid).
      const first = await s.send('', RESTART);
      assert.match(first, /<stream:features>/);
      const again = await s.sendRid(s.rid, '', RESTART);
      assert.equal(again, first, 'the same response, not a second restart');
      await s.send('', RESTART);
      await s.send('', RESTART);
      // Two responses are kept ('requests'): the first restart's is gone.
      const old = await s.sendRid(s.rid - 2, '', RESTART);
      assert.equal(old, `<body xmlns='${HTTPBIND}' type='terminate' condition='item-not-found'/>`);
      assert.equal(bodyAttrs(await s.send('')).condition, 'item-not-found', 'the session ended');
    });

    it('holds a request that comes before a missing rid and handles both in rid order', async () => {
      const [u] = await f.users('olivia');
      const s = new RawBosh(f.t.httpsPort, true);
      await s.login(u as string, 'pw', 'raw');
      const base = s.rid;
      const later = s.sendRid(base + 2, ping('second'));
      assert.equal(await stillPending(later, f.t.httpsPort, true), true, 'not answered before the gap fills');
      const earlier = s.sendRid(base + 1, ping('first'));
      const [r1, r2] = await Promise.all([earlier, later]);
      s.rid = base + 2;
      const both = r1 + r2;
      const i1 = both.indexOf('id="first"');
      const i2 = both.indexOf('id="second"');
      assert.ok(i1 >= 0 && i2 > i1, both);
      await s.send('', { type: 'terminate' });
    });

    it('ends the session with item-not-found for a rid beyond the window', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      const reply = await s.sendRid(s.rid + 3, '');
      assert.equal(reply, `<body xmlns='${HTTPBIND}' type='terminate' condition='item-not-found'/>`);
      assert.equal(bodyAttrs(await s.send('')).condition, 'item-not-found');
    });

    it('answers an unknown sid with item-not-found (HTTP 200)', async () => {
      const reply = await RawBosh.post(f.t.httpPort, `<body rid='77' sid='no-such-session' xmlns='${HTTPBIND}'/>`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, `<body xmlns='${HTTPBIND}' type='terminate' condition='item-not-found'/>`);
    });

    it('ends a session with bad-request when one of its requests is not well-formed', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      const reply = await RawBosh.post(f.t.httpPort, `<body rid='${s.rid + 1}' sid='${s.sid}' xmlns='${HTTPBIND}'><iq></body>`);
      assert.equal(bodyAttrs(reply.body).condition, 'bad-request');
      assert.equal(bodyAttrs(await s.send('')).condition, 'item-not-found');
    });

    it('answers anything after the <body/> with bad-request, not by dropping it', async () => {
      // A request is one <body/> document: a second wrapper after the first (its stanza would be lost) is refused.
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      const reply = await RawBosh.post(f.t.httpPort, s.wrap(s.rid + 1, '') + s.wrap(s.rid + 2, ping('lost')));
      assert.equal(reply.status, 200);
      assert.equal(bodyAttrs(reply.body).condition, 'bad-request');
      assert.equal(bodyAttrs(await s.send('')).condition, 'item-not-found', 'the session ended');
      for (const tail of ['x', '<x/>', '</body>', '\0']) {
        const created = await RawBosh.post(f.t.httpPort, `<body rid='1' to='localhost' xmpp:version='1.0' xmlns='${HTTPBIND}' xmlns:xmpp='${XBOSH}'/>${tail}`);
        assert.equal(created.body, `<body xmlns='${HTTPBIND}' type='terminate' condition='bad-request'/>`, tail);
      }
      // Whitespace after the wrapper is fine.
      const ok = new RawBosh(f.t.httpPort);
      await ok.create();
      assert.match((await RawBosh.post(f.t.httpPort, `${ok.wrap(ok.rid + 1, '', RESTART)}\r\n \t`)).body, /<stream:features>/);
      await ok.sendRid(ok.rid + 2, '', { type: 'terminate' });
    });

    it('checks the key sequence when the client set newkey', async () => {
      const k: string[] = ['seed'];
      for (let i = 1; i <= 3; i++) k.push(createHash('sha1').update(k[i - 1] as string).digest('hex'));
      const s = new RawBosh(f.t.httpPort);
      await s.create({ newkey: k[3] as string });
      assert.match(await s.send('', { ...RESTART, key: k[2] as string }), /<stream:features>/);
      const wrong = await s.send('', { ...RESTART, key: k[2] as string });
      assert.equal(bodyAttrs(wrong).condition, 'item-not-found');
    });
  });

  describe('holding requests', () => {
    it('answers a held request when a stanza arrives, qualified by jabber:client', async () => {
      const [h, k] = await f.users('hank', 'kate');
      const kate = await f.client(k as string);
      const hank = new RawBosh(f.t.httpsPort, true);
      const jid = await hank.login(h as string, 'pw', 'raw');
      const held = hank.send('');
      assert.equal(await stillPending(held, f.t.httpsPort, true), true, 'nothing to say yet');
      await kate.xmpp.send(xml('message', { to: jid, type: 'chat' }, xml('body', {}, 'wake up')));
      const body = await held;
      assert.match(body, /^<body xmlns='http:\/\/jabber.org\/protocol\/httpbind'><message [^>]*xmlns="jabber:client"/);
      assert.match(body, /<body>wake up<\/body>/);

      // A stanza without xmlns in the wrapper is taken as jabber:client (XEP-0206 §2).
      const sent = hank.send(`<message to='${kate.jid}' type='chat'><body>unqualified</body></message>`);
      const got = await kate.next((s) => s.is('message'));
      assert.equal(got.getChildText('body'), 'unqualified');
      assert.equal(got.attrs.from, jid);
      await hank.send('', { type: 'terminate' });
      assert.equal(await sent, EMPTY, 'the older request was answered when hold was exceeded');
    });

    it('answers the oldest held request at once when a new one exceeds hold', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      const first = s.send('');
      assert.equal(await stillPending(first, f.t.httpPort, false), true);
      const second = s.send('');
      assert.equal(await first, EMPTY);
      const end = s.send('', { type: 'terminate' });
      assert.equal(await second, EMPTY);
      assert.equal(bodyAttrs(await end).type, 'terminate');
    });

    it('answers every held request at once on a pause and keeps the session', async () => {
      const s = new RawBosh(f.t.httpPort);
      await s.create();
      const held = s.send('');
      const paused = await s.send('', { pause: '30' });
      assert.equal(paused, EMPTY);
      assert.equal(await held, EMPTY);
      assert.match(await s.send('', RESTART), /<stream:features>/, 'the session goes on after the pause');
      await s.send('', { type: 'terminate' });
    });

    it('drops a request of an HTTPS session that comes over plain HTTP, and keeps the session', async () => {
      const s = new RawBosh(f.t.httpsPort, true);
      await s.create();
      await assert.rejects(RawBosh.post(f.t.httpPort, s.wrap(s.rid + 1, '', RESTART)));
      assert.match(await s.send('', RESTART), /<stream:features>/);
      await s.send('', { type: 'terminate' });
    });
  });

  describe('ending a session', () => {
    it('handles the payloads of a terminate request before ending the stream', async () => {
      const [p, q] = await f.users('pat', 'quinn');
      await befriend(f.t, p as string, q as string);
      const quinn = await f.client(q as string);
      await online(quinn);
      const pat = new RawBosh(f.t.httpsPort, true);
      const jid = await pat.login(p as string, 'pw', 'raw');
      const presence = pat.send(`<presence xmlns='jabber:client'/>`);
      await quinn.next((s) => s.is('presence') && s.attrs.from === jid && s.attrs.type === undefined);
      await presence;
      const end = await pat.send(`<presence type='unavailable' xmlns='jabber:client'><status>gone home</status></presence>`, { type: 'terminate' });
      assert.equal(bodyAttrs(end).type, 'terminate');
      assert.equal(bodyAttrs(end).condition, undefined);
      const gone = await quinn.next((s) => s.is('presence') && s.attrs.from === jid && s.attrs.type === 'unavailable');
      assert.equal(gone.getChildText('status'), 'gone home');
      assert.equal(bodyAttrs(await pat.send('')).condition, 'item-not-found');
    });
  });

  describe('CORS', () => {
    it('answers the preflight of any origin by default', async () => {
      const reply = await request({
        port: f.t.httpPort, path: '/bosh', method: 'OPTIONS',
        headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      });
      assert.equal(reply.status, 204);
      assert.equal(reply.headers['access-control-allow-origin'], '*');
      assert.match(String(reply.headers['access-control-allow-methods']), /POST/);
      assert.match(String(reply.headers['access-control-allow-headers']), /content-type/i);
    });
  });
});

describe('BOSH with short timers, HTTPS only and one allowed origin', () => {
  let t: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    t = await startServer({ http: { bosh: { max_wait: 1, inactivity: 2, plain_http: false, cors_origins: ['https://app.example.com'] } } });
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('answers a held request with an empty body after wait seconds', async () => {
    const s = new RawBosh(t.httpsPort, true);
    const created = await s.create({ wait: '60' });
    assert.equal(bodyAttrs(created).wait, '1');
    assert.equal(await s.send(''), EMPTY);
    await s.send('', { type: 'terminate' });
  });

  it('ends an inactive session like a lost connection: contacts see it go unavailable', async () => {
    await t.register('ivy', 'pw');
    await t.register('jack', 'pw');
    await befriend(t, 'ivy', 'jack');
    const jack = await connectClient({ port: t.port, username: 'jack', password: 'pw', resource: 'tcp' });
    clients.push(jack);
    await online(jack);
    const ivy = new RawBosh(t.httpsPort, true);
    const jid = await ivy.login('ivy', 'pw', 'web');
    await ivy.send(`<presence xmlns='jabber:client'/>`);
    await jack.next((s) => s.is('presence') && s.attrs.from === jid && s.attrs.type === undefined);
    // Ivy sends no further request: after 'inactivity' seconds the session ends.
    await jack.next((s) => s.is('presence') && s.attrs.from === jid && s.attrs.type === 'unavailable', 20_000);
    assert.equal(bodyAttrs(await ivy.send('')).condition, 'item-not-found');
  });

  it('points plain HTTP clients to the HTTPS endpoint (see-other-uri)', async () => {
    const body = await new RawBosh(t.httpPort).create();
    assert.equal(bodyAttrs(body).condition, 'see-other-uri');
    assert.match(body, new RegExp(`<uri>https://localhost:${t.httpsPort}/bosh</uri>`));
  });

  it('allows only the configured browser origins', async () => {
    const preflight = (origin: string) => request({ port: t.httpsPort, tls: true, path: '/bosh', method: 'OPTIONS', headers: { Origin: origin } });
    const ok = await preflight('https://app.example.com');
    assert.equal(ok.status, 204);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(ok.headers.vary, 'Origin');
    assert.equal((await preflight('https://evil.example')).status, 403);
    const post = await RawBosh.post(t.httpsPort, `<body rid='9' to='localhost' xmlns='${HTTPBIND}'/>`, true, { Origin: 'https://evil.example' });
    assert.equal(post.status, 403);
  });

  it('answers held requests with system-shutdown when the server stops', async () => {
    const own = await startServer();
    const s = new RawBosh(own.httpPort);
    await s.create();
    const held = s.send('');
    assert.equal(await stillPending(held, own.httpPort, false), true);
    await own.stop();
    assert.equal(await held, `<body xmlns='${HTTPBIND}' type='terminate' condition='system-shutdown'/>`);
  });
});
