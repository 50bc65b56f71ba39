// Abuse protection on client connections: each limit is reached and answered as the specs say, while an honest
// client on the same server still logs in and chats; a client that stops reading loses nothing and costs bounded
// memory.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { xml } from '../../src/xml/element.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { waitingCount } from '../../src/c2s/limits/tick.ts';

const streamError = (condition: string): RegExp =>
  new RegExp(`<stream:error><${condition} xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/>`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ping = (id: string): string => `<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`;

/** An honest client logs in and exchanges a message with another while something else is going on. */
async function honestChat(t: TestServer, a: string, b: string): Promise<void> {
  const ca = await RawClient.connect(t.port);
  const cb = await RawClient.connect(t.port);
  try {
    await ca.login(a, 'pw', 'honest');
    await cb.login(b, 'pw', 'honest');
    cb.send(`<presence/>`);
    await cb.expect(/<presence[^>]*\/>|<\/presence>/);
    ca.send(`<message to='${b}@localhost/honest' type='chat' id='hi'><body>still here</body></message>`);
    await cb.expect(/<body>still here<\/body>/);
  } finally {
    ca.destroy();
    cb.destroy();
  }
}

describe('XEP-0478 stream limits advertisement', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { stanza_size: 50_000, stanza_size_preauth: 12_000 }, modules: { keepalive: { idle_timeout: 240 } } });
    await t.register('alice', 'pw');
  });
  after(() => t.stop());

  it('announces the pre-authentication stanza size, then the bound size and the idle time', async () => {
    const c = await RawClient.connect(t.port);
    try {
      await c.openStream();
      await c.starttls();
      const pre = await c.openStream();
      assert.match(pre, /<limits xmlns="urn:xmpp:stream-limits:0"><max-bytes>12000<\/max-bytes><\/limits>/);
      c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0pw').toString('base64')}</auth>`);
      await c.expect(/<success/);
      const post = await c.openStream();
      assert.match(post, /<limits xmlns="urn:xmpp:stream-limits:0"><max-bytes>50000<\/max-bytes><idle-seconds>240<\/idle-seconds><\/limits>/);
    } finally {
      c.destroy();
    }
  });
});

describe('stanza rate', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { stanza_rate: { per_second: 5, burst: 10 } } });
    for (const u of ['flood', 'slow', 'a', 'b']) await t.register(u, 'pw');
  });
  after(() => t.stop());

  it('closes a client a whole burst ahead with policy-violation; an honest client still chats', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('flood', 'pw');
    c.send(Array.from({ length: 200 }, (_, i) => ping(`f${i}`)).join(''));
    await c.expect(streamError('policy-violation'));
    await c.closed();
    await honestChat(t, 'a', 'b');
  });

  it('throttles a client over the rate without closing it: every stanza is answered', async () => {
    const c = await RawClient.connect(t.port);
    try {
      await c.login('slow', 'pw');
      // Past the burst (10) but within the debt allowed (another 10): reading pauses, nothing is refused.
      c.send(Array.from({ length: 18 }, (_, i) => ping(`s${i}`)).join(''));
      for (let i = 0; i < 18; i++) await c.expect(new RegExp(`id="s${i}"`), 10_000);
      assert.equal(c.isClosed, false);
    } finally {
      c.destroy();
    }
  });
});

describe('read shaping', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { read_rate: { bytes_per_second: 8192, burst: 4096 } } });
    await t.register('big', 'pw');
  });
  after(() => t.stop());

  it('pauses reading past the burst and processes everything once the rate allows', async () => {
    const c = await RawClient.connect(t.port);
    try {
      await c.login('big', 'pw');
      const before = waitingCount();
      // ~16 KB at 8 KB/s after a 4 KB burst: reading pauses for a while.
      c.send(Array.from({ length: 8 }, (_, i) => `<message to='big@localhost/none' id='m${i}'><body>${'x'.repeat(2000)}</body></message>`).join('') + ping('done'));
      let paused = false;
      for (let i = 0; i < 100 && !paused; i++) {
        paused = waitingCount() > before;
        if (!paused) await sleep(10);
      }
      assert.ok(paused, 'a read pause is waiting on the shared tick');
      await c.expect(/id="done"/, 10_000);
      assert.equal(c.isClosed, false);
    } finally {
      c.destroy();
    }
  });
});

