// Per-connection limits after authentication, and that a limit closes only the offending connection.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ParleyServer } from '../../src/server.ts';
import { builtinModules } from '../../src/modules/index.ts';

const streamError = (condition: string): RegExp => new RegExp(`<stream:error><${condition} xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/>`);

describe('limits after authentication', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { stanza_size: 20_000 } });
    await t.register('alice', 'pw');
  });
  after(() => t.stop());

  async function session(): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    await c.login('alice', 'pw');
    return c;
  }

  it('accepts a stanza under the post-authentication size and refuses one over it', async () => {
    const c = await session();
    c.send(`<message to='alice@localhost'><body>${'x'.repeat(15_000)}</body></message>`);
    c.send(`<iq type='get' id='after' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await c.expect(/id="after"/);
    c.send(`<message to='alice@localhost'><body>${'x'.repeat(25_000)}`);
    await c.expect(streamError('policy-violation'));
    await c.closed();
  });

  it('refuses nesting deeper than 64 below the stanza', async () => {
    const ok = await session();
    ok.send(`<message to='alice@localhost/none'>${'<a>'.repeat(63)}${'</a>'.repeat(63)}</message><iq type='get' id='d' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await ok.expect(/id="d"/);
    const c = await session();
    c.send(`<message to='alice@localhost'>${'<a>'.repeat(65)}`);
    await c.expect(streamError('policy-violation'));
    await c.closed();
  });

  it('refuses more than 256 attributes on one element', async () => {
    const c = await session();
    const attrs = Array.from({ length: 257 }, (_, i) => `a${i}='1'`).join(' ');
    c.send(`<message to='alice@localhost' ${attrs}/>`);
    await c.expect(streamError('policy-violation'));
    await c.closed();
  });

  it('refuses raw C0 control characters', async () => {
    const c = await session();
    c.send(`<message to='alice@localhost'><body>\u0007</body></message>`);
    await c.expect(streamError('not-well-formed'));
    await c.closed();
  });
});

describe('STARTTLS off', () => {
  it('offers no STARTTLS and SCRAM in clear text, never PLAIN', async () => {
    const t = await startServer({ listen: { c2s: { port: 0, bind: '127.0.0.1', starttls: 'off' } } });
    try {
      const c = await RawClient.connect(t.port);
      const f = await c.openStream();
      assert.doesNotMatch(f, /starttls/);
      assert.match(f, /SCRAM-SHA-1/);
      assert.doesNotMatch(f, /PLAIN/);
      c.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
      await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
      await c.closed();
    } finally {
      await t.stop();
    }
  });
});

describe('XML traffic log', () => {
  it('logs elements in and out per connection, with SASL payloads redacted', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    const base = await startServer();
    const config = parseConfig({ ...base.server.config, log: { level: 'info', xml: true } });
    await base.stop();
    const server = new ParleyServer(config, { modules: builtinModules, logger: pino({ level: 'info' }, sink), adminChannel: false });
    await server.start();
    try {
      await server.accounts.register('alice', 'localhost', 'hunter2-secret');
      const c = await RawClient.connect(server.addresses.c2s?.port ?? 0);
      await c.login('alice', 'hunter2-secret', 'log');
      c.send(`<iq type='get' id='logged' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
      await c.expect(/id="logged"/);
      c.destroy();
      const text = lines.join('');
      assert.match(text, /"dir":"in","xml":"<iq type=\\"get\\" id=\\"logged\\"/);
      assert.match(text, /"dir":"out","xml":"<iq type=\\"result\\" id=\\"logged\\"/);
      assert.match(text, /\[redacted\]/);
      assert.doesNotMatch(text, /hunter2/);
      assert.doesNotMatch(text, new RegExp(Buffer.from('\0alice\0hunter2-secret').toString('base64')));
    } finally {
      await server.stop();
      rmSync(config.data_dir, { recursive: true, force: true });
    }
  });
});
