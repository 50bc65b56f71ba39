// Stream negotiation and its error paths, over raw sockets (RFC 6120 §4, §5, §11).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient, STREAM_HEADER } from '../helpers/raw-client.ts';

const streamError = (condition: string): RegExp =>
  new RegExp(`<stream:error><${condition} xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/>[\\s\\S]*</stream:stream>`);

describe('c2s stream', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { negotiation_timeout: 1 } });
    await t.register('alice', 'secret');
  });
  after(() => t.stop());

  const open = (): Promise<RawClient> => RawClient.connect(t.port);

  it('answers a header with its own and offers only STARTTLS (required) before TLS', async () => {
    const c = await open();
    c.send(STREAM_HEADER());
    const header = await c.expect(/<stream:stream [^>]*>/);
    assert.match(header[0], /from='localhost'/);
    assert.match(header[0], /version='1.0'/);
    assert.match(header[0], /id='[^']+'/);
    const f = await c.expect(/<stream:features>[\s\S]*?<\/stream:features>/);
    assert.match(f[0], /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls>/);
    assert.doesNotMatch(f[0], /mechanisms/);
    c.destroy();
  });

  it('offers SCRAM with -PLUS and PLAIN after STARTTLS, then bind and session after auth', async () => {
    const c = await open();
    await c.openStream();
    await c.starttls();
    const f = await c.openStream();
    for (const m of ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN']) assert.match(f, new RegExp(`<mechanism>${m}</mechanism>`));
    assert.doesNotMatch(f, /starttls/);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`);
    await c.expect(/<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/>/);
    const f2 = await c.openStream();
    assert.match(f2, /<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
    assert.match(f2, /<session xmlns="urn:ietf:params:xml:ns:xmpp-session"><optional\/><\/session>/);
    assert.match(f2, /<ver xmlns="urn:xmpp:features:rosterver"\/>/);
    c.send(`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`);
    const jid = await c.expect(/<jid>alice@localhost\/([^<]+)<\/jid>/);
    assert.ok((jid[1] ?? '').length > 0, 'server-generated resource');
    c.send(`<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
    await c.expect(/<iq type="result" id="s"[^>]*\/>/);
    c.send('</stream:stream>');
    await c.expect(/<\/stream:stream>/);
    await c.closed();
  });

  it('accepts whitespace keepalives and answers </stream:stream>', async () => {
    const c = await open();
    await c.openStream();
    c.send('   \n  \t ');
    c.send('</stream:stream>');
    await c.expect(/<\/stream:stream>/);
    await c.closed();
  });

  it('closes with host-unknown for a domain it does not serve', async () => {
    const c = await open();
    c.send(STREAM_HEADER('elsewhere.example'));
    await c.expect(streamError('host-unknown'));
    await c.closed();
  });

  it('closes with invalid-namespace for a wrong stream or content namespace', async () => {
    const c = await open();
    c.send(`<stream:stream to='localhost' xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
    await c.expect(streamError('invalid-namespace'));
    await c.closed();
    const d = await open();
    d.send(`<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='urn:wrong' version='1.0'>`);
    await d.expect(streamError('invalid-namespace'));
    await d.closed();
  });

  it('closes with unsupported-version without version 1.x', async () => {
    const c = await open();
    c.send(`<stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
    await c.expect(streamError('unsupported-version'));
    await c.closed();
  });

  it('closes with not-well-formed on malformed XML', async () => {
    const c = await open();
    await c.openStream();
    c.send('<message><body></message>');
    await c.expect(streamError('not-well-formed'));
    await c.closed();
  });

  it('closes with restricted-xml on comments, processing instructions, DTDs and entities', async () => {
    for (const bad of ['<!-- hi -->', '<?php echo 1 ?>', '<!DOCTYPE x>', '<message>&custom;</message>']) {
      const c = await open();
      await c.openStream();
      c.send(bad);
      await c.expect(streamError('restricted-xml'));
      await c.closed();
    }
  });

  it('closes with not-well-formed on invalid UTF-8 and on NUL, raw or as a reference', async () => {
    for (const bad of [Buffer.from([0x3c, 0x61, 0x3e, 0xc0, 0xaf, 0x3c, 0x2f, 0x61, 0x3e]), Buffer.from('<a>\u0000</a>'), Buffer.from('<a>&#0;</a>'), Buffer.from('<a>&#x1;</a>')]) {
      const c = await open();
      await c.openStream();
      c.send(bad);
      await c.expect(streamError('not-well-formed'));
      await c.closed();
    }
  });

  it('closes with policy-violation on a stanza over 10 KB before authentication, without waiting for its end', async () => {
    const c = await open();
    await c.openStream();
    c.send(`<message to='alice@localhost'><body>${'x'.repeat(12_000)}`);
    await c.expect(streamError('policy-violation'));
    await c.closed();
  });

  it('closes with not-authorized when a stanza comes before authentication', async () => {
    const c = await open();
    await c.openStream();
    c.send(`<message to='alice@localhost'><body>hi</body></message>`);
    await c.expect(streamError('not-authorized'));
    await c.closed();
  });

  it('refuses SASL before STARTTLS when TLS is required', async () => {
    const c = await open();
    await c.openStream();
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0secret').toString('base64')}</auth>`);
    await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><encryption-required\/>/);
    c.destroy();
  });

  it('closes an idle connection with connection-timeout', async () => {
    const c = await open();
    await c.expect(streamError('connection-timeout'), 4000);
    await c.closed();
  });

  it('closes with connection-timeout when negotiation is not finished in time', async () => {
    const c = await open();
    await c.openStream();
    await c.expect(streamError('connection-timeout'), 4000);
    await c.closed();
  });

  it('one bad connection does not disturb another session', async () => {
    const good = await open();
    await good.login('alice', 'secret', 'steady');
    const bad = await open();
    await bad.openStream();
    bad.send('<<<<');
    await bad.expect(streamError('not-well-formed'));
    good.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await good.expect(/<iq type="result" id="p1"/);
    good.destroy();
  });
});
