// XEP-0092 software version, XEP-0202 entity time and XEP-0012 last activity, with xmpp.js and raw sockets.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { TestServer } from '../helpers/server.ts';
import { Fixture } from '../helpers/fixture.ts';
import type { RawClient } from '../helpers/raw-client.ts';
import { xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import type { Subscription } from '../../src/storage/types.ts';

const VERSION = 'jabber:iq:version';
const TIME = 'urn:xmpp:time';
const LAST = 'jabber:iq:last';
const pkgVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('server information and last activity', () => {
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

  /** `contact` is on `owner`'s roster with this subscription (from: the contact sees the owner's presence). */
  async function rosterItem(owner: string, contact: string, subscription: Subscription): Promise<void> {
    await t.server.storage.roster.put(t.domain, owner, { jid: `${contact}@localhost`, subscription, ask: false, approved: false, groups: [] });
  }

  const ask = (c: TestClient, ns: string, name: string, to: string): Promise<Stanza> =>
    c.xmpp.iqCaller.request(xml('iq', { type: 'get', to }, xml(name, { xmlns: ns })));
  const last = async (c: TestClient, to: string): Promise<Stanza> => {
    const q = (await ask(c, LAST, 'query', to)).getChild('query', LAST);
    assert.ok(q, 'a jabber:iq:last query');
    return q;
  };

  describe('software version', () => {
    it('names Parley with the package version and no OS by default', async () => {
      const [a] = await users('ve');
      const c = await client(a as string);
      const reply = await ask(c, VERSION, 'query', 'localhost');
      assert.equal(reply.attrs.from, 'localhost');
      const q = reply.getChild('query', VERSION);
      assert.equal(q?.getChildText('name'), 'Parley');
      assert.equal(q?.getChildText('version'), pkgVersion);
      assert.equal(q?.getChild('os'), undefined);
    });

    it('is not answered for an account', async () => {
      const [a] = await users('vn');
      const c = await client(a as string);
      await assert.rejects(ask(c, VERSION, 'query', `${a}@localhost`), { condition: 'service-unavailable' });
    });
  });

  describe('entity time', () => {
    it('answers tzo and utc in the XEP-0082 formats, with the zone offset of the server', async () => {
      const [a] = await users('ti');
      const c = await client(a as string);
      const before = Math.floor(Date.now() / 1000) * 1000;
      const q = (await ask(c, TIME, 'time', 'localhost')).getChild('time', TIME);
      const after = Date.now();
      const tzo = q?.getChildText('tzo') ?? '';
      const utc = q?.getChildText('utc') ?? '';
      assert.match(tzo, /^[+-]\d{2}:\d{2}$/);
      assert.match(utc, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
      const at = Date.parse(utc);
      assert.ok(at >= before && at <= after, `${utc} is the time of the answer`);
      const minutes = -new Date().getTimezoneOffset();
      const sign = minutes < 0 ? '-' : '+';
      const abs = Math.abs(minutes);
      assert.equal(tzo, `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`);
    });

    it('writes half-hour and negative offsets', async () => {
      const [a] = await users('tz');
      const c = await client(a as string);
      const saved = process.env.TZ;
      try {
        process.env.TZ = 'Asia/Kolkata';
        assert.equal((await ask(c, TIME, 'time', 'localhost')).getChild('time', TIME)?.getChildText('tzo'), '+05:30');
        process.env.TZ = 'America/Bogota';
        assert.equal((await ask(c, TIME, 'time', 'localhost')).getChild('time', TIME)?.getChildText('tzo'), '-05:00');
        process.env.TZ = 'UTC';
        assert.equal((await ask(c, TIME, 'time', 'localhost')).getChild('time', TIME)?.getChildText('tzo'), '+00:00');
      } finally {
        if (saved === undefined) delete process.env.TZ;
        else process.env.TZ = saved;
      }
    });
  });

  describe('last activity', () => {
    it('answers the server uptime in whole seconds', async () => {
      const [a] = await users('up');
      const c = await client(a as string);
      const q = await last(c, 'localhost');
      const seconds = Number(q.attrs.seconds);
      assert.ok(Number.isInteger(seconds) && seconds >= 0, `seconds=${q.attrs.seconds}`);
      assert.ok(seconds <= Math.ceil((Date.now() - t.server.startedAt) / 1000));
      assert.equal(q.getText(), '');
    });

    it('gives a subscribed contact the seconds since logout and the last status', async () => {
      const [alice, bob] = await users('la', 'lb');
      await rosterItem(alice as string, bob as string, 'from');
      const ra = await raw(alice as string);
      ra.send('<presence/>');
      await ra.expect(/<presence from="[^"]+\/raw" to="[^"]+\/raw"/);
      ra.send(`<presence type='unavailable'><status>Heading Home</status></presence><iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      // Stanzas of one session are handled in order: the ping's answer means the logout is recorded.
      await ra.expect(/<iq [^>]*id="p1"/);
      const loggedOut = Date.now();
      ra.end();
      await sleep(1100);

      const bobC = await client(bob as string);
      const q = await last(bobC, `${alice}@localhost`);
      const seconds = Number(q.attrs.seconds);
      assert.ok(Number.isInteger(seconds), `seconds=${q.attrs.seconds}`);
      assert.ok(seconds >= 1 && seconds <= Math.ceil((Date.now() - loggedOut) / 1000) + 1, `seconds=${seconds}`);
      assert.equal(q.getText(), 'Heading Home');

      // The user may always ask about herself.
      const again = await client(alice as string);
      await assert.doesNotReject(last(again, `${alice}@localhost`));
    });

    it('refuses anyone not subscribed to the user with forbidden', async () => {
      const [alice, bob, carol] = await users('fa', 'fb', 'fc');
      // Alice sees Bob, but Bob does not see Alice; Carol is a stranger.
      await rosterItem(alice as string, bob as string, 'to');
      const ra = await raw(alice as string);
      ra.send(`<presence/><presence type='unavailable'/><iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await ra.expect(/<iq [^>]*id="p2"/);
      ra.end();
      for (const who of [bob, carol]) {
        const c = await raw(who as string);
        c.send(`<iq type='get' id='l1' to='${alice}@localhost'><query xmlns='${LAST}'/></iq>`);
        const reply = (await c.expect(/<iq[^>]*id="l1"[\s\S]*?<\/iq>/))[0];
        assert.match(reply, /type="error"/);
        assert.match(reply, /<error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
        assert.doesNotMatch(reply, /seconds=/);
      }
    });

    it('answers 0 for a contact who is online', async () => {
      const [alice, bob] = await users('oa', 'ob');
      await rosterItem(alice as string, bob as string, 'both');
      const a = await client(alice as string);
      await a.xmpp.send(xml('presence', {}, xml('status', {}, 'here')));
      await a.next((s) => s.is('presence') && s.attrs.from === a.jid);
      const b = await client(bob as string);
      const q = await last(b, `${alice}@localhost`);
      assert.equal(q.attrs.seconds, '0');
      assert.equal(q.getText(), '');
    });

    it('records a dropped connection, and says item-not-found before any logout', async () => {
      const [alice, bob] = await users('da', 'db');
      await rosterItem(alice as string, bob as string, 'both');
      const b = await client(bob as string);
      await assert.rejects(last(b, `${alice}@localhost`), { condition: 'item-not-found' });
      const ra = await raw(alice as string);
      ra.destroy();
      const q = await waitFor(async () => {
        try {
          return await last(b, `${alice}@localhost`);
        } catch (err) {
          if ((err as { condition?: string }).condition === 'item-not-found') return undefined;
          throw err;
        }
      }, 'the logout to be recorded');
      assert.match(q.attrs.seconds ?? '', /^\d+$/);
      assert.equal(q.getText(), '');
    });

    it('answers service-unavailable for an account that does not exist', async () => {
      const [a] = await users('ne');
      const c = await client(a as string);
      await assert.rejects(ask(c, LAST, 'query', 'no-such-user@localhost'), { condition: 'service-unavailable' });
    });
  });

  it('advertises version, time, last and ping on the server', async () => {
    const [a] = await users('df');
    const c = await client(a as string);
    const info = await ask(c, 'http://jabber.org/protocol/disco#info', 'query', 'localhost');
    const features = info.getChild('query')?.getChildren('feature').map((f) => f.attrs.var) ?? [];
    for (const f of [VERSION, TIME, LAST, 'urn:xmpp:ping']) assert.ok(features.includes(f), `${f} advertised`);
  });
});

describe('software version with show_os', () => {
  let f: Fixture;
  before(async () => {
    f = await Fixture.start({ modules: { version: { show_os: true } } });
  });
  after(() => f.stop());

  it('includes the operating system', async () => {
    const [user] = await f.users('os');
    const c = await f.client(user as string);
    const q = (await c.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: VERSION })))).getChild('query', VERSION);
    assert.ok((q?.getChildText('os') ?? '').length > 0);
    assert.equal(q?.getChildText('name'), 'Parley');
  });
});
