// XEP-0388 SASL2, XEP-0386 Bind2 and XEP-0484 FAST: raw exchanges, then xmpp.js (which prefers SASL2).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { client, xml } from '@xmpp/client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { main } from '../../src/cli/main.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { SessionKey } from '../../src/core/session.ts';

const SASL2 = 'urn:xmpp:sasl:2';
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const plain = (user: string, pw: string): string => b64(`\0${user}\0${pw}`);
const UA = (id: string): string => `<user-agent id='${id}'><software>Test</software><device>Bench</device></user-agent>`;

/** A TLS stream (STARTTLS) at its pre-authentication features. */
async function tlsStream(t: TestServer): Promise<{ c: RawClient; features: string }> {
  const c = await RawClient.connect(t.port);
  await c.openStream();
  await c.starttls();
  return { c, features: await c.openStream() };
}

/** The HT-SHA-256-NONE initial response for a token (draft-schmaus-kitten-sasl-ht §3.1). */
function htInitial(user: string, token: string): string {
  return b64(Buffer.concat([Buffer.from(`${user}\0`), createHmac('sha256', token).update('Initiator').digest()]));
}

async function tokenLogin(t: TestServer, user: string, agent: string, token: string): Promise<{ c: RawClient; reply: string }> {
  const { c } = await tlsStream(t);
  c.send(`<authenticate xmlns='${SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>${htInitial(user, token)}</initial-response>`
    + `${UA(agent)}<fast xmlns='urn:xmpp:fast:0'/></authenticate>`);
  const m = await c.expect(/<(success|failure) xmlns="urn:xmpp:sasl:2">[\s\S]*?<\/\1>/);
  return { c, reply: m[0] };
}

