// The push service's Web Push provider against a local push service: VAPID (RFC 8292) and aes128gcm payload
// encryption (RFC 8291), decrypted here with the browser's keys.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { importJWK, jwtVerify } from 'jose';
import webpush from 'web-push';
import { PermanentSendError } from '../../../src/outbox/sender.ts';
import { WebPushClient, parseSubscription } from '../../../src/modules/push-service/webpush.ts';
import { TokenGoneError, type PushJob } from '../../../src/modules/push-service/types.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MockHttps, ask, browserSubscription, mockCertificate, publishIq, tempDir, waitForJobs } from './mocks.ts';

const KIND = 'push_service:localhost:webpush';
const SUBJECT = 'mailto:ops@example.com';

async function vapidKey(publicKey: string): ReturnType<typeof importJWK> {
  const raw = Buffer.from(publicKey, 'base64url');
  return importJWK({ kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33, 65).toString('base64url') }, 'ES256');
}

/** Splits `vapid t=<jwt>, k=<key>` (RFC 8292 §3). */
function vapidHeader(value: string | string[] | undefined): { t: string; k: string } {
  const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(String(value));
  assert.ok(m, `Authorization is not a vapid header: ${value}`);
  return { t: m[1] as string, k: m[2] as string };
}

describe('Web Push client', () => {
  const dir = tempDir();
  let mock: MockHttps;
  let client: WebPushClient;
  const vapid = webpush.generateVAPIDKeys();
  let browser: ReturnType<typeof browserSubscription>;
  const job = (over: Partial<PushJob> = {}): PushJob => ({
    service: 'push.localhost', provider: 'webpush', token: 'sub-1', count: 5, pushType: 'alert', priority: 'high',
    expiresAt: Date.now() + 3_600_000, subscription: parseSubscription(browser.json), ...over,
  });

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockHttps(tls).listen();
    browser = browserSubscription(`${mock.origin}/push/sub-1`);
    client = new WebPushClient({ publicKey: vapid.publicKey, privateKey: vapid.privateKey, subject: SUBJECT, ca: tls.cert, timeoutMs: 5000, text: 'New message' });
  });
  after(async () => {
    client.close();
    await mock.close();
  });

  it('signs the VAPID token for the endpoint origin and encrypts the payload for the browser', async () => {
    await client.send(job({ sender: 'romeo@localhost', body: 'Wherefore art thou', collapseId: 'room1' }));
    const req = mock.requests.at(-1);
    assert.equal(req?.method, 'POST');
    assert.equal(req?.path, '/push/sub-1');
    const { t, k } = vapidHeader(req?.headers.authorization);
    assert.equal(k, vapid.publicKey);
    const { payload } = await jwtVerify(t, await vapidKey(vapid.publicKey), { algorithms: ['ES256'], audience: mock.origin, subject: SUBJECT });
    assert.ok((payload.exp ?? 0) <= Math.floor(Date.now() / 1000) + 24 * 3600, 'RFC 8292 §2: at most 24 hours');
    assert.equal(req?.headers['content-encoding'], 'aes128gcm');
    assert.equal(req?.headers.urgency, 'high');
    assert.equal(req?.headers.topic, 'room1');
    assert.ok(Number(req?.headers.ttl) > 3500 && Number(req?.headers.ttl) <= 3600);
    assert.ok((req?.raw.length ?? 0) > 86, 'an encrypted body follows the aes128gcm header');
    assert.doesNotMatch(req?.raw.toString('latin1') ?? '', /Wherefore/);
    assert.deepEqual(JSON.parse(browser.decrypt(req?.raw ?? Buffer.alloc(0))), {
      type: 'alert', count: 5, title: 'romeo@localhost', text: 'Wherefore art thou', sender: 'romeo@localhost', body: 'Wherefore art thou',
    });
  });

  it('does not verify with another VAPID key', async () => {
    const { t } = vapidHeader(mock.requests.at(-1)?.headers.authorization);
    await assert.rejects(jwtVerify(t, await vapidKey(webpush.generateVAPIDKeys().publicKey), { algorithms: ['ES256'] }));
  });

  it('treats 404 and 410 as a dead subscription, 429/5xx as retryable, other errors as permanent', async () => {
    mock.push({ status: 410, body: 'gone' });
    await assert.rejects(client.send(job()), (e) => e instanceof TokenGoneError && /410/.test(e.message));
    mock.push({ status: 404 });
    await assert.rejects(client.send(job()), TokenGoneError);
    for (const status of [429, 500, 503]) {
      mock.push({ status });
      await assert.rejects(client.send(job()), (e) => !(e instanceof PermanentSendError) && !(e instanceof TokenGoneError) && (e as Error).message.includes(String(status)));
    }
    for (const status of [400, 403, 413]) {
      mock.push({ status });
      await assert.rejects(client.send(job()), PermanentSendError);
    }
  });

  it('checks subscriptions before they are queued', () => {
    const good = JSON.parse(browser.json) as { endpoint: string; keys: { p256dh: string; auth: string } };
    assert.deepEqual(parseSubscription(browser.json), { endpoint: good.endpoint, keys: good.keys });
    assert.throws(() => parseSubscription('not json'), /not JSON/);
    assert.throws(() => parseSubscription(JSON.stringify({ ...good, endpoint: 'http://push.example/x' })), /https/);
    assert.throws(() => parseSubscription(JSON.stringify({ ...good, keys: { ...good.keys, auth: 'AAAA' } })), /auth/);
    assert.throws(() => parseSubscription(JSON.stringify({ ...good, keys: { auth: good.keys.auth } })), /p256dh/);
  });
});