describe('sessions per account', () => {
  it('refuses a bind over the cap with resource-constraint and resource-limit-exceeded (RFC 6120 §7.6.2.1)', async () => {
    const t = await startServer({ limits: { max_sessions_per_account: 2 } });
    const open: RawClient[] = [];
    try {
      await t.register('many', 'pw');
      for (const r of ['one', 'two']) {
        const c = await RawClient.connect(t.port);
        open.push(c);
        await c.login('many', 'pw', r);
      }
      // Binding an existing resource again replaces it: not counted.
      const again = await RawClient.connect(t.port);
      open.push(again);
      await again.login('many', 'pw', 'two');
      const c = await RawClient.connect(t.port);
      open.push(c);
      await c.openStream();
      await c.starttls();
      await c.openStream();
      c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0many\0pw').toString('base64')}</auth>`);
      await c.expect(/<success/);
      await c.openStream();
      c.send(`<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>three</resource></bind></iq>`);
      const m = await c.expect(/<iq type="error" id="b3">[\s\S]*?<\/iq>/);
      assert.match(m[0], /<error type="wait"><resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
      assert.match(m[0], /<resource-limit-exceeded xmlns="urn:xmpp:errors"\/>/);
      assert.equal(t.server.sessions.resources(Jid.parse('many@localhost')).length, 2);
    } finally {
      for (const c of open) c.destroy();
      await t.stop();
    }
  });

  it('with replace_oldest, closes the oldest session with conflict instead', async () => {
    const t = await startServer({ limits: { max_sessions_per_account: 2, max_sessions_policy: 'replace_oldest' } });
    const open: RawClient[] = [];
    try {
      await t.register('many', 'pw');
      for (const r of ['one', 'two', 'three']) {
        const c = await RawClient.connect(t.port);
        open.push(c);
        await c.login('many', 'pw', r);
      }
      await open[0]?.expect(streamError('conflict'));
      await open[0]?.closed();
      const left = t.server.sessions.resources(Jid.parse('many@localhost')).map((s) => s.jid?.resource).sort();
      assert.deepEqual(left, ['three', 'two']);
    } finally {
      for (const c of open) c.destroy();
      await t.stop();
    }
  });
});

describe('connection caps', () => {
  it('caps unauthenticated connections per address, counting only until they authenticate', async () => {
    const t = await startServer({ limits: { connections: { max_unauthenticated_per_ip: 2, exempt: [] } } });
    const open: RawClient[] = [];
    try {
      await t.register('cap', 'pw');
      const a = await RawClient.connect(t.port, { localAddress: '127.0.0.5' });
      const b = await RawClient.connect(t.port, { localAddress: '127.0.0.5' });
      open.push(a, b);
      const c = await RawClient.connect(t.port, { localAddress: '127.0.0.5' });
      open.push(c);
      await c.expect(streamError('policy-violation'));
      await c.closed();
      // Another address is not affected.
      const other = await RawClient.connect(t.port, { localAddress: '127.0.0.6' });
      open.push(other);
      await other.login('cap', 'pw', 'other');
      // Once one of the two authenticates, the address may open another.
      await a.login('cap', 'pw', 'a');
      const d = await RawClient.connect(t.port, { localAddress: '127.0.0.5' });
      open.push(d);
      await d.login('cap', 'pw', 'd');
    } finally {
      for (const c of open) c.destroy();
      await t.stop();
    }
  });

  it('caps new connections per address per minute, and connections in total', async () => {
    const t = await startServer({ limits: { connections: { attempts_per_ip_per_minute: 3, max_total: 5, exempt: ['127.0.0.1'] } } });
    const open: RawClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await RawClient.connect(t.port, { localAddress: '127.0.0.7' });
        c.destroy();
        await c.closed();
      }
      const fourth = await RawClient.connect(t.port, { localAddress: '127.0.0.7' });
      await fourth.expect(streamError('policy-violation'));
      await fourth.closed();
      // Exempt: no per-address cap, only the total (5 open at once).
      for (let i = 0; i < 5; i++) open.push(await RawClient.connect(t.port));
      await sleep(50);
      const sixth = await RawClient.connect(t.port);
      await sixth.expect(streamError('resource-constraint'));
      await sixth.closed();
      open.pop()?.destroy();
      for (let i = 0; i < 100 && t.server.connectionGuard.open >= 5; i++) await sleep(10);
      const again = await RawClient.connect(t.port);
      open.push(again);
      assert.match(await again.openStream(), /<starttls/);
    } finally {
      for (const c of open) c.destroy();
      await t.stop();
    }
  });
});