describe('SASL2, Bind2 and FAST', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({}, { adminChannel: true });
    await t.register('alice', 'alice-pw');
    await t.register('bob', 'bob-pw');
  });
  after(async () => {
    await t.stop();
  });

  it('offers SASL2 after TLS only, with inline Bind2, SM and FAST', async () => {
    const c = await RawClient.connect(t.port);
    try {
      const before = await c.openStream();
      assert.doesNotMatch(before, /urn:xmpp:sasl:2/);
      await c.starttls();
      const features = await c.openStream();
      const auth = features.match(/<authentication xmlns="urn:xmpp:sasl:2">([\s\S]*?)<\/authentication>/)?.[1] ?? '';
      assert.match(auth, /^<mechanism>SCRAM-SHA-256-PLUS<\/mechanism>/);
      assert.match(auth, /<mechanism>PLAIN<\/mechanism><inline>/);
      assert.match(auth, /<inline><bind xmlns="urn:xmpp:bind:0"><inline><feature var="urn:xmpp:sm:3"\/><feature var="urn:xmpp:csi:0"\/><feature var="urn:xmpp:carbons:2"\/><\/inline><\/bind>/);
      assert.match(auth, /<sm xmlns="urn:xmpp:sm:3"\/><fast xmlns="urn:xmpp:fast:0"><mechanism>HT-SHA-256-NONE<\/mechanism><\/fast><\/inline>$/);
    } finally {
      c.socket.destroy();
    }
  });

  it('authenticates, binds from the tag and enables SM and carbons in one round trip, with no restart', async () => {
    const { c } = await tlsStream(t);
    try {
      c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('alice', 'alice-pw')}</initial-response>${UA('d4ce7b1d-0001')}`
        + `<bind xmlns='urn:xmpp:bind:0'><tag>phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/><enable xmlns='urn:xmpp:carbons:2'/>`
        + `<inactive xmlns='urn:xmpp:csi:0'/></bind></authenticate>`);
      const m = await c.expect(/<success xmlns="urn:xmpp:sasl:2">([\s\S]*?)<\/success>/);
      assert.match(m[1] as string,
        /^<authorization-identifier>alice@localhost\/phone<\/authorization-identifier><bound xmlns="urn:xmpp:bind:0"><enabled xmlns="urn:xmpp:sm:3" id="[^"]+" resume="true" max="\d+"\/><\/bound>$/);
      // No restart: stanzas flow on the same stream at once.
      c.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
      await c.expect(/<iq type="result" id="r1"/);
      const session = t.server.sessions.get(Jid.parse('alice@localhost/phone'));
      assert.ok(session?.tracker, 'stream management is on');
      assert.equal(session.get(new SessionKey<true>('carbons.enabled')), true, 'carbons are on');
      assert.ok(session.get(new SessionKey<unknown>('csi.state')), 'the client is inactive');
    } finally {
      c.socket.destroy();
    }
  });

  it('gives a second client with the same tag its own resource', async () => {
    const one = await tlsStream(t);
    const two = await tlsStream(t);
    try {
      for (const [x, id] of [[one.c, 'ua-one'], [two.c, 'ua-two']] as const) {
        x.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('bob', 'bob-pw')}</initial-response>${UA(id)}`
          + `<bind xmlns='urn:xmpp:bind:0'><tag>desk</tag></bind></authenticate>`);
      }
      const a = (await one.c.expect(/<authorization-identifier>([^<]+)</))[1];
      const b = (await two.c.expect(/<authorization-identifier>([^<]+)</))[1];
      assert.equal(a, 'bob@localhost/desk');
      assert.match(b as string, /^bob@localhost\/desk\.[\w-]{8}$/);
      assert.equal(one.c.isClosed, false);
    } finally {
      one.c.socket.destroy();
      two.c.socket.destroy();
    }
  });

  it('answers SCRAM challenges in SASL2 elements and a wrong password with a SASL2 failure', async () => {
    const { c } = await tlsStream(t);
    try {
      c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('alice', 'nope')}</initial-response></authenticate>`);
      const m = await c.expect(/<failure xmlns="urn:xmpp:sasl:2">[\s\S]*?<\/failure>/);
      assert.equal(m[0], '<failure xmlns="urn:xmpp:sasl:2"><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/></failure>');
      c.send(`<authenticate xmlns='${SASL2}' mechanism='SCRAM-SHA-256'><initial-response>${b64('n,,n=alice,r=abcdefgh')}</initial-response></authenticate>`);
      const ch = await c.expect(/<challenge xmlns="urn:xmpp:sasl:2">([^<]+)<\/challenge>/);
      assert.match(Buffer.from(ch[1] as string, 'base64').toString(), /^r=abcdefgh[^,]+,s=[^,]+,i=\d+$/);
      c.send(`<abort xmlns='${SASL2}'/>`);
      await c.expect(/<failure xmlns="urn:xmpp:sasl:2"><aborted xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/><\/failure>/);
    } finally {
      c.socket.destroy();
    }
  });

  it('sends the post-authentication features after success without Bind2', async () => {
    const { c } = await tlsStream(t);
    try {
      c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('alice', 'alice-pw')}</initial-response></authenticate>`);
      await c.expect(/<success xmlns="urn:xmpp:sasl:2"><authorization-identifier>alice@localhost<\/authorization-identifier><\/success>/);
      const f = await c.expect(/<stream:features>[\s\S]*?<\/stream:features>/);
      assert.match(f[0], /<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
      c.send(`<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>classic</resource></bind></iq>`);
      await c.expect(/<jid>alice@localhost\/classic<\/jid>/);
    } finally {
      c.socket.destroy();
    }
  });

  it('resumes a stream management session inside <authenticate/>', async () => {
    const first = await tlsStream(t);
    first.c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('alice', 'alice-pw')}</initial-response>${UA('ua-resume')}`
      + `<bind xmlns='urn:xmpp:bind:0'><tag>tab</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind></authenticate>`);
    const id = (await first.c.expect(/<enabled xmlns="urn:xmpp:sm:3" id="([^"]+)"/))[1] as string;
    first.c.socket.destroy();
    await first.c.closed();
    const { c } = await tlsStream(t);
    try {
      c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('alice', 'alice-pw')}</initial-response>${UA('ua-resume')}`
        + `<resume xmlns='urn:xmpp:sm:3' previd='${id}' h='0'/></authenticate>`);
      const m = await c.expect(/<success xmlns="urn:xmpp:sasl:2">([\s\S]*?)<\/success>/);
      assert.match(m[1] as string, new RegExp(`^<authorization-identifier>alice@localhost/tab</authorization-identifier><resumed xmlns="urn:xmpp:sm:3" previd="${id}" h="0"/>$`));
      c.send(`<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>`);
      await c.expect(/<iq type="result" id="r2"/);
    } finally {
      c.socket.destroy();
    }
  });

  it('issues a FAST token that logs in without the password, until the password changes', async () => {
    await t.register('carol', 'carol-pw');
    const { c } = await tlsStream(t);
    c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('carol', 'carol-pw')}</initial-response>${UA('ua-fast')}`
      + `<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>`);
    const m = await c.expect(/<token xmlns="urn:xmpp:fast:0" expiry="([^"]+)" token="([^"]+)"\/>/);
    c.socket.destroy();
    const token = m[2] as string;
    assert.ok(Date.parse(m[1] as string) > Date.now());

    const ok = await tokenLogin(t, 'carol', 'ua-fast', token);
    ok.c.socket.destroy();
    const data = ok.reply.match(/<additional-data>([^<]+)</)?.[1] ?? '';
    assert.deepEqual(Buffer.from(data, 'base64'), createHmac('sha256', token).update('Responder').digest(), 'the server proves it knows the token');
    assert.match(ok.reply, /<authorization-identifier>carol@localhost<\/authorization-identifier>/);

    // Another user agent cannot use it.
    const other = await tokenLogin(t, 'carol', 'ua-other', token);
    other.c.socket.destroy();
    assert.match(other.reply, /<not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/>/);

    await t.server.accounts.setPassword('carol', 'localhost', 'carol-pw2');
    const after = await tokenLogin(t, 'carol', 'ua-fast', token);
    after.c.socket.destroy();
    assert.match(after.reply, /^<failure xmlns="urn:xmpp:sasl:2"><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/><\/failure>$/);
  });

  it('revokes tokens from the command line (parley fast-revoke)', async () => {
    const { c } = await tlsStream(t);
    c.send(`<authenticate xmlns='${SASL2}' mechanism='PLAIN'><initial-response>${plain('bob', 'bob-pw')}</initial-response>${UA('ua-cli')}`
      + `<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>`);
    const token = (await c.expect(/ token="([^"]+)"/))[1] as string;
    c.socket.destroy();
    const works = await tokenLogin(t, 'bob', 'ua-cli', token);
    works.c.socket.destroy();
    assert.match(works.reply, /^<success /);

    const config = join(t.dataDir, 'cli.json');
    writeFileSync(config, JSON.stringify({ hosts: ['localhost'], data_dir: t.dataDir }));
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => { out.push(String(s)); return true; }) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['fast-revoke', 'bob', 'localhost', '--config', config]);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(code, 0);
    assert.equal(out.join(''), 'revoked FAST tokens of 1 client(s) for bob@localhost\n');
    const refused = await tokenLogin(t, 'bob', 'ua-cli', token);
    refused.c.socket.destroy();
    assert.match(refused.reply, /^<failure /);
  });

  it('works with xmpp.js: SASL2 with Bind2, a FAST token, then a login with the token alone', async () => {
    await t.register('dave', 'dave-pw');
    const userAgent = xml('user-agent', { id: 'b7a3f1c2-aaaa-4bbb-8ccc-000000000001' }, xml('software', null, 'xmpp.js'));
    let saved: { mechanism: string; token: string; expiry: string } | undefined;
    const open = async (password: string) => {
      const x = client({ service: `xmpp://127.0.0.1:${t.port}`, domain: 'localhost', username: 'dave', password, resource: 'app', userAgent } as Parameters<typeof client>[0]);
      x.reconnect.stop();
      x.on('error', () => undefined);
      const fast = (x as unknown as { fast: { saveToken(t: unknown): Promise<void>; fetchToken(): Promise<unknown> } }).fast;
      fast.saveToken = async (tok) => { saved = tok as typeof saved; };
      fast.fetchToken = async () => saved;
      return x;
    };
    const first = await open('dave-pw');
    const jid = await first.start();
    assert.equal(jid.toString(), 'dave@localhost/app');
    const session = [...t.server.sessions.sessions()].find((s) => s.jid?.toString() === 'dave@localhost/app');
    assert.ok(session?.tracker, 'xmpp.js enabled stream management inline');
    await first.stop();
    assert.equal(saved?.mechanism, 'HT-SHA-256-NONE');

    // A wrong password: only the token can log this client in.
    const second = await open('not-the-password');
    const jid2 = await second.start();
    assert.equal(jid2.toString(), 'dave@localhost/app');
    await second.stop();
  });
});
