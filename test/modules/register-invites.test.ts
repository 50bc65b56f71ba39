// In-band registration limits: a server-wide cap per hour on top of the per-address one, and invite-only
// registration with XEP-0401 tokens redeemed through XEP-0445 <preauth/>; `parley invite create` makes them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { createInvite, validInvite } from '../../src/modules/register/invites.ts';
import { openStorage } from '../../src/storage/open.ts';
import { parseConfig } from '../../src/config/load.ts';

const PASSWORD = 'correct horse battery';
const open: RawClient[] = [];

/** A TLS stream before authentication; returns its features. */
async function preauthStream(port: number): Promise<{ c: RawClient; features: string }> {
  const c = await RawClient.connect(port);
  open.push(c);
  await c.openStream();
  await c.starttls();
  return { c, features: await c.openStream() };
}

async function iq(c: RawClient, id: string, stanza: string): Promise<string> {
  c.send(stanza);
  return (await c.expect(new RegExp(`<iq\\b[^>]*\\bid="${id}"[^>]*?(?:/>|>[\\s\\S]*?</iq>)`)))[0];
}

const registerSet = (id: string, user: string): string =>
  `<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${user}</username><password>${PASSWORD}</password></query></iq>`;

after(() => {
  for (const c of open) c.destroy();
});

describe('registrations per hour on the whole host', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ modules: { register: { rate_limit: { registrations: 0, global_per_hour: 2 } } } });
  });
  after(() => t.stop());

  it('refuses registrations past the hourly cap with resource-constraint, whatever the address', async () => {
    for (const u of ['g1', 'g2']) {
      const { c } = await preauthStream(t.port);
      assert.match(await iq(c, 'r', registerSet('r', u)), /type="result"/);
    }
    const { c } = await preauthStream(t.port);
    const reply = await iq(c, 'r', registerSet('r', 'g3'));
    assert.match(reply, /<error type="wait"><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.equal(await t.server.accounts.list('localhost').then((l) => l.includes('g3')), false);
  });
});

describe('invite-only registration (XEP-0401, XEP-0445)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ modules: { register: { invite_only: true } } });
  });
  after(() => t.stop());

  it('advertises token registration, and refuses registration without a token with not-allowed', async () => {
    const { c, features } = await preauthStream(t.port);
    assert.match(features, /<register xmlns="urn:xmpp:ibr-token:0"\/>/);
    assert.match(features, /<register xmlns="http:\/\/jabber.org\/features\/iq-register"\/>/);
    const reply = await iq(c, 'r', registerSet('r', 'uninvited'));
    assert.match(reply, /<not-allowed xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(reply, /invitation/);
  });

  it('registers with a valid token, once; an unknown or expired token is item-not-found', async () => {
    const invite = await createInvite(t.server.storage.kv, 'localhost', { expiresDays: 1 });
    assert.match(invite.uri, /^xmpp:localhost\?register;preauth=[0-9a-f]{32}$/);
    // Only a digest is stored.
    const stored = await t.server.storage.kv.entries('localhost', '', 'urn:xmpp:invite');
    assert.equal(stored.some(([k, v]) => k.includes(invite.token) || v.includes(invite.token)), false);

    const { c } = await preauthStream(t.port);
    const bad = await iq(c, 'p0', `<iq type='set' id='p0'><preauth xmlns='urn:xmpp:pars:0' token='nope'/></iq>`);
    assert.match(bad, /<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(await iq(c, 'p1', `<iq type='set' id='p1'><preauth xmlns='urn:xmpp:pars:0' token='${invite.token}'/></iq>`), /type="result"/);
    assert.match(await iq(c, 'r1', registerSet('r1', 'invited')), /type="result"/);
    assert.ok((await t.server.accounts.list('localhost')).includes('invited'));
    const login = await RawClient.connect(t.port);
    open.push(login);
    await login.login('invited', PASSWORD);

    // Used up.
    const again = await preauthStream(t.port);
    assert.match(await iq(again.c, 'p2', `<iq type='set' id='p2'><preauth xmlns='urn:xmpp:pars:0' token='${invite.token}'/></iq>`), /<item-not-found/);

    const old = await createInvite(t.server.storage.kv, 'localhost', { expiresDays: 1, now: Date.now() - 2 * 86_400_000 });
    assert.equal(await validInvite(t.server.storage.kv, 'localhost', old.token), undefined);
    const late = await preauthStream(t.port);
    assert.match(await iq(late.c, 'p3', `<iq type='set' id='p3'><preauth xmlns='urn:xmpp:pars:0' token='${old.token}'/></iq>`), /<item-not-found/);
  });
});

describe('parley invite create', () => {
  it('prints a token and its URI, which the server then accepts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-invite-'));
    try {
      const config = join(dir, 'parley.yml');
      writeFileSync(config, 'hosts: [example.test]\ndata_dir: ./data\n');
      const bin = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
      const r = spawnSync(process.execPath, [bin, 'invite', 'create', '--expires', '7', '--config', config], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      const [token = '', uri, expiry] = r.stdout.trim().split('\n');
      assert.match(token, /^[0-9a-f]{32}$/);
      assert.equal(uri, `xmpp:example.test?register;preauth=${token}`);
      assert.match(expiry ?? '', /^expires \d{4}-/);
      const bad = spawnSync(process.execPath, [bin, 'invite', 'create', '--host', 'other.test', '--config', config], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(bad.status, 1);
      const storage = openStorage(parseConfig({ hosts: ['example.test'], data_dir: join(dir, 'data') }));
      try {
        assert.ok(await validInvite(storage.kv, 'example.test', token), 'the printed token is valid');
      } finally {
        storage.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
