// The push service's FCM provider against local stand-ins for FCM HTTP v1 and Google's OAuth token URL.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { PermanentSendError } from '../../../src/outbox/sender.ts';
import { FcmClient, parseServiceAccount } from '../../../src/modules/push-service/fcm.ts';
import { TokenGoneError, type PushJob } from '../../../src/modules/push-service/types.ts';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MockHttps, ask, generateRsa, mockCertificate, publishIq, serviceAccount, tempDir, waitForJobs } from './mocks.ts';

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const KIND = 'push_service:localhost:fcm';
const unregistered = JSON.stringify({
  error: {
    code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND',
    details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'UNREGISTERED' }],
  },
});

const job = (over: Partial<PushJob> = {}): PushJob => ({
  service: 'push.localhost', provider: 'fcm', token: 'fcm-token-1', count: 2, pushType: 'alert', priority: 'high',
  expiresAt: Date.now() + 3_600_000, ...over,
});

describe('FCM client', () => {
  const dir = tempDir();
  let mock: MockHttps;
  let sa: ReturnType<typeof serviceAccount>;
  let client: FcmClient;
  let now = Date.now();

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockHttps(tls).listen();
    sa = serviceAccount(dir, `${mock.origin}/token`);
    client = new FcmClient({
      account: parseServiceAccount(readFileSync(sa.file, 'utf8'), sa.file), endpoint: mock.origin, tokenUrl: `${mock.origin}/token`,
      ca: tls.cert, timeoutMs: 5000, text: 'New message', now: () => now,
    });
  });
  after(async () => {
    client.close();
    await mock.close();
  });

  it('exchanges an RS256 assertion signed with the service account key for an access token, then sends', async () => {
    const expiresAt = now + 7200_000;
    await client.send(job({ sender: 'romeo@localhost', body: 'Hello', collapseId: 'c1', expiresAt }));
    assert.equal(mock.tokenRequests.length, 1);
    const form = new URLSearchParams(mock.tokenRequests[0]?.body);
    assert.equal(mock.tokenRequests[0]?.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    const assertion = form.get('assertion') ?? '';
    const { payload } = await jwtVerify(assertion, sa.publicKey, {
      algorithms: ['RS256'], issuer: sa.email, audience: `${mock.origin}/token`, currentDate: new Date(now),
    });
    assert.equal(payload.scope, SCOPE);
    assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);
    assert.equal(decodeProtectedHeader(assertion).kid, 'key-1');

    const req = mock.requests.at(-1);
    assert.equal(req?.method, 'POST');
    assert.equal(req?.path, `/v1/projects/${sa.project}/messages:send`);
    assert.equal(req?.headers.authorization, 'Bearer access-1');
    const body = JSON.parse(req?.body ?? '') as { message: Record<string, unknown> };
    assert.deepEqual(body.message, {
      token: 'fcm-token-1',
      data: { count: '2', sender: 'romeo@localhost', body: 'Hello' },
      android: { priority: 'HIGH', ttl: '7200s', collapse_key: 'c1', notification: { notification_count: 2 } },
      notification: { title: 'romeo@localhost', body: 'Hello' },
      apns: { headers: { 'apns-priority': '10', 'apns-push-type': 'alert' }, payload: { aps: { badge: 2, sound: 'default' } } },
    });
  });

  it('rejects an assertion checked against another key', async () => {
    const assertion = new URLSearchParams(mock.tokenRequests[0]?.body).get('assertion') ?? '';
    await assert.rejects(jwtVerify(assertion, generateRsa().publicKey, { algorithms: ['RS256'], currentDate: new Date(now) }));
  });

  it('caches the access token until shortly before it expires', async () => {
    await client.send(job());
    await client.send(job({ pushType: 'background', priority: 'normal' }));
    assert.equal(mock.tokenRequests.length, 1);
    const bg = JSON.parse(mock.requests.at(-1)?.body ?? '') as { message: Record<string, unknown> };
    assert.equal(bg.message.notification, undefined, 'background pushes are data-only');
    assert.deepEqual(bg.message.data, { count: '2' });
    now += 50 * 60_000;
    await client.send(job({ expiresAt: now + 60_000 }));
    assert.equal(mock.tokenRequests.length, 1);
    now += 6 * 60_000;
    await client.send(job({ expiresAt: now + 60_000 }));
    assert.equal(mock.tokenRequests.length, 2);
    assert.equal(mock.requests.at(-1)?.headers.authorization, 'Bearer access-2');
  });

  it('treats UNREGISTERED and NOT_FOUND as dead tokens, 429/5xx as retryable, other errors as permanent', async () => {
    mock.push({ status: 404, body: unregistered });
    await assert.rejects(client.send(job()), (e) => e instanceof TokenGoneError && /UNREGISTERED/.test(e.message));
    mock.push({ status: 404, body: JSON.stringify({ error: { code: 404, status: 'NOT_FOUND', message: 'not found' } }) });
    await assert.rejects(client.send(job()), TokenGoneError);
    mock.push({ status: 429, body: JSON.stringify({ error: { code: 429, status: 'RESOURCE_EXHAUSTED', details: [{ errorCode: 'QUOTA_EXCEEDED' }] } }) });
    await assert.rejects(client.send(job()), (e) => !(e instanceof PermanentSendError) && !(e instanceof TokenGoneError) && /QUOTA_EXCEEDED/.test((e as Error).message));
    mock.push({ status: 503, body: JSON.stringify({ error: { code: 503, status: 'UNAVAILABLE' } }) });
    await assert.rejects(client.send(job()), (e) => !(e instanceof PermanentSendError) && !(e instanceof TokenGoneError));
    mock.push({ status: 400, body: JSON.stringify({ error: { code: 400, status: 'INVALID_ARGUMENT', details: [{ errorCode: 'INVALID_ARGUMENT' }] } }) });
    await assert.rejects(client.send(job()), PermanentSendError);
  });

  it('drops the access token when FCM answers 401, and fetches a new one for the retry', async () => {
    const exchanges = mock.tokenRequests.length;
    mock.push({ status: 401, body: JSON.stringify({ error: { code: 401, status: 'UNAUTHENTICATED' } }) });
    await assert.rejects(client.send(job()), (e) => !(e instanceof PermanentSendError));
    await client.send(job());
    assert.equal(mock.tokenRequests.length, exchanges + 1);
    assert.equal(mock.requests.at(-1)?.headers.authorization, `Bearer access-${mock.issued}`);
  });

  it('reports a failed token exchange as retryable', async () => {
    const fresh = new FcmClient({
      account: parseServiceAccount(readFileSync(sa.file, 'utf8'), sa.file), endpoint: mock.origin, tokenUrl: `${mock.origin}/token`,
      ca: readFileSync(`${dir}/mock-ca.pem`, 'utf8'), timeoutMs: 5000, text: 'New message',
    });
    const sends = mock.requests.length;
    mock.tokenReplies.push({ status: 400, body: JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }) });
    await assert.rejects(fresh.send(job()), (e) => !(e instanceof PermanentSendError) && /invalid_grant: Invalid JWT Signature/.test((e as Error).message));
    assert.equal(mock.requests.length, sends);
    fresh.close();
  });
});

