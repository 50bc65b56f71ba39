// The push service's APNs provider against a local HTTP/2 TLS stand-in: ES256 provider tokens, headers,
// token reuse, dead tokens removed, retries on 429/5xx.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { PermanentSendError } from '../../../src/outbox/sender.ts';
import { ApnsClient } from '../../../src/modules/push-service/apns.ts';
import { TokenGoneError, type PushJob } from '../../../src/modules/push-service/types.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MockApns, apnsKey, ask, closedPort, mockCertificate, publishIq, tempDir, waitForJobs } from './mocks.ts';

const TOKEN_A = 'a'.repeat(64);
const TOKEN_B = 'b0'.repeat(32);
const KIND = 'push_service:localhost:apns';

const job = (over: Partial<PushJob> = {}): PushJob => ({
  service: 'push.localhost', provider: 'apns', token: TOKEN_A, count: 3, pushType: 'alert', priority: 'high',
  expiresAt: Date.now() + 3_600_000, topic: 'com.example.chat', ...over,
});

describe('APNs client', () => {
  const dir = tempDir();
  let mock: MockApns;
  let tls: { cert: string; key: string; caFile: string };
  const key = apnsKey(dir);
  let now = Date.now();
  let client: ApnsClient;

  before(async () => {
    tls = await mockCertificate(dir);
    mock = await new MockApns(tls).listen();
    client = new ApnsClient({
      key: readFileSync(key.file, 'utf8'), keyId: 'KEY1234567', teamId: 'TEAM123456', host: mock.origin,
      sandboxHost: `https://127.0.0.1:${await closedPort()}`, ca: tls.cert, timeoutMs: 5000, text: 'New message', now: () => now,
    });
  });
  after(async () => {
    client.close();
    await mock.close();
  });

  it('signs an ES256 provider token with the key id and team id, and sends the APNs headers', async () => {
    const expiresAt = now + 600_000;
    await client.send(job({ collapseId: 'chat-1', expiresAt, sender: 'juliet@localhost', body: 'Hi' }));
    const req = mock.requests.at(-1);
    assert.ok(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.path, `/3/device/${TOKEN_A}`);
    const auth = String(req.headers.authorization);
    assert.match(auth, /^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const jwt = auth.slice('bearer '.length);
    const { payload } = await jwtVerify(jwt, key.publicKey, { algorithms: ['ES256'], issuer: 'TEAM123456', currentDate: new Date(now) });
    assert.equal(payload.iat, Math.floor(now / 1000));
    assert.equal(decodeProtectedHeader(jwt).kid, 'KEY1234567');
    assert.equal(req.headers['apns-topic'], 'com.example.chat');
    assert.equal(req.headers['apns-push-type'], 'alert');
    assert.equal(req.headers['apns-priority'], '10');
    assert.equal(req.headers['apns-collapse-id'], 'chat-1');
    assert.equal(req.headers['apns-expiration'], String(Math.floor(expiresAt / 1000)));
    assert.deepEqual(JSON.parse(req.body), {
      aps: { alert: { title: 'juliet@localhost', body: 'Hi' }, badge: 3, sound: 'default' },
      xmpp: { count: 3, sender: 'juliet@localhost', body: 'Hi' },
    });
  });

  it('rejects a signature made with another key', async () => {
    const other = apnsKey(dir);
    await client.send(job());
    const jwt = String(mock.requests.at(-1)?.headers.authorization).slice('bearer '.length);
    await assert.rejects(jwtVerify(jwt, other.publicKey, { algorithms: ['ES256'], currentDate: new Date(now) }));
  });

  it('reuses the provider token for 50 minutes, then signs a new one', async () => {
    await client.send(job());
    const first = mock.requests.at(-1)?.headers.authorization;
    await client.send(job({ token: TOKEN_B }));
    assert.equal(mock.requests.at(-1)?.headers.authorization, first);
    now += 49 * 60_000;
    await client.send(job({ expiresAt: now + 60_000 }));
    assert.equal(mock.requests.at(-1)?.headers.authorization, first);
    now += 2 * 60_000;
    await client.send(job({ expiresAt: now + 60_000 }));
    const renewed = String(mock.requests.at(-1)?.headers.authorization);
    assert.notEqual(renewed, first);
    const { payload } = await jwtVerify(renewed.slice('bearer '.length), key.publicKey, { algorithms: ['ES256'], currentDate: new Date(now) });
    assert.equal(payload.iat, Math.floor(now / 1000));
  });

  it('sends background pushes at priority 5 without an alert, and VoIP pushes to the .voip topic', async () => {
    await client.send(job({ pushType: 'background', priority: 'normal' }));
    let req = mock.requests.at(-1);
    assert.equal(req?.headers['apns-push-type'], 'background');
    assert.equal(req?.headers['apns-priority'], '5');
    assert.deepEqual(JSON.parse(req?.body ?? ''), { aps: { 'content-available': 1 }, xmpp: { count: 3 } });
    await client.send(job({ pushType: 'voip' }));
    req = mock.requests.at(-1);
    assert.equal(req?.headers['apns-topic'], 'com.example.chat.voip');
    assert.equal(req?.headers['apns-push-type'], 'voip');
    assert.equal(req?.headers['apns-priority'], '10');
    assert.equal(req?.headers['apns-collapse-id'], undefined);
  });

  it('classifies answers: 410 and BadDeviceToken are dead tokens, 429 and 5xx retryable, other errors permanent', async () => {
    mock.push({ status: 410, body: '{"reason":"Unregistered","timestamp":1700000000000}' });
    await assert.rejects(client.send(job()), (e) => e instanceof TokenGoneError && /410 Unregistered/.test(e.message));
    mock.push({ status: 400, body: '{"reason":"BadDeviceToken"}' });
    await assert.rejects(client.send(job()), TokenGoneError);
    mock.push({ status: 400, body: '{"reason":"DeviceTokenNotForTopic"}' });
    await assert.rejects(client.send(job()), (e) => e instanceof PermanentSendError && /DeviceTokenNotForTopic/.test(e.message));
    for (const [status, reason] of [[429, 'TooManyRequests'], [500, 'InternalServerError'], [503, 'ServiceUnavailable']] as const) {
      mock.push({ status, body: JSON.stringify({ reason }) });
      await assert.rejects(client.send(job()), (e) => !(e instanceof PermanentSendError) && !(e instanceof TokenGoneError) && (e as Error).message.includes(reason));
    }
  });

  it('renews the provider token after ExpiredProviderToken, but not within 20 minutes of signing it', async () => {
    now += 60 * 60_000;
    await client.send(job({ expiresAt: now + 60_000 }));
    const signed = mock.requests.at(-1)?.headers.authorization;
    now += 5 * 60_000;
    mock.push({ status: 403, body: '{"reason":"ExpiredProviderToken"}' });
    await assert.rejects(client.send(job({ expiresAt: now + 60_000 })), (e) => !(e instanceof PermanentSendError) && /ExpiredProviderToken/.test((e as Error).message));
    await client.send(job({ expiresAt: now + 60_000 }));
    assert.equal(mock.requests.at(-1)?.headers.authorization, signed, 'APNs refuses tokens renewed more often than every 20 minutes');
    now += 20 * 60_000;
    mock.push({ status: 403, body: '{"reason":"ExpiredProviderToken"}' });
    await assert.rejects(client.send(job({ expiresAt: now + 60_000 })), (e) => !(e instanceof PermanentSendError));
    await client.send(job({ expiresAt: now + 60_000 }));
    assert.notEqual(mock.requests.at(-1)?.headers.authorization, signed);
  });

  it('refuses to send a notification past its expiry', async () => {
    const before = mock.requests.length;
    await assert.rejects(client.send(job({ expiresAt: now - 1 })), PermanentSendError);
    assert.equal(mock.requests.length, before);
  });

  it('sends environment=sandbox pushes to the development gateway', async () => {
    // The sandbox gateway is a closed port here: the attempt must fail there, not reach the production mock.
    const before = mock.requests.length;
    await assert.rejects(client.send(job({ sandbox: true, expiresAt: now + 60_000 })), (e) => !(e instanceof PermanentSendError) && /ECONNREFUSED/.test(String((e as Error).message)));
    assert.equal(mock.requests.length, before);
  });
});

describe('APNs through the push service', () => {
  const dir = tempDir();
  let mock: MockApns;
  let t: TestServer;
  const key = apnsKey(dir);
  let n = 0;

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockApns(tls).listen();
    t = await startServer({
      modules: {
        push_service: {
          ca_file: tls.caFile,
          backoff_base: 0.01,
          backoff_max: 0.02,
          max_attempts: 4,
          apns: { key_file: key.file, key_id: 'KEY1234567', team_id: 'TEAM123456', topic: 'com.example.chat', host: mock.origin },
        },
      },
    });
  });
  after(async () => {
    await t.stop();
    await mock.close();
  });

  async function register(user: string, token: string): Promise<void> {
    await t.register(user, 'pw');
    await t.server.storage.push.enable('localhost', user, { service: 'push.localhost', node: token, options: null });
  }

  async function publishOk(user: string, token: string, options: Record<string, string> = { provider: 'apns' }): Promise<void> {
    const reply = await ask(t, publishIq(`p${++n}`, token, options), `${user}@localhost`);
    assert.equal(reply.attrs.type, 'result', reply.toString());
    assert.equal(reply.attrs.from, 'push.localhost');
    assert.equal(reply.attrs.to, `${user}@localhost`);
  }

  it('answers the publish once queued and delivers it to APNs', async () => {
    await register('deliver', TOKEN_A);
    const before = mock.requests.length;
    await publishOk('deliver', TOKEN_A);
    // No nudge: the module itself wakes its sender when it queues a notification.
    const jobs = await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'delivered'), { nudgeAfterMs: Infinity });
    assert.equal(jobs.length, 1);
    assert.equal(mock.requests.length, before + 1);
    const req = mock.requests.at(-1);
    assert.equal(req?.path, `/3/device/${TOKEN_A}`);
    assert.equal(req?.headers['apns-topic'], 'com.example.chat');
    assert.equal(req?.headers['apns-push-type'], 'alert');
    // privacy defaults to none: neither sender nor body leave the server.
    assert.deepEqual(JSON.parse(req?.body ?? ''), { aps: { alert: { body: 'New message' }, badge: 1, sound: 'default' }, xmpp: { count: 1 } });
  });

  it('reuses one provider token across requests', async () => {
    await register('reuse', TOKEN_B);
    const before = mock.requests.length;
    await publishOk('reuse', TOKEN_B);
    await publishOk('reuse', TOKEN_B);
    await waitForJobs(t, KIND, () => mock.requests.length >= before + 2);
    const auths = mock.requests.slice(before).map((r) => r.headers.authorization);
    assert.equal(auths.length, 2);
    assert.equal(auths[0], auths[1]);
    const first = mock.requests[0]?.headers.authorization;
    assert.equal(auths[0], first);
  });

  it('removes the token for every account when APNs answers 410 Unregistered', async () => {
    const token = 'c'.repeat(64);
    await register('gone1', token);
    await register('gone2', token);
    await t.server.storage.push.enable('localhost', 'gone2', { service: 'push.localhost', node: 'd'.repeat(64), options: null });
    mock.push({ status: 410, body: '{"reason":"Unregistered","timestamp":1700000000000}' });
    await publishOk('gone1', token);
    const jobs = await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'dead'));
    const dead = jobs.find((x) => x.state === 'dead');
    assert.equal(dead?.attempts, 1);
    assert.match(dead?.lastError ?? '', /410 Unregistered; registration removed/);
    assert.deepEqual(await t.server.storage.push.list('localhost', 'gone1'), []);
    assert.deepEqual((await t.server.storage.push.list('localhost', 'gone2')).map((r) => r.node), ['d'.repeat(64)]);
  });

  it('retries after 429 and 500 and then delivers', async () => {
    const token = 'e'.repeat(64);
    await register('retry', token);
    mock.push({ status: 429, body: '{"reason":"TooManyRequests"}' }, { status: 500, body: '{"reason":"InternalServerError"}' });
    const before = mock.requests.length;
    await publishOk('retry', token);
    const jobs = await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'delivered' && x.attempts === 3));
    assert.ok(jobs.some((x) => x.state === 'delivered' && x.attempts === 3));
    const tries = mock.requests.slice(before).filter((r) => r.path === `/3/device/${token}`);
    assert.equal(tries.length, 3);
    assert.equal((await t.server.storage.push.list('localhost', 'retry')).length, 1);
  });
});
