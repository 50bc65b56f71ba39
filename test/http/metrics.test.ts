// Prometheus metrics at /metrics and the health check at /health, read after real client traffic: sessions,
// stanza counters, authentication failures, offline storage, routing latency, webhook outcomes, process figures;
// who may scrape (networks, bearer token); and /health when the storage fails.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Fixture } from '../helpers/fixture.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { request } from '../helpers/http.ts';

type Scrape = { text: string; value(name: string, labels?: Record<string, string>): number | undefined };

/** One sample line: name, optional labels, value (text format 0.0.4). */
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$/;

function parse(text: string): Scrape {
  const samples: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    assert.ok(m, `a well-formed sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return {
    text,
    value: (name, want = {}) => samples.find((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v))?.value,
  };
}

async function scrape(port: number, headers: Record<string, string> = {}): Promise<Scrape> {
  const r = await request({ port, path: '/metrics', headers });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parse(r.body);
}

/** A webhook receiver answering 500 to its first request, then 200. */
async function receiver(): Promise<{ server: Server; url: string; count: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      n++;
      res.writeHead(n === 1 ? 500 : 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, count: () => n };
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('/metrics after client traffic', () => {
  let f: Fixture;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let port: number;

  before(async () => {
    hook = await receiver();
    f = await Fixture.start({
      http: { metrics: { allow: ['127.0.0.1/32'] } },
      modules: { offline_webhook: { url: hook.url, backoff_base: 0.01, backoff_max: 0.05, concurrency: 1 } },
    });
    port = f.t.httpPort;
  });
  after(async () => {
    await f.stop();
    hook.server.closeAllConnections();
    await new Promise<void>((resolve) => hook.server.close(() => resolve()));
  });

  it('counts sessions, stanzas, routing latency, failed logins, offline messages and webhook outcomes', async () => {
    const [alice, bob, carol] = await f.users('alice', 'bob', 'carol') as [string, string, string];
    const before = await scrape(port);
    const a = await f.raw(alice);
    const b = await f.raw(bob);

    const during = await scrape(port);
    assert.ok((during.value('parley_sessions', { transport: 'tcp' }) ?? 0) >= 2, 'two tcp sessions');
    assert.equal(during.value('parley_sessions', { transport: 'websocket' }), 0);

    const sentBefore = before.value('parley_stanzas_sent_total', { kind: 'message' }) ?? 0;
    const receivedBefore = before.value('parley_stanzas_received_total', { kind: 'message' }) ?? 0;
    const routedBefore = before.value('parley_routing_latency_seconds_count', { kind: 'message' }) ?? 0;
    for (let i = 0; i < 3; i++) a.send(`<message to='${bob}@localhost/r' type='chat' id='m${i}'><body>hi ${i}</body></message>`);
    for (let i = 0; i < 3; i++) await b.expect(new RegExp(`id="m${i}"`));
    // To an account with no session: stored offline, then posted to the webhook.
    a.send(`<message to='${carol}@localhost' type='chat' id='off'><body>later</body></message>`);
    a.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await a.expect(/id="p1"/);

    const bad = await RawClient.connect(f.t.port);
    await bad.openStream();
    await bad.starttls();
    await bad.openStream();
    bad.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${alice}\0wrong`).toString('base64')}</auth>`);
    await bad.expect(/<not-authorized\/>/);
    bad.destroy();

    const after = await scrape(port);
    assert.ok((after.value('parley_stanzas_received_total', { kind: 'message' }) ?? 0) >= receivedBefore + 4);
    assert.ok((after.value('parley_stanzas_sent_total', { kind: 'message' }) ?? 0) >= sentBefore + 3);
    assert.ok((after.value('parley_stanzas_received_total', { kind: 'iq' }) ?? 0) >= 1);
    assert.ok((after.value('parley_auth_failures_total', { reason: 'not-authorized' }) ?? 0) >= 1);
    assert.ok((after.value('parley_offline_messages', { host: 'localhost' }) ?? 0) >= 1);
    assert.ok((after.value('parley_accounts', { host: 'localhost' }) ?? 0) >= 3);

    const routed = after.value('parley_routing_latency_seconds_count', { kind: 'message' }) ?? 0;
    assert.ok(routed >= routedBefore + 4, `routed messages counted (${routed})`);
    assert.equal(after.value('parley_routing_latency_seconds_bucket', { kind: 'message', le: '+Inf' }), routed);
    assert.ok((after.value('parley_routing_latency_seconds_sum', { kind: 'message' }) ?? -1) >= 0);
    assert.match(after.text, /^# TYPE parley_routing_latency_seconds histogram$/m);

    // The first post fails (500), the retry succeeds.
    const outcome = (s: Scrape, o: string): number | undefined => s.value('parley_outbox_attempts_total', { module: 'offline_webhook', host: 'localhost', outcome: o });
    const settled = await eventually('the webhook retry', async () => {
      const s = await scrape(port);
      return (outcome(s, 'sent') ?? 0) >= 1 ? s : undefined;
    });
    assert.equal(outcome(settled, 'failed'), 1);
    assert.equal(outcome(settled, 'sent'), 1);
    assert.equal(hook.count(), 2);
  });

  it('reports event-loop delay, process figures and uptime', async () => {
    const s = await scrape(port);
    for (const name of ['nodejs_eventloop_lag_mean_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds']) {
      const v = s.value(name);
      assert.ok(v !== undefined && v >= 0, `${name} present`);
    }
    assert.ok((s.value('process_resident_memory_bytes') ?? 0) > 0);
    assert.ok((s.value('nodejs_heap_size_used_bytes') ?? 0) > 0);
    assert.ok((s.value('process_cpu_seconds_total') ?? 0) > 0);
    assert.ok((s.value('parley_uptime_seconds') ?? -1) >= 0);
  });

  it('gives every family one HELP and one TYPE line before its samples', async () => {
    const { text } = await scrape(port);
    const types = [...text.matchAll(/^# TYPE (\S+) (counter|gauge|histogram)$/gm)].map((m) => m[1]);
    const helps = [...text.matchAll(/^# HELP (\S+) .+$/gm)].map((m) => m[1]);
    assert.deepEqual(helps, types);
    assert.equal(new Set(types).size, types.length);
    assert.ok(text.endsWith('\n'));
  });

  it('refuses a scrape from outside http.metrics.allow with 403; /health stays open', async () => {
    const r = await request({ port, path: '/metrics', localAddress: '127.0.0.2' });
    assert.equal(r.status, 403);
    assert.ok(!r.body.includes('parley_'));
    const h = await request({ port, path: '/health', localAddress: '127.0.0.2' });
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
  });
});

describe('/metrics with a bearer token', () => {
  const token = 'a-scrape-token-for-tests-0123456789';
  let t: TestServer;
  before(async () => {
    t = await startServer({ http: { metrics: { token, allow: ['127.0.0.1', '::1'] } } });
  });
  after(() => t.stop());

  it('answers 401 without the token or with another one, 200 with it', async () => {
    const none = await request({ port: t.httpPort, path: '/metrics' });
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="metrics"');
    assert.equal((await request({ port: t.httpPort, path: '/metrics', headers: { authorization: `Bearer ${token}x` } })).status, 401);
    assert.equal((await request({ port: t.httpPort, path: '/metrics', headers: { authorization: `Basic ${token}` } })).status, 401);
    const s = await scrape(t.httpPort, { authorization: `Bearer ${token}` });
    assert.equal(s.value('parley_sessions', { transport: 'tcp' }), 0);
  });

  it('still refuses other networks when the token is right', async () => {
    const r = await request({ port: t.httpPort, path: '/metrics', localAddress: '127.0.0.2', headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 403);
  });
});

describe('metrics disabled, and /health when the storage fails', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ http: { metrics: { enabled: false } } });
  });
  after(() => t.stop());

  it('has no /metrics but keeps /health', async () => {
    assert.equal((await request({ port: t.httpPort, path: '/metrics' })).status, 404);
    const h = await request({ port: t.httpPort, path: '/health' });
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });
    const head = await request({ port: t.httpPort, path: '/health', method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('answers 503 naming the storage once it stops answering', async () => {
    t.server.storage.close();
    const h = await request({ port: t.httpPort, path: '/health' });
    assert.equal(h.status, 503);
    assert.deepEqual(JSON.parse(h.body), { status: 'unavailable', failing: ['storage'] });
  });
});
