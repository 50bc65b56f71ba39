// Server-to-client keepalive (XEP-0199 §4.1): a silent client is pinged, and closed with connection-timeout if it
// stays silent; any bytes (a pong, an error, whitespace) keep it. Small timeouts; no timing is asserted.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Fixture } from '../helpers/fixture.ts';
import { xml } from '../helpers/xmpp-client.ts';

const PING = /<iq type="get" id="([^"]+)" from="localhost" to="([^"]+)"><ping xmlns="urn:xmpp:ping"\/><\/iq>/;

describe('keepalive', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start({ modules: { keepalive: { idle_timeout: 0.3, ping_timeout: 1 } } });
  });
  after(async () => {
    await f.stop();
  });

  it('pings a silent client, then closes it with connection-timeout; its messages then go to storage', async () => {
    const [alice, bob] = await f.users('alice', 'bob') as [string, string];
    const a = await f.raw(alice, 'r');
    const ping = await a.expect(PING);
    assert.equal(ping[2], `${alice}@localhost/r`);
    // No answer.
    await a.expect(/<stream:error><connection-timeout xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>[\s\S]*?<\/stream:error><\/stream:stream>/);
    await a.closed();

    const b = await f.raw(bob, 'b');
    b.send(`<message to='${alice}@localhost/r' type='chat' id='m1'><body>are you there?</body></message>`);
    b.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const pong = await b.expect(/[\s\S]*?<iq type="result" id="p1"[^>]*\/>/);
    assert.doesNotMatch(pong[0], /type="error"/, 'stored, not bounced');
    const again = await f.raw(alice, 'r');
    again.send('<presence/>');
    await again.expect(/<body>are you there\?<\/body>/);
  });

  it('keeps a client that answers the ping, and pings it again when it falls silent again', async () => {
    const [alice] = await f.users('alice') as [string];
    const a = await f.raw(alice, 'r');
    for (let round = 0; round < 2; round++) {
      const ping = await a.expect(PING);
      a.send(`<iq type='result' id='${ping[1]}' to='localhost'/>`);
    }
    a.send(`<iq type='get' id='mine' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const m = await a.expect(/[\s\S]*?<iq type="result" id="mine"[^>]*\/>/);
    assert.doesNotMatch(m[0], /stream:error/);
  });

  it('counts whitespace as a sign of life', async () => {
    const [alice] = await f.users('alice') as [string];
    const a = await f.raw(alice, 'r');
    await a.expect(PING);
    a.send(' ');
    // Alive: the next thing is another ping once it is idle again, not a stream error.
    const next = await a.expect(/<ping xmlns="urn:xmpp:ping"\/>|<stream:error>/);
    assert.equal(next[0], '<ping xmlns="urn:xmpp:ping"/>');
    a.send('\n');
    const third = await a.expect(/<ping xmlns="urn:xmpp:ping"\/>|<stream:error>/);
    assert.equal(third[0], '<ping xmlns="urn:xmpp:ping"/>');
  });

  it('keeps an xmpp.js client, which answers pings', async () => {
    const [alice] = await f.users('alice') as [string];
    const c = await f.client(alice, 'js');
    for (let round = 0; round < 2; round++) {
      await c.next((s) => s.is('iq') && s.attrs.type === 'get' && s.getChild('ping', 'urn:xmpp:ping') !== undefined);
    }
    const r = await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(r.attrs.type, 'result');
  });
});
