// The offline webhook (after ejabberd's mod_offline_post): exact request formats and signature, retries through
// the durable outbox, dead-lettering, restart, and the `parley outbox` command, against a local HTTP receiver.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac } from 'node:crypto';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { ParleyServer } from '../../src/server.ts';
import { builtinModules } from '../../src/modules/index.ts';
import type { OutboxJob } from '../../src/storage/types.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';

const BIN = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
const KIND = 'offline_webhook:localhost';
/** Retries within milliseconds, so tests never wait on real back-off. */
const FAST = { backoff_base: 0.01, backoff_max: 0.05, concurrency: 1 };

type Received = { method: string; url: string; headers: IncomingHttpHeaders; body: string; res: ServerResponse };

/** A webhook receiver on 127.0.0.1: records each request and answers with the next planned status (200 after the plan). */
class Receiver {
  readonly requests: Received[] = [];
  plan: Array<number | 'hang'> = [];
  private server: Server | undefined;
  private waiters: Array<() => void> = [];
  url = '';

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), res };
        this.requests.push(r);
        const next = this.plan.shift() ?? 200;
        if (next !== 'hang') res.writeHead(next).end(next === 200 ? 'ok' : 'no');
        for (const w of this.waiters.splice(0)) w();
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    return this;
  }

  async waitFor(n: number): Promise<Received[]> {
    const deadline = Date.now() + 10_000;
    while (this.requests.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} request(s), got ${this.requests.length}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.requests;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Polls the outbox until a condition holds (bounded; fails rather than hangs). */
async function until(server: ParleyServer, what: string, test: (jobs: OutboxJob[]) => boolean): Promise<OutboxJob[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const jobs = await server.storage.outbox.list({ kind: KIND, limit: 100 });
    if (test(jobs)) return jobs;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(jobs)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ping = async (c: RawClient, id: string): Promise<void> => {
  c.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await c.expect(new RegExp(`<iq type="result" id="${id}"`));
};

async function loggedIn(port: number, user: string): Promise<RawClient> {
  const c = await RawClient.connect(port);
  await c.login(user, 'pw', 'r');
  return c;
}

function expectedSignature(secret: string, r: Received): string {
  const signed = `${String(r.headers['x-parley-timestamp'])}.${String(r.headers['x-parley-delivery'])}.${r.body}`;
  return 'sha256=' + createHmac('sha256', secret).update(signed).digest('hex');
}

describe('offline webhook: json format, signed', () => {
  const secret = 'a-shared-secret-of-32-characters';
  let rx: Receiver;
  let t: TestServer;
  let a: RawClient;
  before(async () => {
    rx = await new Receiver().start();
    t = await startServer({ modules: { offline_webhook: { url: rx.url, secret, ...FAST } } });
    await t.register('alice', 'pw');
    await t.register('bob', 'pw');
    a = await loggedIn(t.port, 'alice');
  });
  after(async () => {
    a.destroy();
    await t.stop();
    await rx.stop();
  });

  it('posts each stored message as JSON with the offline count, signed over timestamp, delivery id and body', async () => {
    a.send(`<message to='bob@localhost' type='chat' id='m1'><body>Hi &amp; &lt;bye&gt; é</body></message>`);
    a.send(`<message to='bob@localhost' id='m2'><body>second</body><thread>t1</thread></message>`);
    await ping(a, 'p1');
    const [r1, r2] = await rx.waitFor(2);
    assert.ok(r1 && r2);
    assert.equal(r1.method, 'POST');
    assert.equal(r1.url, '/hook');
    assert.equal(r1.headers['content-type'], 'application/json');
    assert.equal(r1.headers['x-parley-event'], 'offline-message');
    assert.match(String(r1.headers['x-parley-delivery']), /^\d+$/);
    assert.match(String(r1.headers['x-parley-timestamp']), /^\d{10}$/);
    const time = (JSON.parse(r1.body) as { time: string }).time;
    assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(r1.body,
      `{"from":"alice@localhost/r","to":"bob@localhost","body":"Hi & <bye> é","id":"m1","type":"chat","time":"${time}","offline_count":1}`);
    const second = JSON.parse(r2.body) as Record<string, unknown>;
    assert.deepEqual({ ...second, time: undefined }, {
      from: 'alice@localhost/r', to: 'bob@localhost', body: 'second', id: 'm2', type: 'normal', time: undefined, offline_count: 2,
    });
    for (const r of [r1, r2]) {
      assert.equal(r.headers['x-parley-signature'], expectedSignature(secret, r));
      // The same request under another secret, or with the body changed, does not verify.
      assert.notEqual(r.headers['x-parley-signature'], expectedSignature('another-secret-of-enough-length', r));
      assert.notEqual(r.headers['x-parley-signature'], expectedSignature(secret, { ...r, body: r.body.replace('"body":"', '"body":"forged ') }));
    }
    assert.notEqual(r1.headers['x-parley-delivery'], r2.headers['x-parley-delivery']);
    await until(t.server, 'both delivered', (jobs) => jobs.length === 2 && jobs.every((j) => j.state === 'delivered' && j.attempts === 1));
  });

  it('posts nothing for a stored message without a body', async () => {
    const before = rx.requests.length;
    const queued = (await t.server.storage.outbox.counts(KIND)).delivered;
    a.send(`<message to='bob@localhost' type='chat' id='r1'><received xmlns='urn:xmpp:receipts' id='m0'/></message>`);
    a.send(`<message to='bob@localhost' type='chat' id='e1'><body/></message>`);
    a.send(`<message to='bob@localhost' type='chat' id='m3'><body>after the receipt</body></message>`);
    await ping(a, 'p2');
    const reqs = await rx.waitFor(before + 1);
    await until(t.server, 'the third delivered', (jobs) => jobs.filter((j) => j.state === 'delivered').length === queued + 1);
    // Jobs go out in order with concurrency 1: the only new request is the message with a body.
    assert.equal(reqs.length, before + 1);
    const last = JSON.parse(reqs[before]?.body ?? '{}') as Record<string, unknown>;
    assert.equal(last.id, 'm3');
    // All three were stored for bob: the count says so.
    assert.equal(last.offline_count, 5);
    assert.deepEqual(await t.server.storage.outbox.counts(KIND), { pending: 0, delivered: queued + 1, dead: 0 });
  });
});

describe('offline webhook: form format, as mod_offline_post', () => {
  let rx: Receiver;
  let t: TestServer;
  before(async () => {
    rx = await new Receiver().start();
    t = await startServer({
      modules: {
        offline_webhook: { url: rx.url, format: 'form', access_token: 'tok', headers: { Authorization: 'Bearer app-key' }, ...FAST },
      },
    });
    await t.register('alice', 'pw');
    await t.register('bob', 'pw');
  });
  after(async () => {
    await t.stop();
    await rx.stop();
  });

  it('sends to and from as localparts, the body, and the access token, url-encoded; no signature without a secret', async () => {
    const a = await loggedIn(t.port, 'alice');
    a.send(`<message to='Bob@localhost/gone' type='chat' id='f1'><body>Hi &amp; bye + 100% é</body></message>`);
    await ping(a, 'p1');
    a.destroy();
    const [r] = await rx.waitFor(1);
    assert.ok(r);
    assert.equal(r.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(r.body, 'to=bob&from=alice&body=Hi+%26+bye+%2B+100%25+%C3%A9&access_token=tok');
    assert.deepEqual(Object.fromEntries(new URLSearchParams(r.body)), { to: 'bob', from: 'alice', body: 'Hi & bye + 100% é', access_token: 'tok' });
    assert.equal(r.headers.authorization, 'Bearer app-key');
    assert.equal(r.headers['x-parley-signature'], undefined);
    assert.match(String(r.headers['x-parley-timestamp']), /^\d+$/);
  });
});

describe('offline webhook: retries and dead letters', () => {
  it('delivers after two 500 answers, with the same delivery id each time', async () => {
    const rx = await new Receiver().start();
    rx.plan = [500, 500];
    const t = await startServer({ modules: { offline_webhook: { url: rx.url, ...FAST } } });
    try {
      await t.register('alice', 'pw');
      await t.register('bob', 'pw');
      const a = await loggedIn(t.port, 'alice');
      a.send(`<message to='bob@localhost' type='chat' id='x1'><body>retry me</body></message>`);
      await ping(a, 'p1');
      a.destroy();
      const jobs = await until(t.server, 'delivery', (j) => j[0]?.state === 'delivered');
      assert.equal(jobs[0]?.attempts, 3);
      assert.equal(rx.requests.length, 3);
      const ids = new Set(rx.requests.map((r) => r.headers['x-parley-delivery']));
      assert.equal(ids.size, 1);
      assert.ok(rx.requests.every((r) => r.body === rx.requests[0]?.body));
    } finally {
      await t.stop();
      await rx.stop();
    }
  });

  it('dead-letters after max_attempts when the app is down, and the message still waits for the login', async () => {
    // A port that was free a moment ago: connections are refused.
    const gone = await new Receiver().start();
    await gone.stop();
    const t = await startServer({ modules: { offline_webhook: { url: gone.url, max_attempts: 3, ...FAST } } });
    try {
      await t.register('alice', 'pw');
      await t.register('bob', 'pw');
      const a = await loggedIn(t.port, 'alice');
      a.send(`<message to='bob@localhost' type='chat' id='d1'><body>are you there</body></message>`);
      await ping(a, 'p1');
      a.destroy();
      const [job] = await until(t.server, 'dead letter', (j) => j[0]?.state === 'dead');
      assert.equal(job?.attempts, 3);
      assert.match(job?.lastError ?? '', /ECONNREFUSED/);
      const b = await loggedIn(t.port, 'bob');
      b.send('<presence/>');
      const m = await b.expect(/<message[^>]*id="d1"[\s\S]*?<\/message>/);
      assert.match(m[0], /<body>are you there<\/body>/);
      b.destroy();
    } finally {
      await t.stop();
    }
  });
});

describe('offline webhook: durable across a restart', () => {
  it('does not hold up routing, and sends a job cut short by shutdown after the restart', async () => {
    const rx = await new Receiver().start();
    rx.plan = ['hang'];
    const first = await startServer({ modules: { offline_webhook: { url: rx.url, ...FAST } } });
    const config = first.server.config;
    let second: ParleyServer | undefined;
    try {
      await first.register('alice', 'pw');
      await first.register('bob', 'pw');
      const a = await loggedIn(first.port, 'alice');
      a.send(`<message to='bob@localhost' type='chat' id='k1'><body>keep me</body></message>`);
      // The app has not answered, yet the sender's stream goes on.
      await rx.waitFor(1);
      await ping(a, 'p1');
      assert.deepEqual(await first.server.storage.outbox.counts(KIND), { pending: 1, delivered: 0, dead: 0 });
      a.destroy();
      await first.server.stop(); // keeps the data directory
      second = new ParleyServer(config, { modules: builtinModules, logger: pino({ level: 'silent' }), adminChannel: false });
      await second.start();
      await until(second, 'delivery after restart', (j) => j[0]?.state === 'delivered');
      assert.equal(rx.requests.length, 2);
      assert.equal(rx.requests[1]?.body, rx.requests[0]?.body);
      assert.equal(rx.requests[1]?.headers['x-parley-delivery'], rx.requests[0]?.headers['x-parley-delivery']);
    } finally {
      await second?.stop();
      await first.stop().catch(() => undefined);
      await rx.stop();
    }
  });
});

describe('offline webhook: configuration', () => {
  it('is off unless configured', async () => {
    const t = await startServer();
    try {
      const host = t.server.hosts.get('localhost');
      assert.ok(host);
      assert.ok(!t.server.modules.loadedOn(host).includes('offline_webhook'));
    } finally {
      await t.stop();
    }
  });

  it('refuses a bad url, a short secret and reserved headers, naming each key', async () => {
    await assert.rejects(
      startServer({ modules: { offline_webhook: { url: 'ftp://example.com/x', secret: 'short', headers: { 'X-Parley-Signature': 'x' } } } }),
      (err: Error) => {
        assert.match(err.message, /modules\.offline_webhook\.url/);
        assert.match(err.message, /modules\.offline_webhook\.secret/);
        assert.match(err.message, /modules\.offline_webhook\.headers/);
        return true;
      },
    );
    await assert.rejects(startServer({ modules: { offline_webhook: {} } }), /modules\.offline_webhook\.url/);
  });
});

describe('parley outbox', () => {
  let rx: Receiver;
  let t: TestServer;
  let config: string;
  // Asynchronous: the server runs in this process and must keep answering on its admin socket meanwhile.
  const run = (...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'outbox', ...args, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });

  before(async () => {
    rx = await new Receiver().start();
    rx.plan = [500, 500, 500, 500];
    const mod = { url: rx.url, max_attempts: 2, ...FAST };
    t = await startServer({ modules: { offline_webhook: mod } }, { adminChannel: true });
    config = join(t.dataDir, 'cli.yml');
    writeFileSync(config, JSON.stringify({ hosts: ['localhost'], data_dir: t.dataDir, modules: { offline_webhook: mod } }));
    await t.register('alice', 'pw');
    await t.register('bob', 'pw');
    const a = await loggedIn(t.port, 'alice');
    a.send(`<message to='bob@localhost' type='chat' id='c1'><body>secret body one</body></message>`);
    a.send(`<message to='bob@localhost' type='chat' id='c2'><body>secret body two</body></message>`);
    await ping(a, 'p1');
    a.destroy();
    await until(t.server, 'two dead letters', (j) => j.length === 2 && j.every((x) => x.state === 'dead'));
  });
  after(async () => {
    await t.server.stop().catch(() => undefined);
    rmSync(t.dataDir, { recursive: true, force: true });
    await rx.stop();
  });

  it('shows counts per kind and state, lists jobs without their payloads, and retries dead jobs through the running server', async () => {
    let r = await run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `KIND\tPENDING\tDELIVERED\tDEAD\n${KIND}\t0\t0\t2\ntotal\t0\t0\t2\n`);

    r = await run('list', 'offline_webhook', 'dead');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'ID\tKIND\tSTATE\tATTEMPTS\tCREATED\tNEXT ATTEMPT\tLAST ERROR');
    assert.equal(lines.length, 3);
    for (const line of lines.slice(1)) assert.match(line, new RegExp(`^\\d+\\t${KIND}\\tdead\\t2\\t\\d{4}-[^\\t]+Z\\t-\\tHTTP 500$`));
    assert.doesNotMatch(r.stdout, /secret body/);
    assert.equal((await run('list', 'delivered')).stdout.trim().split('\n').length, 1);

    r = await run('retry', 'offline_webhook');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'requeued 2 dead job(s)\n');
    // The running server was woken: both go out now that the receiver answers 200.
    await until(t.server, 'delivery after retry', (j) => j.length === 2 && j.every((x) => x.state === 'delivered'));
    assert.equal((await run()).stdout, `KIND\tPENDING\tDELIVERED\tDEAD\n${KIND}\t0\t2\t0\ntotal\t0\t2\t0\n`);
  });

  it('works on the database when the server is not running, and rejects bad arguments', async () => {
    await t.server.stop();
    let r = await run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `KIND\tPENDING\tDELIVERED\tDEAD\n${KIND}\t0\t2\t0\ntotal\t0\t2\t0\n`);
    r = await run('list', KIND, 'delivered');
    assert.equal(r.stdout.trim().split('\n').length, 3);
    assert.match(r.stdout, new RegExp(`\\t${KIND}\\tdelivered\\t1\\t`));
    assert.equal((await run('retry')).stdout, 'requeued 0 dead job(s)\n');
    // A dead job written while the server is down is requeued in the database itself.
    const db = new SqliteStorage(join(t.dataDir, 'parley.db'));
    try {
      const id = await db.outbox.add('localhost', KIND, '{}');
      await db.outbox.markFailed(id, 'HTTP 410', Date.now(), true);
    } finally {
      db.close();
    }
    assert.equal((await run('retry', KIND)).stdout, 'requeued 1 dead job(s)\n');
    assert.equal((await run()).stdout, `KIND\tPENDING\tDELIVERED\tDEAD\n${KIND}\t1\t2\t0\ntotal\t1\t2\t0\n`);
    assert.equal((await run('list', KIND, 'sleeping')).status, 64);
    assert.equal((await run('frob')).status, 64);
    assert.equal((await run('retry', 'a', 'b')).status, 64);
  });
});
