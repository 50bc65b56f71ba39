// SASL on a real stream: SCRAM (with and without tls-exporter channel binding), PLAIN, and every failure path.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TLSSocket } from 'node:tls';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { ScramClient } from '../helpers/scram-client.ts';

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const failure = (condition: string): RegExp => new RegExp(`<failure xmlns="${SASL}"><${condition}/>`);

describe('c2s authentication', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
    await t.register('alice', 'pencil');
  });
  after(() => t.stop());

  async function secured(): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    await c.openStream();
    await c.starttls();
    await c.openStream();
    return c;
  }

  async function scram(c: RawClient, mechanism: string, client: ScramClient): Promise<string> {
    c.send(`<auth xmlns='${SASL}' mechanism='${mechanism}'>${b64(client.first())}</auth>`);
    const ch = await c.expect(/<challenge xmlns="[^"]+">([^<]+)<\/challenge>|<failure[\s\S]*?<\/failure>/);
    if (!ch[1]) return ch[0];
    c.send(`<response xmlns='${SASL}'>${b64(client.final(Buffer.from(ch[1], 'base64').toString()))}</response>`);
    const end = await c.expect(/<success xmlns="[^"]+">([^<]*)<\/success>|<success xmlns="[^"]+"\/>|<failure[\s\S]*?<\/failure>/);
    return end[0];
  }

  for (const [mechanism, hash] of [['SCRAM-SHA-1', 'SHA-1'], ['SCRAM-SHA-256', 'SHA-256']] as const) {
    it(`${mechanism}: logs in and verifies the server signature`, async () => {
      const c = await secured();
      const client = new ScramClient({ hash, username: 'alice', password: 'pencil', flag: 'n' });
      const result = await scram(c, mechanism, client);
      const m = /<success xmlns="[^"]+">([^<]+)<\/success>/.exec(result);
      assert.ok(m, result);
      assert.equal(Buffer.from(m[1] as string, 'base64').toString(), client.expectedServerFinal());
      c.destroy();
    });
  }

  for (const [mechanism, hash] of [['SCRAM-SHA-1-PLUS', 'SHA-1'], ['SCRAM-SHA-256-PLUS', 'SHA-256']] as const) {
    it(`${mechanism}: binds to the TLS 1.3 channel with tls-exporter`, async () => {
      const c = await secured();
      const sock = c.socket as TLSSocket;
      assert.equal(sock.getProtocol(), 'TLSv1.3');
      const cbData = sock.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
      const ok = await scram(c, mechanism, new ScramClient({ hash, username: 'alice', password: 'pencil', flag: 'p=tls-exporter', cbData }));
      assert.match(ok, /<success/);
      c.destroy();
      // Channel-binding data from another connection is refused.
      const d = await secured();
      const bad = await scram(d, mechanism, new ScramClient({ hash, username: 'alice', password: 'pencil', flag: 'p=tls-exporter', cbData }));
      assert.match(bad, failure('not-authorized'));
      d.destroy();
    });
  }

  it('refuses a wrong SCRAM password and an unknown user alike with not-authorized', async () => {
    const c = await secured();
    assert.match(await scram(c, 'SCRAM-SHA-256', new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'wrong' })), failure('not-authorized'));
    assert.match(await scram(c, 'SCRAM-SHA-256', new ScramClient({ hash: 'SHA-256', username: 'nobody', password: 'pencil' })), failure('not-authorized'));
    c.destroy();
  });

  it('refuses a client that says it could bind the channel but the server offered -PLUS (downgrade)', async () => {
    const c = await secured();
    assert.match(await scram(c, 'SCRAM-SHA-256', new ScramClient({ hash: 'SHA-256', username: 'alice', password: 'pencil', flag: 'y' })), failure('not-authorized'));
    c.destroy();
  });

  it('answers bad base64 with incorrect-encoding', async () => {
    const c = await secured();
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>not*base64!</auth>`);
    await c.expect(failure('incorrect-encoding'));
    c.destroy();
  });

  it('answers an authorization identity for another user with invalid-authzid', async () => {
    const c = await secured();
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${b64('bob@localhost\0alice\0pencil')}</auth>`);
    await c.expect(failure('invalid-authzid'));
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${b64('alice@localhost\0alice\0pencil')}</auth>`);
    await c.expect(/<success/);
    c.destroy();
  });

  it('answers an unknown mechanism with invalid-mechanism and a weak one with mechanism-too-weak', async () => {
    const c = await secured();
    c.send(`<auth xmlns='${SASL}' mechanism='X-UNKNOWN'/>`);
    await c.expect(failure('invalid-mechanism'));
    c.send(`<auth xmlns='${SASL}' mechanism='DIGEST-MD5'/>`);
    await c.expect(failure('mechanism-too-weak'));
    c.destroy();
  });

  it('answers an abort with aborted', async () => {
    const c = await secured();
    c.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64(new ScramClient({ hash: 'SHA-1', username: 'alice', password: 'pencil' }).first())}</auth>`);
    await c.expect(/<challenge/);
    c.send(`<abort xmlns='${SASL}'/>`);
    await c.expect(failure('aborted'));
    c.destroy();
  });

  it('refuses a SASL payload over the limit with malformed-request', async () => {
    const c = await secured();
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${'A'.repeat(10_004)}</auth>`);
    // Either the element limit or the SASL limit catches it first; both keep memory bounded.
    await c.expect(/failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><malformed-request\/>|<policy-violation/);
    c.destroy();
  });

  it('refuses a SASL payload just under the stanza limit but over sasl_payload with malformed-request', async () => {
    const u = await startServer({ limits: { sasl_payload: 1000 } });
    try {
      const c = await RawClient.connect(u.port);
      await c.openStream();
      await c.starttls();
      await c.openStream();
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${'A'.repeat(1200)}</auth>`);
      await c.expect(failure('malformed-request'));
      c.destroy();
    } finally {
      await u.stop();
    }
  });

  it('refuses a second authentication after success', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('alice', 'pencil');
    c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${b64('\0alice\0pencil')}</auth>`);
    await c.expect(/<stream:error><policy-violation/);
    await c.closed();
  });

  it('closes the stream after repeated failures', async () => {
    const c = await secured();
    for (let i = 0; i < 5; i++) {
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${b64('\0alice\0nope')}</auth>`);
      await c.expect(failure('not-authorized'));
    }
    await c.expect(/<stream:error><policy-violation/);
    await c.closed();
  });

  it('offers PLAIN on direct TLS and never on clear text when STARTTLS is optional', async () => {
    const u = await startServer({ listen: { c2s: { port: 0, bind: '127.0.0.1', starttls: 'optional' } } });
    try {
      await u.register('alice', 'pencil');
      const c = await RawClient.connect(u.port);
      const f = await c.openStream();
      assert.match(f, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
      assert.match(f, /SCRAM-SHA-256/);
      assert.doesNotMatch(f, /PLAIN|-PLUS/);
      c.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${b64('\0alice\0pencil')}</auth>`);
      await c.expect(failure('encryption-required'));
      c.destroy();
      const d = await RawClient.connect(u.tlsPort, { tls: true });
      const f2 = await d.openStream();
      assert.match(f2, /<mechanism>PLAIN<\/mechanism>/);
      assert.doesNotMatch(f2, /starttls/);
      d.send(`<auth xmlns='${SASL}' mechanism='PLAIN'>${b64('\0alice\0pencil')}</auth>`);
      await d.expect(/<success/);
      d.destroy();
    } finally {
      await u.stop();
    }
  });
});
