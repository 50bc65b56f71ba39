// The push service JID as XEP-0357's app server: who may publish, the publish-options it reads, privacy, the
// badge count, errors, and the outbox when every provider is down.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import webpush from 'web-push';
import { buildJob, readPublish, type JobContext } from '../../../src/modules/push-service/publish.ts';
import type { PushJob } from '../../../src/modules/push-service/types.ts';
import { xml, type Element } from '../../../src/xml/element.ts';
import { RawClient } from '../../helpers/raw-client.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MockApns, apnsKey, ask, browserSubscription, closedPort, mockCertificate, publishIq, serviceAccount, tempDir, waitForJobs } from './mocks.ts';

const APNS_KIND = 'push_service:localhost:apns';
const TOKEN = 'f'.repeat(64);

describe('push service JID', () => {
  const dir = tempDir();
  let mock: MockApns;
  let t: TestServer;
  const vapid = webpush.generateVAPIDKeys();
  let n = 0;
  const open: RawClient[] = [];

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockApns(tls).listen();
    t = await startServer({
      modules: {
        push_service: {
          ca_file: tls.caFile, backoff_base: 0.01, backoff_max: 0.02, privacy: 'sender_and_body', text: 'Nouveau message',
          apns: { key_file: apnsKey(dir).file, key_id: 'KEY1234567', team_id: 'TEAM123456', host: mock.origin, sandbox_host: mock.origin },
          webpush: { vapid_public_key: vapid.publicKey, vapid_private_key: vapid.privateKey, subject: 'https://chat.example/contact' },
        },
      },
    });
  });
  after(async () => {
    for (const c of open) c.destroy();
    await t.stop();
    await mock.close();
  });

  const id = (): string => `s${++n}`;
  async function user(name: string, token = TOKEN): Promise<string> {
    await t.register(name, 'pw');
    await t.server.storage.push.enable('localhost', name, { service: 'push.localhost', node: token, options: null });
    return `${name}@localhost`;
  }
  const condition = (reply: Element): string | undefined => reply.getChild('error')?.getElements().find((e) => e.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;
  const queued = async (): Promise<number> => (await t.server.storage.outbox.list({ kind: APNS_KIND, limit: 1000 })).length;

  it('answers disco#info as a pubsub service of type push', async () => {
    const reply = await ask(t, xml('iq', { type: 'get', id: id() }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })), 'localhost');
    assert.equal(reply.attrs.type, 'result');
    const q = reply.getChild('query', 'http://jabber.org/protocol/disco#info');
    assert.deepEqual(q?.getChild('identity')?.attrs, { category: 'pubsub', type: 'push', name: 'Parley push service' });
    const features = q?.getChildren('feature').map((f) => f.attrs.var);
    assert.ok(features?.includes('urn:xmpp:push:0'));
    assert.ok(features?.includes('http://jabber.org/protocol/pubsub'));
  });

  it('sends the APNs publish-options: topic, push-type, environment, collapse-id, mutable-content', async () => {
    const jid = await user('opts');
    const before = mock.requests.length;
    const reply = await ask(t, publishIq(id(), TOKEN, {
      provider: 'apns', topic: 'org.example.app', 'push-type': 'alert', environment: 'sandbox', 'collapse-id': 'thread-7', 'mutable-content': '1', priority: 'normal',
    }, { count: 9, sender: 'romeo@montague.example/orchard', body: 'x'.repeat(300) }), jid);
    assert.equal(reply.attrs.type, 'result', reply.toString());
    await waitForJobs(t, APNS_KIND, () => mock.requests.length > before);
    const req = mock.requests.at(-1);
    assert.equal(req?.headers['apns-topic'], 'org.example.app');
    assert.equal(req?.headers['apns-collapse-id'], 'thread-7');
    assert.equal(req?.headers['apns-priority'], '5');
    const body = JSON.parse(req?.body ?? '') as { aps: { alert: { title: string; body: string }; badge: number; 'mutable-content': number } };
    assert.equal(body.aps.badge, 9);
    assert.equal(body.aps['mutable-content'], 1);
    assert.equal(body.aps.alert.title, 'romeo@montague.example');
    assert.equal([...body.aps.alert.body].length, 256, 'the preview is shortened');
    assert.ok(body.aps.alert.body.endsWith('…'));
  });

  it('takes the badge from the stored offline messages when the summary has no message-count', async () => {
    const jid = await user('badge');
    for (let i = 0; i < 3; i++) await t.server.storage.offline.store('localhost', 'badge', 'x@localhost', `<message id='${i}'/>`, 100);
    const before = mock.requests.length;
    const reply = await ask(t, publishIq(id(), TOKEN, { provider: 'apns', topic: 'org.example.app' }, {}), jid);
    assert.equal(reply.attrs.type, 'result');
    await waitForJobs(t, APNS_KIND, () => mock.requests.length > before);
    const body = JSON.parse(mock.requests.at(-1)?.body ?? '') as { aps: { alert: unknown; badge: number } };
    assert.equal(body.aps.badge, 3);
    assert.deepEqual(body.aps.alert, { body: 'Nouveau message' });
  });

  it('refuses a publish from a client session (a full JID): only the server publishes', async () => {
    await user('direct');
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login('direct', 'pw', 'phone');
    const before = await queued();
    c.send(`<iq type='set' id='raw1' to='push.localhost'>${publishIq('x', TOKEN, { provider: 'apns', topic: 'a.b' }).getChild('pubsub')}</iq>`);
    const m = await c.expect(/<iq[^>]*id="raw1"[\s\S]*?<\/iq>/);
    assert.match(m[0], /type="error"/);
    assert.match(m[0], /from="push.localhost"/);
    assert.match(m[0], /<forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.equal(await queued(), before);
  });

  it('answers item-not-found when the account has not enabled that node', async () => {
    const jid = await user('other', 'a1'.repeat(32));
    const before = await queued();
    const reply = await ask(t, publishIq(id(), TOKEN, { provider: 'apns', topic: 'a.b' }), jid);
    assert.equal(condition(reply), 'item-not-found');
    assert.equal(await queued(), before);
  });

  it('answers precondition-not-met for publish-options it cannot honour', async () => {
    const jid = await user('precond');
    const cases: Array<Record<string, string>> = [
      {}, // two providers configured: the provider must be named
      { provider: 'fcm' }, // not configured here
      { provider: 'carrier-pigeon' },
      { provider: 'apns' }, // no topic, none configured
      { provider: 'apns', topic: 'a.b', 'push-type': 'loud' },
      { provider: 'apns', topic: 'a.b', environment: 'staging' },
      { provider: 'apns', topic: 'a.b', priority: 'urgent' },
      { provider: 'apns', topic: 'a.b', 'collapse-id': 'c'.repeat(65) },
      { provider: 'webpush' }, // no subscription
      { provider: 'webpush', 'push-type': 'voip', subscription: browserSubscription('https://push.example/1').json },
    ];
    const before = await queued();
    for (const options of cases) {
      const reply = await ask(t, publishIq(id(), TOKEN, options), jid);
      assert.equal(condition(reply), 'conflict', JSON.stringify(options));
      assert.ok(reply.getChild('error')?.getChild('precondition-not-met', 'http://jabber.org/protocol/pubsub#errors'), JSON.stringify(options));
    }
    const badToken = await ask(t, publishIq(id(), 'not-hex', { provider: 'apns', topic: 'a.b' }), jid);
    assert.equal(condition(badToken), 'item-not-found', 'the registration check comes first');
    assert.equal(await queued(), before);
  });

  it('answers bad-request for a publish without a node or notification, and feature-not-implemented for other pubsub requests', async () => {
    const jid = await user('malformed');
    const noNode = publishIq(id(), TOKEN, { provider: 'apns' });
    delete noNode.getChild('pubsub')?.getChild('publish')?.attrs.node;
    const r1 = await ask(t, noNode, jid);
    assert.equal(condition(r1), 'bad-request');
    assert.ok(r1.getChild('error')?.getChild('nodeid-required', 'http://jabber.org/protocol/pubsub#errors'));

    const noNotification = publishIq(id(), TOKEN, { provider: 'apns' });
    const item = noNotification.getChild('pubsub')?.getChild('publish')?.getChild('item');
    if (item) item.children = [];
    assert.equal(condition(await ask(t, noNotification, jid)), 'bad-request');

    const subscribe = xml('iq', { type: 'set', id: id() }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('subscribe', { node: TOKEN, jid })));
    const r3 = await ask(t, subscribe, jid);
    assert.equal(condition(r3), 'feature-not-implemented');
    assert.ok(r3.getChild('error')?.getChild('unsupported', 'http://jabber.org/protocol/pubsub#errors'));

    const ping = xml('iq', { type: 'get', id: id() }, xml('ping', { xmlns: 'urn:xmpp:ping' }));
    assert.equal(condition(await ask(t, ping, jid)), 'service-unavailable');
  });

  it('answers messages with service-unavailable', async () => {
    const jid = await user('msg');
    const reply = await ask(t, xml('message', { type: 'chat', id: id() }, xml('body', null, 'hello?')), jid);
    assert.equal(reply.attrs.type, 'error');
    assert.equal(condition(reply), 'service-unavailable');
  });
});