describe('presence subscription rate', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { subscription_rate: { per_minute: 2, burst: 2 } } });
    for (const u of ['sub', 'c1', 'c2', 'c3', 'x', 'y']) await t.register(u, 'pw');
  });
  after(() => t.stop());

  it('refuses subscription changes past the rate with policy-violation, and nothing else', async () => {
    const c = await RawClient.connect(t.port);
    try {
      await c.login('sub', 'pw');
      c.send(`<presence type='subscribe' to='c1@localhost' id='s1'/><presence type='subscribe' to='c2@localhost' id='s2'/>`);
      c.send(`<presence type='subscribe' to='c3@localhost' id='s3'/>`);
      const m = await c.expect(/<presence[^>]*type="error"[^>]*>[\s\S]*?<\/presence>/);
      assert.match(m[0], /id="s3"/);
      assert.match(m[0], /<error type="wait"><policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
      c.send(ping('still'));
      await c.expect(/id="still"/);
      await honestChat(t, 'x', 'y');
    } finally {
      c.destroy();
    }
  });
});

/** Forces a collection so heap figures measure what is live, not what is garbage. */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function heap(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
}

describe('a client that stops reading', () => {
  const BODY = 'y'.repeat(32_000);
  let t: TestServer;
  before(async () => {
    t = await startServer({
      limits: { send_queue: { max_bytes: 65_536, max_stanzas: 40, stall_timeout: 1 } },
      // The archive is off so the memory figures are the send path's alone.
      modules: { offline: { quota: 5000 }, mam: false },
    });
    for (const u of ['sink', 'sender', 'a', 'b']) await t.register(u, 'pw');
  });
  after(() => t.stop());

  it('with stream management: memory stays bounded, and every message is stored offline once it is closed', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('sink', 'pw', 'r');
    c.send(`<enable xmlns='urn:xmpp:sm:3'/>`);
    await c.expect(/<enabled/);
    c.send(`<presence/>`);
    await c.expect(/<presence/);
    c.socket.pause(); // reads nothing more
    const start = heap();
    let peak = 0;
    const N = 1500; // ~48 MB routed to it
    for (let i = 0; i < N; i++) {
      await route(t, 'sink@localhost/r', i, BODY);
      if (i % 100 === 99) peak = Math.max(peak, heap() - start);
    }
    // Closed once 40 stanzas were held (resource-constraint); everything after went to offline storage.
    assert.ok(peak < 16_000_000, `memory grew by ${peak} bytes while 48 MB were routed to a client that does not read`);
    c.destroy();
    let stored = 0;
    for (let i = 0; i < 200 && stored < N; i++) {
      stored = await t.server.storage.offline.count('localhost', 'sink');
      if (stored < N) await sleep(20);
    }
    const ids = new Set((await t.server.storage.offline.list('localhost', 'sink', N + 10)).map((m) => /#(\d+)#/.exec(m.stanza)?.[1]));
    assert.equal(ids.size, N, 'every message sent to the slow reader is stored offline (the client acknowledged none)');
    await honestChat(t, 'a', 'b');
  });
});

describe('a client that stops reading, without stream management', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({
      limits: { send_queue: { max_bytes: 65_536, max_stanzas: 1000, stall_timeout: 1 } },
      modules: { offline: { quota: 5000 }, mam: false },
    });
    for (const u of ['sink', 'sender', 'a', 'b']) await t.register(u, 'pw');
  });
  after(() => t.stop());

  it('is closed with connection-timeout; each message was either written to it or stored offline', async () => {
    const c = await RawClient.connect(t.port);
    await c.login('sink', 'pw', 'r');
    c.send(`<presence/>`);
    await c.expect(/<presence/);
    c.socket.pause();
    const session = t.server.sessions.get(Jid.parse('sink@localhost/r'));
    assert.ok(session);
    const N = 300; // ~10 MB: more than the socket buffers take, fewer stanzas than max_stanzas
    for (let i = 0; i < N; i++) await route(t, 'sink@localhost/r', i, 'z'.repeat(32_000));
    assert.ok(session.active, 'still open while stanzas wait');
    for (let k = 0; k < 500 && session.active; k++) await sleep(10);
    assert.equal(session.active, false, 'closed after stall_timeout');
    await honestChat(t, 'a', 'b');
    // Reading again, the client gets what was written, then the stream error.
    c.socket.resume();
    await c.closed(10_000);
    assert.match(c.buffer.slice(-1000), streamError('connection-timeout'));
    const received = [...c.buffer.matchAll(/#(\d+)#/g)].map((m) => m[1]);
    let stored: string[] = [];
    for (let k = 0; k < 100 && received.length + stored.length < N; k++) {
      stored = (await t.server.storage.offline.list('localhost', 'sink', N + 10)).map((m) => /#(\d+)#/.exec(m.stanza)?.[1] as string);
      if (received.length + stored.length < N) await sleep(20);
    }
    assert.ok(stored.length > 0, 'some messages waited and were stored');
    assert.deepEqual([...received, ...stored].map(Number).sort((x, y) => x - y), Array.from({ length: N }, (_, i) => i),
      'no message lost or duplicated');
  });
});

async function route(t: TestServer, to: string, i: number, body: string): Promise<void> {
  const m = xml('message', { from: 'sender@localhost/x', to, type: 'chat', id: `m${i}` }, xml('body', null, `#${i}# ${body}`));
  await t.server.router.route(m, Jid.parse('sender@localhost/x'), Jid.parse(to));
}

describe('a client that reads slowly', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ limits: { send_queue: { max_bytes: 65_536, max_stanzas: 1000, stall_timeout: 60 } }, modules: { mam: false } });
    for (const u of ['sink', 'sender']) await t.register(u, 'pw');
  });
  after(() => t.stop());

  it('gets the stanzas that waited, in order, once it reads again', async () => {
    const c = await RawClient.connect(t.port);
    try {
      await c.login('sink', 'pw', 'r');
      c.send(`<presence/>`);
      await c.expect(/<presence/);
      c.socket.pause();
      const N = 200; // ~6 MB: some are held back
      for (let i = 0; i < N; i++) await route(t, 'sink@localhost/r', i, 'q'.repeat(32_000));
      c.socket.resume();
      for (let k = 0; k < 1000 && !c.buffer.includes(`#${N - 1}#`); k++) await sleep(10);
      const received = [...c.buffer.matchAll(/#(\d+)#/g)].map((m) => Number(m[1]));
      assert.deepEqual(received, Array.from({ length: N }, (_, i) => i));
      assert.equal(t.server.sessions.get(Jid.parse('sink@localhost/r'))?.active, true);
    } finally {
      c.destroy();
    }
  });
});
