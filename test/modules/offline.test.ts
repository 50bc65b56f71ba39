// XEP-0160 offline storage: stored in order with delay stamps, delivered once at the next initial presence.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { Fixture } from '../helpers/fixture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { ParleyServer } from '../../src/server.ts';
import { builtinModules } from '../../src/modules/index.ts';
import { pino } from 'pino';

const ping = (c: RawClient, id: string): Promise<unknown> => {
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  return c.expect(new RegExp(`<iq type="result" id="${id}"`));
};

describe('offline messages', () => {
  let f: Fixture;
  let t: TestServer;
  before(async () => {
    f = await Fixture.start({ modules: { offline: { quota: 3 } } });
    t = f.t;
  });
  after(() => f.stop());

  /** Fresh users per test, so tests do not share roster or storage state. */
  const users = (...names: string[]): Promise<string[]> => f.users(...names);
  const login = (user: string, resource = 'r'): Promise<RawClient> => f.raw(user, resource);

  it('stores messages for an offline user and delivers them in order, with delay stamps, once', async () => {
    const [a, b] = await users('a', 'b');
    const ca = await login(a as string);
    for (let i = 1; i <= 3; i++) ca.send(`<message to='${b}@localhost' type='chat' id='m${i}'><body>message ${i}</body></message>`);
    await ping(ca, 'p1');
    assert.doesNotMatch(ca.buffer, /type="error"/);
    const cb = await login(b as string);
    cb.send('<presence/>');
    const got: string[] = [];
    for (let i = 1; i <= 3; i++) {
      const m = await cb.expect(/<message[^>]*>[\s\S]*?<\/message>/);
      got.push(m[0]);
    }
    got.forEach((m, i) => {
      assert.match(m, new RegExp(`id="m${i + 1}"`));
      assert.match(m, new RegExp(`from="${a}@localhost/r"`));
      assert.match(m, new RegExp(`<body>message ${i + 1}</body>`));
      assert.match(m, /<delay xmlns="urn:xmpp:delay" from="localhost" stamp="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z">/);
    });
    cb.destroy();
    const again = await login(b as string);
    again.send('<presence/>');
    await again.expect(new RegExp(`<presence from="${b}@localhost/r"`));
    await ping(again, 'p2');
    assert.doesNotMatch(again.buffer, /<message/);
  });

  it('answers resource-constraint beyond the quota', async () => {
    const [a, b] = await users('qa', 'qb');
    const ca = await login(a as string);
    for (let i = 1; i <= 4; i++) ca.send(`<message to='${b}@localhost' type='chat' id='q${i}'><body>${i}</body></message>`);
    const err = await ca.expect(/<message[^>]*id="q4"[\s\S]*?<\/message>/);
    assert.match(err[0], /type="error"/);
    assert.match(err[0], /<resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.doesNotMatch(ca.buffer, /id="q[123]"/);
  });

  it('stores neither errors, groupchat, headlines, chat states alone nor no-store hints', async () => {
    const [a, b] = await users('na', 'nb');
    const ca = await login(a as string);
    ca.send(`<message to='${b}@localhost' type='groupchat' id='g'><body>x</body></message>`);
    assert.match((await ca.expect(/<message[^>]*id="g"[\s\S]*?<\/message>/))[0], /<service-unavailable/);
    ca.send(`<message to='${b}@localhost' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    assert.match((await ca.expect(/<message[^>]*id="cs"[\s\S]*?<\/message>/))[0], /<service-unavailable/);
    ca.send(`<message to='${b}@localhost' type='chat' id='ns'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>`);
    assert.match((await ca.expect(/<message[^>]*id="ns"[\s\S]*?<\/message>/))[0], /<service-unavailable/);
    ca.send(`<message to='${b}@localhost' type='headline' id='h'><body>x</body></message>`);
    ca.send(`<message to='${b}@localhost' type='error' id='e'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    ca.send(`<message to='${b}@localhost' id='normal'><body>kept</body></message>`);
    await ping(ca, 'p3');
    assert.equal(await t.server.storage.offline.count('localhost', b as string), 1);
  });

  it('never stores for accounts that do not exist', async () => {
    const [a] = await users('ua');
    const ca = await login(a as string);
    ca.send(`<message to='ghost@localhost' type='chat' id='gh'><body>x</body></message>`);
    assert.match((await ca.expect(/<message[^>]*id="gh"[\s\S]*?<\/message>/))[0], /<service-unavailable/);
    assert.equal(await t.server.storage.offline.count('localhost', 'ghost'), 0);
  });

  it('keeps messages while the only resource has a negative priority', async () => {
    const [a, b] = await users('pa', 'pb');
    const ca = await login(a as string);
    ca.send(`<message to='${b}@localhost' type='chat' id='neg'><body>later</body></message>`);
    await ping(ca, 'p4');
    const low = await login(b as string, 'low');
    low.send('<presence><priority>-1</priority></presence>');
    await low.expect(/<presence from="[^"]+\/low"/);
    await ping(low, 'p5');
    assert.doesNotMatch(low.buffer, /id="neg"/);
    // A message arriving now is stored too: the negative-priority resource does not take bare-JID messages.
    ca.send(`<message to='${b}@localhost' type='chat' id='neg2'><body>later too</body></message>`);
    await ping(ca, 'p6');
    const high = await login(b as string, 'high');
    high.send('<presence/>');
    await high.expect(/id="neg"/);
    await high.expect(/id="neg2"/);
  });
});

describe('offline messages survive a restart', () => {
  it('keeps stored messages in the database across a server restart', async () => {
    const first = await startServer();
    const config = first.server.config;
    await first.register('alice', 'pw');
    await first.register('bob', 'pw');
    const a = await RawClient.connect(first.port);
    await a.login('alice', 'pw');
    a.send(`<message to='bob@localhost' type='chat' id='durable'><body>still here</body></message>`);
    await ping(a, 'd1');
    a.destroy();
    await first.server.stop(); // keeps the data directory
    const second = new ParleyServer(config, { modules: builtinModules, logger: pino({ level: 'silent' }), adminChannel: false });
    await second.start();
    try {
      const b = await RawClient.connect(second.addresses.c2s?.port ?? 0);
      await b.login('bob', 'pw');
      b.send('<presence/>');
      const m = await b.expect(/<message[^>]*id="durable"[\s\S]*?<\/message>/);
      assert.match(m[0], /<body>still here<\/body>/);
      b.destroy();
    } finally {
      await second.stop();
      await first.stop().catch(() => undefined);
    }
  });
});