describe('push job privacy', () => {
  const iq = publishIq('p', TOKEN, { provider: 'apns', topic: 'a.b' }, { count: 2, sender: 'romeo@montague.example/orchard', body: 'Meet me' });
  const publish = readPublish(iq.getChild('pubsub') as Element);
  const ctx = (privacy: JobContext['privacy']): JobContext => ({
    service: 'push.localhost', configured: ['apns'], privacy, ttlMs: 60_000, now: 1_000, offlineCount: () => Promise.resolve(7),
  });
  const pick = (j: PushJob): Partial<PushJob> => ({ count: j.count, sender: j.sender, body: j.body });

  it('keeps neither sender nor body with privacy none', async () => {
    assert.deepEqual(pick(await buildJob(publish, ctx('none'))), { count: 2, sender: undefined, body: undefined });
  });
  it('keeps the sender (bare JID) with privacy sender', async () => {
    assert.deepEqual(pick(await buildJob(publish, ctx('sender'))), { count: 2, sender: 'romeo@montague.example', body: undefined });
  });
  it('keeps sender and body with privacy sender_and_body', async () => {
    assert.deepEqual(pick(await buildJob(publish, ctx('sender_and_body'))), { count: 2, sender: 'romeo@montague.example', body: 'Meet me' });
  });
  it('shows no preview when the publish carried no body, and counts stored messages when it carried no count', async () => {
    const bare = readPublish(publishIq('p', TOKEN, { topic: 'a.b' }, { sender: 'romeo@montague.example' }).getChild('pubsub') as Element);
    const job = await buildJob(bare, ctx('sender_and_body'));
    assert.deepEqual(pick(job), { count: 7, sender: 'romeo@montague.example', body: undefined });
    assert.equal(job.provider, 'apns', 'the only configured provider');
    assert.equal(job.expiresAt, 61_000);
  });
});