describe('FCM through the push service', () => {
  const dir = tempDir();
  let mock: MockHttps;
  let t: TestServer;
  let n = 0;

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockHttps(tls).listen();
    // token_url is left out: the key file's token_uri (the mock) is used.
    const sa = serviceAccount(dir, `${mock.origin}/token`);
    t = await startServer({
      modules: {
        push_service: {
          ca_file: tls.caFile, backoff_base: 0.01, backoff_max: 0.02, max_attempts: 4, privacy: 'sender',
          fcm: { service_account_file: sa.file, endpoint: mock.origin },
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
  async function publishOk(user: string, token: string, summary = { count: 4, sender: 'romeo@localhost/balcony', body: 'secret' }): Promise<void> {
    // One provider configured: publish-options may leave it out.
    const reply = await ask(t, publishIq(`f${++n}`, token, {}, summary), `${user}@localhost`);
    assert.equal(reply.attrs.type, 'result', reply.toString());
  }

  it('delivers a publish through FCM, showing the sender (bare JID) but not the body', async () => {
    await register('fa', 'tok-a');
    await publishOk('fa', 'tok-a');
    await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'delivered'));
    assert.equal(mock.tokenRequests.length, 1);
    const msg = (JSON.parse(mock.requests.at(-1)?.body ?? '') as { message: { token: string; data: unknown; notification: unknown } }).message;
    assert.equal(msg.token, 'tok-a');
    assert.deepEqual(msg.data, { count: '4', sender: 'romeo@localhost' });
    assert.deepEqual(msg.notification, { title: 'romeo@localhost', body: 'New message' });
  });

  it('removes the registration when FCM answers UNREGISTERED', async () => {
    await register('fb', 'tok-b');
    mock.push({ status: 404, body: unregistered });
    await publishOk('fb', 'tok-b');
    const jobs = await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'dead'));
    assert.match(jobs.find((x) => x.state === 'dead')?.lastError ?? '', /UNREGISTERED.*registration removed/);
    assert.deepEqual(await t.server.storage.push.list('localhost', 'fb'), []);
  });

  it('retries after 429 and 500, then delivers', async () => {
    await register('fc', 'tok-c');
    mock.push({ status: 429, body: '{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}' }, { status: 500, body: '{"error":{"code":500,"status":"INTERNAL"}}' });
    const before = mock.requests.length;
    await publishOk('fc', 'tok-c');
    await waitForJobs(t, KIND, (j) => j.some((x) => x.state === 'delivered' && x.attempts === 3));
    assert.equal(mock.requests.slice(before).length, 3);
    assert.equal((await t.server.storage.push.list('localhost', 'fc')).length, 1);
  });
});
