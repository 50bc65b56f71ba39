// The app team's whole path with an independent client library: B is offline, A sends three messages; the app's
// webhook and (mock) APNs each hear of every one exactly once; B logs in and gets the three, in order, once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectClient, xml, type TestClient } from '../helpers/xmpp-client.ts';
import { MockApns, apnsKey, mockCertificate, tempDir } from '../modules/push-service/mocks.ts';

const TOKEN = 'a1b2c3d4'.repeat(8);

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('offline messages with webhook and push, through xmpp.js', () => {
  const dir = tempDir();
  let t: TestServer;
  let apns: MockApns;
  let hook: Server;
  const hooks: Array<Record<string, unknown>> = [];
  const clients: TestClient[] = [];

  before(async () => {
    const tls = await mockCertificate(dir);
    apns = await new MockApns(tls).listen();
    hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        hooks.push(JSON.parse(body) as Record<string, unknown>);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    t = await startServer({
      modules: {
        offline_webhook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/offline`, format: 'json', secret: 'a-webhook-secret-of-32-characters' },
        push: { include_sender: true, include_body: true },
        push_service: {
          ca_file: tls.caFile, privacy: 'sender_and_body',
          apns: { key_file: apnsKey(dir).file, key_id: 'KEY1234567', team_id: 'TEAM123456', host: apns.origin },
        },
      },
    });
    await t.register('alice', 'alice-pw');
    await t.register('bob', 'bob-pw');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
    await apns.close();
    await new Promise((r) => hook.close(r));
  });

  it('notifies the webhook and APNs three times each, then delivers the three messages in order, once', async () => {
    // Bob's app registers its device token with the built-in push service, then goes to the background.
    const bob = await connectClient({ port: t.port, username: 'bob', password: 'bob-pw', resource: 'phone' });
    await bob.xmpp.iqCaller.request(xml('iq', { type: 'set' },
      xml('enable', { xmlns: 'urn:xmpp:push:0', jid: 'push.localhost', node: TOKEN },
        xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
          xml('field', { var: 'provider' }, xml('value', {}, 'apns')),
          xml('field', { var: 'topic' }, xml('value', {}, 'com.example.chat'))))));
    await bob.stop();

    const alice = await connectClient({ port: t.port, username: 'alice', password: 'alice-pw', resource: 'desk' });
    clients.push(alice);
    for (let i = 1; i <= 3; i++) {
      await alice.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: `m${i}` }, xml('body', {}, `message ${i}`)));
    }
    await until('three webhook calls', () => hooks.length >= 3);
    await until('three APNs requests', () => apns.requests.length >= 3);
    // Nothing more arrives: exactly one notification of each kind per message.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(hooks.length, 3);
    assert.equal(apns.requests.length, 3);
    assert.deepEqual(hooks.map((h) => [h.to, h.body, h.offline_count]), [
      ['bob@localhost', 'message 1', 1], ['bob@localhost', 'message 2', 2], ['bob@localhost', 'message 3', 3],
    ]);
    const pushes = apns.requests.map((r) => JSON.parse(r.body) as { aps: { badge: number; alert: { body: string } } });
    assert.deepEqual(pushes.map((p) => [p.aps.badge, p.aps.alert.body]).sort(), [[1, 'message 1'], [2, 'message 2'], [3, 'message 3']]);
    for (const r of apns.requests) assert.equal(r.path, `/3/device/${TOKEN}`);

    // Bob opens the app: the three messages, in order, with delay stamps, and nothing twice.
    const back = await connectClient({ port: t.port, username: 'bob', password: 'bob-pw', resource: 'phone' });
    clients.push(back);
    await back.xmpp.send(xml('presence'));
    const got = [];
    for (let i = 1; i <= 3; i++) got.push(await back.next((s) => s.is('message')));
    assert.deepEqual(got.map((m) => m.attrs.id), ['m1', 'm2', 'm3']);
    assert.deepEqual(got.map((m) => m.getChildText('body')), ['message 1', 'message 2', 'message 3']);
    for (const m of got) {
      assert.equal(m.attrs.from, 'alice@localhost/desk');
      assert.match(m.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp ?? '', /^\d{4}-\d\d-\d\dT/);
    }
    await back.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(back.inbox.filter((s) => s.is('message')).length, 0);
    assert.equal(await t.server.storage.offline.count('localhost', 'bob'), 0);
  });
});