describe('push service with every endpoint down', () => {
  const dir = tempDir();
  let t: TestServer;
  let n = 0;
  let subscription = '';

  before(async () => {
    const down = `https://127.0.0.1:${await closedPort()}`;
    const tls = await mockCertificate(dir);
    const vapid = webpush.generateVAPIDKeys();
    t = await startServer({
      modules: {
        push_service: {
          ca_file: tls.caFile, backoff_base: 0.01, backoff_max: 0.02, max_attempts: 3, timeout: 2,
          apns: { key_file: apnsKey(dir).file, key_id: 'K', team_id: 'T', topic: 'a.b', host: down, sandbox_host: down },
          fcm: { service_account_file: serviceAccount(dir, `${down}/token`).file, endpoint: down },
          webpush: { vapid_public_key: vapid.publicKey, vapid_private_key: vapid.privateKey, subject: 'mailto:ops@example.com' },
        },
      },
    });
    for (const [u, node] of [['da', TOKEN], ['db', 'fcm-token'], ['dc', 'sub-1']] as const) {
      await t.register(u, 'pw');
      await t.server.storage.push.enable('localhost', u, { service: 'push.localhost', node, options: null });
    }
    // The browser's push service is down too.
    subscription = browserSubscription(`${down}/push/1`).json;
  });
  after(async () => {
    await t.stop();
  });

  it('still answers every publish with a result, then dead-letters the jobs after max_attempts', async () => {
    const publishes: Array<[string, string, Record<string, string>]> = [
      ['da@localhost', TOKEN, { provider: 'apns' }],
      ['db@localhost', 'fcm-token', { provider: 'fcm' }],
      ['dc@localhost', 'sub-1', { provider: 'webpush', subscription }],
    ];
    for (const [from, node, options] of publishes) {
      const reply = await ask(t, publishIq(`d${++n}`, node, options), from);
      assert.equal(reply.attrs.type, 'result', reply.toString());
      const kind = `push_service:localhost:${options.provider}`;
      // Durable before the answer: the job is already in the outbox.
      assert.equal((await t.server.storage.outbox.list({ kind, limit: 10 })).length, 1);
    }
    for (const provider of ['apns', 'fcm', 'webpush']) {
      const jobs = await waitForJobs(t, `push_service:localhost:${provider}`, (j) => j.length === 1 && j[0]?.state === 'dead');
      assert.equal(jobs[0]?.attempts, 3, provider);
      assert.ok(jobs[0]?.lastError, provider);
    }
    // A provider being down is no reason to forget the device.
    assert.equal((await t.server.storage.push.list('localhost', 'da')).length, 1);
    assert.equal((await t.server.storage.push.list('localhost', 'db')).length, 1);
    assert.equal((await t.server.storage.push.list('localhost', 'dc')).length, 1);
  });
});

describe('push service configuration', () => {
  const dir = tempDir();

  it('refuses to start without a provider, with an unreadable key, or with a host name as its JID', async () => {
    await assert.rejects(startServer({ modules: { push_service: {} } }), /push_service.*at least one provider/);
    const missing = join(dir, 'missing.p8');
    await assert.rejects(startServer({ modules: { push_service: { apns: { key_file: missing, key_id: 'K', team_id: 'T' } } } }), /push_service\.apns\.key_file/);
    const notKey = join(dir, 'not-a-key.p8');
    writeFileSync(notKey, 'hello');
    await assert.rejects(startServer({ modules: { push_service: { apns: { key_file: notKey, key_id: 'K', team_id: 'T' } } } }), /push_service\.apns.*not a PEM private key/);
    const rsa = serviceAccount(dir, 'https://oauth2.example/token').file;
    await assert.rejects(startServer({ modules: { push_service: { jid: 'localhost', fcm: { service_account_file: rsa } } } }), /push_service\.jid/);
  });

  it('is off unless configured', async () => {
    const t = await startServer();
    try {
      assert.equal(t.server.router.hasRoute('push.localhost'), false);
    } finally {
      await t.stop();
    }
  });
});