describe('Web Push through the push service', () => {
  const dir = tempDir();
  let mock: MockHttps;
  let t: TestServer;
  const vapid = webpush.generateVAPIDKeys();
  let n = 0;

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockHttps(tls).listen();
    t = await startServer({
      modules: {
        push_service: {
          ca_file: tls.caFile, backoff_base: 0.01, backoff_max: 0.02, max_attempts: 3, privacy: 'sender_and_body',
          webpush: { vapid_public_key: vapid.publicKey, vapid_private_key: vapid.privateKey, subject: SUBJECT },
        },
      },
    });
    assert.equal(readFileSync(tls.caFile, 'utf8'), tls.cert);
  });
  after(async () => {
    await t.stop();
    await mock.close();
  });

  async function register(user: string, node: string): Promise<ReturnType<typeof browserSubscription>> {
    await t.register(user, 'pw');
    await t.server.storage.push.enable('localhost', user, { service: 'push.localhost', node, options: null });
    return browserSubscription(`${mock.origin}/push/${node}`);
  }

  it('delivers an encrypted notification with the preview', async () => {
    const browser = await register('wa', 'sub-a');
    const reply = await ask(t, publishIq(`w${++n}`, 'sub-a', { provider: 'webpush', subscription: browser.json }, { count: 2, sender: 'romeo@localhost/r', body: 'Hi' }), 'wa@localhost');
    assert.equal(reply.attrs.type, 'result', reply.toString());
    await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'delivered'));
    const req = mock.requests.at(-1);
    assert.equal(req?.path, '/push/sub-a');
    assert.equal(vapidHeader(req?.headers.authorization).k, vapid.publicKey);
    assert.deepEqual(JSON.parse(browser.decrypt(req?.raw ?? Buffer.alloc(0))), {
      type: 'alert', count: 2, title: 'romeo@localhost', text: 'Hi', sender: 'romeo@localhost', body: 'Hi',
    });
  });

  it('removes the subscription when the push service answers 410 Gone', async () => {
    const browser = await register('wb', 'sub-b');
    mock.push({ status: 410 });
    const reply = await ask(t, publishIq(`w${++n}`, 'sub-b', { provider: 'webpush', subscription: browser.json }), 'wb@localhost');
    assert.equal(reply.attrs.type, 'result');
    const jobs = await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'dead'));
    assert.match(jobs.find((x) => x.state === 'dead')?.lastError ?? '', /410.*registration removed/);
    assert.deepEqual(await t.server.storage.push.list('localhost', 'wb'), []);
  });

  it('refuses a publish whose subscription is unusable, without queueing it', async () => {
    await register('wc', 'sub-c');
    const before = (await t.server.storage.outbox.list({ kind: KIND, limit: 100 })).length;
    const reply = await ask(t, publishIq(`w${++n}`, 'sub-c', { provider: 'webpush', subscription: '{"endpoint":"https://x.example/"}' }), 'wc@localhost');
    assert.equal(reply.attrs.type, 'error');
    assert.match(reply.toString(), /<conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    assert.match(reply.toString(), /<precondition-not-met xmlns="http:\/\/jabber.org\/protocol\/pubsub#errors"\/>/);
    assert.equal((await t.server.storage.outbox.list({ kind: KIND, limit: 100 })).length, before);
  });
});
