// RFC 6121 §2-§4: roster management, versioning, the subscription state machine and presence.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { Fixture } from '../helpers/fixture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { Jid } from '../../src/xmpp/jid.ts';

const ROSTER = 'jabber:iq:roster';

describe('roster and presence', () => {
  let f: Fixture;
  let t: TestServer;
  before(async () => {
    f = await Fixture.start();
    t = f.t;
  });
  after(() => f.stop());

  /** Fresh users per test, so tests do not share roster or storage state. */
  const users = (...names: string[]): Promise<string[]> => f.users(...names);
  const login = (user: string, resource = 'r'): Promise<RawClient> => f.raw(user, resource);

  async function getRoster(c: RawClient, ver?: string): Promise<string> {
    const id = `g${Math.random().toString(36).slice(2)}`;
    c.send(`<iq type='get' id='${id}'><query xmlns='${ROSTER}'${ver !== undefined ? ` ver='${ver}'` : ''}/></iq>`);
    return (await c.expect(new RegExp(`<iq type="result" id="${id}"[^>]*(/>|>[\\s\\S]*?</iq>)`)))[0];
  }

  async function available(c: RawClient, jid: string): Promise<void> {
    c.send('<presence/>');
    await c.expect(new RegExp(`<presence from="${jid}/r" to="${jid}/r"`));
  }

  it('sets, gets and removes items, pushing each change', async () => {
    const [a, b] = await users('ra', 'rb');
    const c = await login(a as string);
    assert.match(await getRoster(c), new RegExp(`<query xmlns="${ROSTER}" ver="\\d+"/>`));
    c.send(`<iq type='set' id='s1'><query xmlns='${ROSTER}'><item jid='${b}@localhost' name='B' subscription='both' ask='subscribe'><group>Friends</group></item></query></iq>`);
    const push = await c.expect(/<iq type="set" id="push-[^"]+" to="[^"]+"><query xmlns="jabber:iq:roster" ver="(\d+)">([\s\S]*?)<\/query><\/iq>/);
    // The client cannot set subscription or ask.
    assert.equal(push[2], `<item jid="${b}@localhost" name="B" subscription="none"><group>Friends</group></item>`);
    await c.expect(/<iq type="result" id="s1"/);
    const r = await getRoster(c);
    assert.match(r, new RegExp(`ver="${push[1]}"`));
    assert.match(r, /<group>Friends<\/group>/);
    // Up to date: an empty result.
    assert.match(await getRoster(c, push[1]), /<iq type="result" id="[^"]+" [^>]*\/>/);
    c.send(`<iq type='set' id='s2'><query xmlns='${ROSTER}'><item jid='${b}@localhost' subscription='remove'/></query></iq>`);
    await c.expect(new RegExp(`<item jid="${b}@localhost" subscription="remove"/>`));
    await c.expect(/<iq type="result" id="s2"/);
    c.send(`<iq type='set' id='s3'><query xmlns='${ROSTER}'><item jid='${b}@localhost' subscription='remove'/></query></iq>`);
    assert.match((await c.expect(/<iq[^>]*id="s3"[\s\S]*?<\/iq>/))[0], /<item-not-found/);
  });

  it('refuses bad roster sets with the spec errors', async () => {
    const [a] = await users('bad');
    const c = await login(a as string);
    const cases: Array<[string, string]> = [
      [`<item jid='x@localhost'/><item jid='y@localhost'/>`, 'bad-request'],
      [`<item jid='x@localhost'><group>g</group><group>g</group></item>`, 'bad-request'],
      [`<item jid='x@localhost'><group></group></item>`, 'not-acceptable'],
      [`<item jid='a@b@c'/>`, 'jid-malformed'],
    ];
    for (const [i, [items, condition]] of cases.entries()) {
      c.send(`<iq type='set' id='bad${i}'><query xmlns='${ROSTER}'>${items}</query></iq>`);
      assert.match((await c.expect(new RegExp(`<iq[^>]*id="bad${i}"[\\s\\S]*?</iq>`)))[0], new RegExp(`<${condition} `));
    }
    c.send(`<iq type='get' id='other' to='someone@localhost'><query xmlns='${ROSTER}'/></iq>`);
    assert.match((await c.expect(/<iq[^>]*id="other"[\s\S]*?<\/iq>/))[0], /<(forbidden|service-unavailable) /);
  });

  it('runs the subscription handshake both ways, with presence following', async () => {
    const [a, b] = await users('sa', 'sb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    await getRoster(ca);
    await getRoster(cb);
    await available(ca, `${a}@localhost`);
    await available(cb, `${b}@localhost`);
    ca.send(`<presence to='${b}@localhost' type='subscribe'/>`);
    await ca.expect(new RegExp(`<item jid="${b}@localhost" subscription="none" ask="subscribe"/>`));
    await cb.expect(new RegExp(`<presence to="${b}@localhost" type="subscribe" from="${a}@localhost"/>|<presence type="subscribe"[^>]*from="${a}@localhost"`));
    cb.send(`<presence to='${a}@localhost' type='subscribed'/>`);
    await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="from"/>`));
    await ca.expect(new RegExp(`<item jid="${b}@localhost" subscription="to"/>`));
    await ca.expect(new RegExp(`type="subscribed"[^>]*from="${b}@localhost"|from="${b}@localhost"[^>]*type="subscribed"`));
    await ca.expect(new RegExp(`<presence from="${b}@localhost/r" to="${a}@localhost"`));
    // Unsubscribing ends it: Alice's item goes back to none and she sees Bob as unavailable.
    ca.send(`<presence to='${b}@localhost' type='unsubscribe'/>`);
    await ca.expect(new RegExp(`<item jid="${b}@localhost" subscription="none"/>`));
    await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="none"/>`));
  });

  it('keeps a subscription request for an offline user and delivers it at the next login', async () => {
    const [a, b] = await users('pa', 'pb');
    const ca = await login(a as string);
    await getRoster(ca);
    ca.send(`<presence to='${b}@localhost' type='subscribe'><status>let me in</status></presence>`);
    await ca.expect(/ask="subscribe"/);
    ca.destroy();
    for (let round = 0; round < 2; round++) {
      // Delivered again at every login until answered.
      const cb = await login(b as string);
      cb.send('<presence/>');
      const req = await cb.expect(new RegExp(`<presence[^>]*type="subscribe"[^>]*>[\\s\\S]*?</presence>`));
      assert.match(req[0], new RegExp(`from="${a}@localhost"`));
      assert.match(req[0], /<status>let me in<\/status>/);
      if (round === 1) {
        cb.send(`<presence to='${a}@localhost' type='subscribed'/>`);
        await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="from"/>|subscription="from"`)).catch(() => undefined);
      }
      cb.destroy();
      await new Promise((r) => setTimeout(r, 50));
    }
    const cb = await login(b as string);
    cb.send('<presence/>');
    await cb.expect(new RegExp(`<presence from="${b}@localhost/r"`));
    await new Promise((r) => setTimeout(r, 100));
    assert.doesNotMatch(cb.buffer, /type="subscribe"/);
  });

  it('pre-approves a subscription and answers the request automatically', async () => {
    const [a, b] = await users('aa', 'ab');
    const cb = await login(b as string);
    await getRoster(cb);
    cb.send(`<presence to='${a}@localhost' type='subscribed'/>`);
    await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="none" approved="true"/>`));
    const ca = await login(a as string);
    await getRoster(ca);
    ca.send(`<presence to='${b}@localhost' type='subscribe'/>`);
    await ca.expect(new RegExp(`<item jid="${b}@localhost" subscription="to"/>`));
    await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="from"/>`));
  });

  it('answers a subscription request to a missing account with unsubscribed', async () => {
    const [a] = await users('ma');
    const ca = await login(a as string);
    await getRoster(ca);
    await available(ca, `${a}@localhost`);
    ca.send(`<presence to='ghost@localhost' type='subscribe'/>`);
    await ca.expect(/<item jid="ghost@localhost" subscription="none" ask="subscribe"\/>/);
    await ca.expect(/<item jid="ghost@localhost" subscription="none"\/>/);
    await ca.expect(/type="unsubscribed"[^>]*from="ghost@localhost"|from="ghost@localhost"[^>]*type="unsubscribed"/);
  });

  it('broadcasts unavailable when a session ends abruptly, and directed presence reaches its target', async () => {
    const [a, b, c] = await users('ua', 'ub', 'uc');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const cc = await login(c as string);
    await available(ca, `${a}@localhost`);
    await available(cb, `${b}@localhost`);
    await available(cc, `${c}@localhost`);
    // a subscribes to b; b approves, so a sees b's presence.
    ca.send(`<presence to='${b}@localhost' type='subscribe'/>`);
    await cb.expect(/type="subscribe"/);
    cb.send(`<presence to='${a}@localhost' type='subscribed'/>`);
    await ca.expect(new RegExp(`<presence from="${b}@localhost/r" to="${a}@localhost"`));
    // b sends directed presence to c, who has no subscription.
    cb.send(`<presence to='${c}@localhost/r'><status>psst</status></presence>`);
    await cc.expect(new RegExp(`<presence to="${c}@localhost/r" from="${b}@localhost/r"><status>psst</status></presence>|from="${b}@localhost/r"`));
    // b drops without closing its stream: a (subscriber) and c (directed) both learn it is gone.
    cb.destroy();
    await ca.expect(new RegExp(`<presence[^>]*type="unavailable"[^>]*from="${b}@localhost/r"|<presence[^>]*from="${b}@localhost/r"[^>]*type="unavailable"`));
    await cc.expect(new RegExp(`<presence[^>]*type="unavailable"[^>]*from="${b}@localhost/r"|<presence[^>]*from="${b}@localhost/r"[^>]*type="unavailable"`));
  });

  it('cancels the subscriptions of a removed account on both sides', async () => {
    const [a, b] = await users('xa', 'xb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    await getRoster(ca);
    await getRoster(cb);
    await available(ca, `${a}@localhost`);
    await available(cb, `${b}@localhost`);
    ca.send(`<presence to='${b}@localhost' type='subscribe'/>`);
    await cb.expect(/type="subscribe"/);
    cb.send(`<presence to='${a}@localhost' type='subscribed'/>`);
    await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="from"/>`));
    await ca.expect(new RegExp(`<presence from="${b}@localhost/r"`));
    await t.server.hosts.get('localhost')?.removeAccount(Jid.parse(`${a}@localhost`));
    await cb.expect(new RegExp(`<item jid="${a}@localhost" subscription="none"/>`));
    assert.equal(await t.server.storage.accounts.exists('localhost', a as string), false);
  });
});
