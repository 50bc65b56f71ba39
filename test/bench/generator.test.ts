// Smoke test of the load generator (bench/run.ts): each scenario, small and short, against a real Parley.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type TestServer } from '../helpers/server.ts';
import { Splitter, attr, childText } from '../../bench/lib/splitter.ts';
import { Histogram } from '../../bench/lib/stats.ts';

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

let t: TestServer;

before(async () => {
  t = await startServer();
  for (let i = 1; i <= 4; i++) await t.register(`user${i}`, 'pw');
});

after(async () => {
  await t?.stop();
});

type Outcome = { code: number | null; json: Record<string, unknown>; stdout: string; stderr: string };

/** Runs the generator (later options win over these defaults); the server lives in this process, so the child is awaited, never waited on synchronously. */
function exec(args: string[], server: TestServer = t): Promise<Omit<Outcome, 'json'>> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RUN, '--port', String(server.port), '--users', '4', '--server', 'parley', '--json-only', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** Runs the generator and parses the one JSON line it must print on stdout. */
async function bench(args: string[], server: TestServer = t): Promise<Outcome> {
  const r = await exec(args, server);
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `expected one JSON line on stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return { ...r, json: JSON.parse(lines[0] as string) as Record<string, unknown> };
}

const num = (v: unknown): number => {
  assert.equal(typeof v, 'number', `expected a number, got ${JSON.stringify(v)}`);
  return v as number;
};

async function noSessionsLeft(): Promise<void> {
  for (let i = 0; i < 100 && t.server.sessions.count > 0; i++) await sleep(20);
  assert.equal(t.server.sessions.count, 0, 'the generator closed every session it opened');
}

test('the splitter yields top-level elements whatever the chunking', () => {
  const stream = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='a>b'>`
    + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features> `
    + `<message to="u@h" id='x>1'><body>a &lt; b</body><x><y/></x></message><presence/>`
    + `<iq type='result' id='r1'/></stream:stream>`;
  for (const size of [1, 2, 7, stream.length]) {
    const got: string[] = [];
    let header = '';
    let ended = false;
    const sp = new Splitter({ header: (h) => (header = h), element: (e) => got.push(e), end: () => (ended = true) });
    for (let i = 0; i < stream.length; i += size) sp.write(stream.slice(i, i + size));
    assert.equal(header, `<stream:stream xmlns='jabber:client' id='a>b'>`, `chunks of ${size}`);
    assert.deepEqual(got, [
      `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`,
      `<message to="u@h" id='x>1'><body>a &lt; b</body><x><y/></x></message>`,
      '<presence/>',
      `<iq type='result' id='r1'/>`,
    ], `chunks of ${size}`);
    assert.ok(ended);
  }
  assert.equal(attr(`<message to="u@h" id='x>1'><body id='no'/></message>`, 'id'), 'x>1');
  assert.equal(attr(`<iq xid='1' id='2'/>`, 'id'), '2');
  assert.equal(attr(`<iq type='get'><ping id='3'/></iq>`, 'id'), undefined);
  assert.equal(childText(`<iq><bind><jid>a@b/c</jid></bind></iq>`, 'jid'), 'a@b/c');
});

test('latency histograms keep percentiles within 1% and merge', () => {
  const a = new Histogram();
  const b = new Histogram();
  for (let us = 1; us <= 10_000; us++) (us % 2 ? a : b).record(us);
  a.merge(b.toJSON());
  assert.equal(a.count, 10_000);
  assert.equal(a.max, 10_000);
  for (const [p, exact] of [[50, 5000], [99, 9900]] as const) {
    assert.ok(Math.abs(a.quantile(p / 100) - exact) / exact < 0.01, `p${p}: ${a.quantile(p / 100)}`);
  }
  assert.equal(Histogram.from(a.toJSON()).percentileMs(99), a.percentileMs(99));
});

test('login: back-to-back full logins over STARTTLS with SCRAM-SHA-1', async () => {
  // A count rather than a duration, so a slow machine cannot make the run come back empty.
  const r = await bench(['login', '--concurrency', '2', '--logins', '8', '--cap', '20']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.scenario, 'login');
  assert.equal(r.json.server, 'parley');
  assert.equal(r.json.tls, 'starttls');
  assert.equal(r.json.mech, 'SCRAM-SHA-1');
  assert.equal(r.json.logins, 8);
  assert.equal(r.json.failures, 0);
  assert.ok(num(r.json.loginsPerSec) > 0);
  assert.ok(num(r.json.p99Ms) >= num(r.json.p50Ms) && num(r.json.p50Ms) > 0);
  const generator = r.json.generator as Record<string, unknown>;
  assert.equal(generator.workers, 1);
  assert.ok(num(generator.cpuSeconds) > 0);
  assert.equal(r.json.error, undefined);
  await noSessionsLeft();
});

test('login with PLAIN over direct TLS, two generator processes', async () => {
  const r = await bench(['login', '--concurrency', '2', '--logins', '6', '--cap', '20', '--mech', 'PLAIN', '--tls', 'direct', '--workers', '2', '--port', String(t.tlsPort)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.tls, 'direct');
  assert.equal(r.json.mech, 'PLAIN');
  assert.equal(r.json.logins, 6);
  assert.equal(r.json.failures, 0);
  assert.equal((r.json.generator as Record<string, unknown>).workers, 2);
});

test('idle: holds the sessions and reads the server memory from /proc', async () => {
  const r = await bench(['idle', '--sessions', '20', '--concurrency', '10', '--pid', String(process.pid)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.sessions, 20);
  assert.ok(num(r.json.rssBeforeBytes) > 0);
  assert.ok(num(r.json.rssAfterBytes) > 0);
  num(r.json.bytesPerSession);
  assert.ok(num(r.json.serverCpuSeconds) >= 0);
  await noSessionsLeft();
});

test('msg closed loop: every message sent is delivered', async () => {
  const r = await bench(['msg', '--pairs', '2', '--duration', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.mode, 'closed');
  assert.equal(r.json.pairs, 2);
  assert.ok(num(r.json.delivered) > 0);
  assert.equal(r.json.sent, r.json.delivered);
  assert.equal(r.json.lost, 0);
  assert.ok(num(r.json.msgsPerSec) > 0);
  assert.ok(num(r.json.maxMs) >= num(r.json.p99Ms) && num(r.json.p99Ms) >= num(r.json.p50Ms));
  await noSessionsLeft();
});

test('msg open loop: sends on schedule, loses nothing', async () => {
  const r = await bench(['msg', '--pairs', '2', '--duration', '1', '--rate', '200']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.mode, 'open');
  assert.equal(r.json.rate, 200);
  // The schedule never sends more than rate x duration.
  assert.ok(num(r.json.sent) > 0 && num(r.json.sent) <= 200);
  assert.equal(r.json.delivered, r.json.sent);
  assert.equal(r.json.lost, 0);
});

test('--offset moves the run to accounts of its own', async () => {
  // Another password, so the run can only succeed on user5 and user6, never on user1 and user2.
  await t.register('user5', 'other');
  await t.register('user6', 'other');
  const r = await bench(['msg', '--pairs', '1', '--users', '2', '--offset', '4', '--password', 'other', '--duration', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.offset, 4);
  assert.ok(num(r.json.delivered) > 0);
  assert.equal(r.json.lost, 0);
  const wrong = await bench(['login', '--concurrency', '1', '--logins', '1', '--cap', '10', '--users', '2', '--password', 'other']);
  assert.equal(wrong.code, 1, 'without the offset the same options log in as user1, whose password is another');
  await noSessionsLeft();
});

test('offline: messages to offline users are stored, then drained when they log in', async () => {
  const r = await bench(['offline', '--pairs', '2', '--messages', '20', '--batch', '5', '--cap', '15']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.error, undefined);
  assert.equal(r.json.messages, 20);
  assert.equal(r.json.stored, 20);
  assert.equal(r.json.bounced, 0);
  assert.equal(r.json.delivered, 20);
  assert.ok(num(r.json.storePerSec) > 0);
  assert.ok(num(r.json.drainSeconds) >= 0);
  await noSessionsLeft();
});

test('offline against a server that stores nothing: reported as unsupported, with the bounce', async () => {
  const bare = await startServer({ modules: { offline: false } });
  try {
    for (let i = 1; i <= 4; i++) await bare.register(`user${i}`, 'pw');
    const r = await bench(['offline', '--pairs', '2', '--messages', '20', '--batch', '5', '--cap', '15'], bare);
    assert.equal(r.code, 0, r.stderr);
    // Without offline storage a message to an offline account bounces (RFC 6121 §8.5.2.2.1: service-unavailable).
    assert.equal(r.json.error, 'unsupported');
    assert.equal(r.json.stored, 0);
    assert.equal(r.json.bounced, 20);
    assert.match(String(r.json.detail), /service-unavailable/);
  } finally {
    await bare.stop();
  }
});

test('mam: pages through an archive filled by mam-fill', async () => {
  const fill = await bench(['mam-fill', '--messages', '120', '--batch', '20', '--cap', '15']);
  assert.equal(fill.code, 0, fill.stderr);
  assert.equal(fill.json.error, undefined);
  const r = await bench(['mam', '--pages', '2', '--page-size', '50']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.scenario, 'mam');
  assert.equal(r.json.error, undefined);
  assert.equal(r.json.pages, 2);
  assert.ok(num(r.json.archiveSize) >= 100);
  assert.ok(num(r.json.pageP50Ms) > 0);
});

test('mam: a server without XEP-0313 is reported as unsupported, not as a crash', async () => {
  const bare = await startServer({ modules: { mam: false } });
  try {
    for (let i = 1; i <= 4; i++) await bare.register(`user${i}`, 'pw');
    const r = await bench(['mam', '--pages', '2'], bare);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.scenario, 'mam');
    assert.equal(r.json.error, 'unsupported');
    assert.equal(r.json.pages, 0);
  } finally {
    await bare.stop();
  }
});

test('bad usage exits with 2 and no JSON on stdout', async () => {
  for (const args of [['msg', '--pairs', '3'], ['nonsense'], ['login', '--tls', 'sometimes'], ['login', '--offset', 'x']]) {
    const r = await exec(args); // 3 pairs need 6 accounts, and --users is 4
    assert.equal(r.code, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /Usage: /);
  }
});

test('a login that cannot succeed fails the run with exit status 1 and says why', async () => {
  const r = await bench(['login', '--concurrency', '1', '--duration', '1', '--mech', 'SCRAM-SHA-256', '--tls', 'none']);
  assert.equal(r.code, 1);
  assert.match(String(r.json.error), /STARTTLS/);
});
