// XEP-0198 stream management over raw sockets: enable, acknowledgements both ways, resumption, what happens to
// unacknowledged stanzas, limits, and random connection losses where every message must arrive exactly once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startServer, type TestServer } from '../helpers/server.ts';
import { StreamParser } from '../../src/xml/parser.ts';
import { Element } from '../../src/xml/element.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { AckQueue, nextCount, parseCount } from '../../src/modules/smacks/ack-queue.ts';
import type { C2sSession } from '../../src/core/session.ts';
import type { PushTrigger } from '../../src/modules/push.ts';

const SM = 'urn:xmpp:sm:3';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const isStanza = (el: Element): boolean => (el.name === 'message' || el.name === 'presence' || el.name === 'iq') && el.attrs.xmlns === undefined;
const isSm = (name: string) => (el: Element): boolean => el.name === name && el.attrs.xmlns === SM;
const msgId = (id: string) => (el: Element): boolean => el.name === 'message' && el.attrs.id === id;

/** A client over direct TLS that parses what it receives and counts stanzas as XEP-0198 says ('h'). */
class Peer {
  readonly socket: TLSSocket;
  inbox: Element[] = [];
  /** Everything received, in order (the inbox minus nothing). */
  log: Element[] = [];
  /** Stanzas handled since <enabled/> (or carried over by <resumed/>), modulo 2^32. */
  h = 0;
  counting = false;
  /** Answer <r/> at once. */
  autoAck = false;
  isClosed = false;
  jid = '';
  private readonly parser: StreamParser;
  private resetPending = false;
  private waiters: Array<() => void> = [];
  private readonly closedPromise: Promise<void>;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    this.parser = new StreamParser({
      streamStart: () => undefined,
      stanza: (el) => this.onElement(el),
      streamEnd: () => undefined,
      error: () => undefined,
    }, { maxStanzaBytes: 1 << 20, maxDepth: 100, maxAttrs: 100 });
    socket.on('data', (chunk: Buffer) => {
      this.parser.write(chunk);
      // The server sends nothing after <success/> until the new stream header, so the chunk ends there.
      if (this.resetPending) {
        this.resetPending = false;
        this.parser.reset();
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) => socket.on('close', () => {
      this.isClosed = true;
      this.wake();
      resolve();
    }));
  }

  static connect(port: number): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' });
      socket.once('secureConnect', () => resolve(new Peer(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects, authenticates and (unless bind is false) binds. */
  static async login(t: TestServer, user: string, resource: string | false = 'r'): Promise<Peer> {
    const p = await Peer.connect(t.tlsPort);
    await p.stream();
    await p.auth(user);
    if (resource !== false) await p.bind(resource);
    return p;
  }

  private onElement(el: Element): void {
    if (this.counting && isStanza(el)) this.h = nextCount(this.h);
    if (el.attrs.xmlns === SM) {
      if (el.name === 'enabled' || el.name === 'resumed') this.counting = true;
      if (el.name === 'r' && this.autoAck) this.ack();
    }
    if (el.name === 'success') this.resetPending = true;
    this.log.push(el);
    this.inbox.push(el);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(data: string): void {
    if (!this.isClosed) this.socket.write(data);
  }

  ack(h = this.h): void {
    this.send(`<a xmlns='${SM}' h='${h}'/>`);
  }

  /** The first received element that matches, removed from the inbox. */
  async next(match: (el: Element) => boolean, timeoutMs = 5000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Element;
      if (this.isClosed) throw new Error(`closed; inbox: ${this.inbox.map(String).join(' ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; inbox: ${this.inbox.map((e) => `<${e.name} ${JSON.stringify(e.attrs)}>`).join(' ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  async stream(): Promise<Element> {
    this.send(`<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`);
    return this.next((el) => el.name === 'stream:features');
  }

  /** SASL PLAIN, then the restarted stream's features. */
  async auth(user: string, password = 'pw'): Promise<Element> {
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await this.next((el) => el.name === 'success');
    return this.stream();
  }

  async bind(resource: string): Promise<string> {
    this.send(`<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const result = await this.next((el) => el.name === 'iq' && el.attrs.id === 'bind');
    this.jid = result.getChild('bind')?.getChildText('jid') ?? '';
    assert.ok(this.jid, `bind failed: ${String(result)}`);
    return this.jid;
  }

  async enable(attrs = ''): Promise<Element> {
    this.send(`<enable xmlns='${SM}' ${attrs}/>`);
    return this.next((el) => el.attrs.xmlns === SM && (el.name === 'enabled' || el.name === 'failed'));
  }

  async ping(id: string): Promise<void> {
    this.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await this.next((el) => el.name === 'iq' && el.attrs.id === id);
  }

  closed(timeoutMs = 5000): Promise<void> {
    return Promise.race([this.closedPromise, new Promise<void>((_, reject) => setTimeout(() => reject(new Error('still open')), timeoutMs).unref())]);
  }

  /** Abrupt network loss: the socket goes away without a stream close. */
  destroy(): void {
    this.socket.destroy();
  }

  end(): void {
    this.send('</stream:stream>');
  }
}

const text = (el: Element): string => String(el);

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function sessionOf(t: TestServer, jid: string): C2sSession | undefined {
  return t.server.sessions.get(Jid.parse(jid));
}

describe('stream management counters (modulo 2^32)', () => {
  it('counts handled stanzas and wraps from 2^32-1 to 0', () => {
    assert.equal(nextCount(0), 1);
    assert.equal(nextCount(0xfffffffe), 0xffffffff);
    assert.equal(nextCount(0xffffffff), 0);
  });

  it('reads h only as an xs:unsignedInt', () => {
    assert.equal(parseCount('0'), 0);
    assert.equal(parseCount('4294967295'), 0xffffffff);
    for (const bad of [undefined, '', '-1', '4294967296', '1.5', ' 1', '0x10', 'abc', '99999999999']) assert.equal(parseCount(bad), undefined, String(bad));
  });

  it('acknowledges across the wrap, refuses more than was sent, and keeps order', () => {
    const q = new AckQueue<string>(0xfffffffe);
    for (const s of ['a', 'b', 'c', 'd']) q.push(s, 1);
    assert.equal(q.sent, 2, 'four past 2^32-2 is 2');
    assert.deepEqual(q.ack(0xffffffff), ['a']);
    assert.deepEqual(q.ack(0), ['b']);
    assert.deepEqual(q.ack(0), [], 'a repeated h acknowledges nothing new');
    assert.equal(q.ack(3), undefined, 'h beyond what was sent');
    assert.equal(q.ack(0xfffffffe), undefined, 'h going backwards is the same as too high');
    assert.deepEqual(q.pending(), ['c', 'd']);
    assert.deepEqual(q.ack(2), ['c', 'd']);
    assert.equal(q.length, 0);
    q.push('e', 7);
    assert.deepEqual(q.takeAll(), [{ item: 'e', at: 7 }]);
    assert.equal(q.sent, 3);
    assert.equal(q.length, 0);
  });
});

describe('stream management', () => {
  let t: TestServer;
  const peers: Peer[] = [];
  let n = 0;
  const pushes: PushTrigger[] = [];
  before(async () => {
    t = await startServer({ modules: { smacks: { request_ack_after: 3, request_ack_delay: 3600, resume_timeout: 60 } } });
    t.server.hosts.get('localhost')?.bus.on('push/notify', (e) => { pushes.push(e); });
  });
  after(async () => {
    for (const p of peers) p.destroy();
    await t.stop();
  });

  async function users(...names: string[]): Promise<string[]> {
    n++;
    const out = names.map((x) => `${x}${n}`);
    for (const u of out) await t.register(u, 'pw');
    return out;
  }
  async function login(user: string, resource: string | false = 'r'): Promise<Peer> {
    const p = await Peer.login(t, user, resource);
    peers.push(p);
    return p;
  }

  it('offers <sm/> only after authentication, and enables without resumption', async () => {
    const [u] = await users('f');
    const p = await Peer.connect(t.tlsPort);
    peers.push(p);
    const pre = await p.stream();
    assert.equal(pre.getChild('sm', SM), undefined);
    const post = await p.auth(u as string);
    assert.ok(post.getChild('sm', SM));
    await p.bind('r');
    const enabled = await p.enable();
    assert.equal(text(enabled), `<enabled xmlns="${SM}"/>`);
  });

  it('enables with resumption: an id and the maximum, lowered to what the client asks', async () => {
    const [u, v] = await users('e', 'ee');
    const p = await login(u as string);
    const enabled = await p.enable(`resume='true' max='45'`);
    assert.equal(enabled.name, 'enabled');
    assert.equal(enabled.attrs.resume, 'true');
    assert.match(enabled.attrs.id ?? '', /^[A-Za-z0-9_-]{16,}$/);
    assert.equal(enabled.attrs.max, '45');
    const q = await login(v as string);
    const other = await q.enable(`resume='1'`);
    assert.equal(other.attrs.max, '60');
    assert.notEqual(other.attrs.id, enabled.attrs.id);
  });

  it('refuses enable before binding and a second enable', async () => {
    const [u] = await users('b');
    const p = await login(u as string, false);
    const early = await p.enable();
    assert.equal(early.name, 'failed');
    assert.ok(early.getChild('unexpected-request', STANZAS));
    await p.bind('r');
    assert.equal((await p.enable()).name, 'enabled');
    const again = await p.enable();
    assert.equal(again.name, 'failed');
    assert.ok(again.getChild('unexpected-request', STANZAS));
    await p.ping('still-open');
  });

  it('answers <r/> with the stanzas it handled, and takes <a/> for what it sent', async () => {
    const [a, b] = await users('ra', 'rb');
    const pa = await login(a as string);
    const pb = await login(b as string);
    await pb.enable();
    await pb.ping('p1');
    await pb.ping('p2');
    pb.send(`<r xmlns='${SM}'/>`);
    assert.equal((await pb.next(isSm('a'))).attrs.h, '2');
    pa.send(`<message to='${pb.jid}' id='m1' type='chat'><body>1</body></message>`);
    await pb.next(msgId('m1'));
    assert.equal(pb.h, 3, 'two ping results and a message');
    pb.ack(3);
    pb.ack(3); // a repeated h is fine
    await pb.ping('p3');
    pb.send(`<r xmlns='${SM}'/>`);
    assert.equal((await pb.next(isSm('a'))).attrs.h, '3');
    // §4: acknowledging more than was sent ends the stream.
    pb.ack(5);
    const err = await pb.next((el) => el.name === 'stream:error');
    assert.ok(err.getChild('undefined-condition', 'urn:ietf:params:xml:ns:xmpp-streams'));
    const detail = err.getChild('handled-count-too-high', SM);
    assert.deepEqual(detail?.attrs, { xmlns: SM, h: '5', 'send-count': '4' });
    await pb.closed();
  });

  it('ends the stream on a malformed h, and treats <r/> without stream management as unsupported', async () => {
    const [a, b] = await users('ma', 'mb');
    const pa = await login(a as string);
    await pa.enable();
    pa.send(`<a xmlns='${SM}' h='-1'/>`);
    const err = await pa.next((el) => el.name === 'stream:error');
    assert.ok(err.getChild('bad-format', 'urn:ietf:params:xml:ns:xmpp-streams'), text(err));
    await pa.closed();
    const pb = await login(b as string);
    pb.send(`<r xmlns='${SM}'/>`);
    const err2 = await pb.next((el) => el.name === 'stream:error');
    assert.ok(err2.getChild('unsupported-stanza-type', 'urn:ietf:params:xml:ns:xmpp-streams'));
  });

  it('asks for an acknowledgement after the configured number of stanzas', async () => {
    const [a, b] = await users('na', 'nb');
    const pa = await login(a as string);
    const pb = await login(b as string);
    await pb.enable();
    for (let i = 1; i <= 5; i++) pa.send(`<message to='${pb.jid}' id='n${i}' type='chat'><body>${i}</body></message>`);
    const first = await pb.next(isSm('r'));
    const names = (upTo: Element): Array<string | undefined> => {
      const from = pb.log.findIndex((el) => el.name === 'enabled');
      return pb.log.slice(from, pb.log.indexOf(upTo) + 1).map((el) => el.attrs.id ?? el.name);
    };
    assert.deepEqual(names(first), ['enabled', 'n1', 'n2', 'n3', 'r']);
    await pb.next(msgId('n5'));
    // Two more sent (n4, n5), then a ping result: the third since the last request asks again.
    await pb.ping('sync');
    const second = await pb.next(isSm('r'));
    assert.deepEqual(names(second), ['enabled', 'n1', 'n2', 'n3', 'r', 'n4', 'n5', 'sync', 'r']);
  });

  it('resumes: the same session, with exactly the unacknowledged stanzas and those that arrived meanwhile', async () => {
    const [a, b] = await users('sa', 'sb');
    const pa = await login(a as string);
    const pb = await login(b as string, 'phone');
    const enabled = await pb.enable(`resume='true'`);
    pb.send(`<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>`);
    await pb.next((el) => el.attrs.id === 'roster');
    pb.send('<presence/>');
    await pb.next((el) => el.name === 'presence');
    const before = sessionOf(t, pb.jid);
    for (let i = 1; i <= 4; i++) pa.send(`<message to='${pb.jid}' id='s${i}' type='chat'><body>${i}</body></message>`);
    await pb.next(msgId('s4'));
    pb.ack(4); // roster result, own presence, s1, s2
    pb.send(`<message to='${pa.jid}' id='from-b'><body>x</body></message>`);
    await pa.next(msgId('from-b'));
    const handled = pb.h; // s3 and s4 were read too, but not acknowledged
    pb.destroy();
    await until('the session to detach', () => sessionOf(t, pb.jid)?.detached === true);
    pa.send(`<message to='${pb.jid}' id='s5' type='chat'><body>5</body></message>`);
    pa.send(`<message to='${b}@localhost' id='s6' type='chat'><body>6</body></message>`);
    await pa.ping('queued');

    const again = await login(b as string, false);
    again.h = 5; // says it handled s3 but not s4
    again.send(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='5'/>`);
    const resumed = await again.next(isSm('resumed'));
    assert.equal(resumed.attrs.previd, enabled.attrs.id);
    assert.equal(resumed.attrs.h, '3', 'roster get, presence and one message from the client');
    const replay = again.log.slice(again.log.indexOf(resumed) + 1);
    await again.next(isSm('r'));
    const replayed = again.log.slice(again.log.indexOf(resumed) + 1).filter((el) => el.name === 'message').map((el) => el.attrs.id);
    assert.deepEqual(replayed, ['s4', 's5', 's6'], `replayed: ${replay.map(text).join(' ')}`);
    assert.equal(handled, 6);
    // The very same session: full JID, presence and roster interest kept.
    const after = sessionOf(t, pb.jid);
    assert.equal(after, before);
    assert.equal(after?.detached, false);
    assert.equal(after?.available, true);
    assert.equal(after?.rosterRequested, true);
    await again.ping('alive');
    assert.equal(again.log.find((el) => el.attrs.id === 'alive')?.attrs.to, pb.jid);
    // The message counter goes on from the old connection: 8 = 5 + s4..s6, the ping result makes 9.
    again.send(`<r xmlns='${SM}'/>`);
    assert.equal((await again.next(isSm('a'))).attrs.h, '4');
    assert.equal(again.h, 9);
    // Push was asked for the messages that arrived while detached.
    assert.deepEqual(pushes.filter((p) => p.user.bareString === `${b}@localhost`).map((p) => [p.reason, p.stanza?.attrs.id]),
      [['no-active-session', 's5'], ['no-active-session', 's6']]);
  });

  it('refuses a resumption by another account, which leaves the session resumable', async () => {
    const [b, c] = await users('xb', 'xc');
    const pb = await login(b as string);
    const enabled = await pb.enable(`resume='true'`);
    pb.destroy();
    await until('the session to detach', () => sessionOf(t, pb.jid)?.detached === true);
    const thief = await login(c as string, false);
    thief.send(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
    const failed = await thief.next(isSm('failed'));
    assert.ok(failed.getChild('item-not-found', STANZAS));
    assert.equal(failed.attrs.h, undefined, 'nothing about another account');
    assert.equal(sessionOf(t, pb.jid)?.detached, true);
    const owner = await login(b as string, false);
    owner.send(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
    await owner.next(isSm('resumed'));
  });

  it('answers a malformed or unknown resumption and one after binding', async () => {
    const [u] = await users('ub');
    const p = await login(u as string, false);
    p.send(`<resume xmlns='${SM}' previd='nope' h='x'/>`);
    assert.ok((await p.next(isSm('failed'))).getChild('bad-request', STANZAS));
    p.send(`<resume xmlns='${SM}' previd='nope' h='0'/>`);
    assert.ok((await p.next(isSm('failed'))).getChild('item-not-found', STANZAS));
    await p.bind('r');
    p.send(`<resume xmlns='${SM}' previd='nope' h='0'/>`);
    assert.ok((await p.next(isSm('failed'))).getChild('unexpected-request', STANZAS));
  });

  it('resumes while the old connection is still open: that one gets conflict', async () => {
    const [a, b] = await users('oa', 'ob');
    const pa = await login(a as string);
    const old = await login(b as string);
    const enabled = await old.enable(`resume='true'`);
    pa.send(`<message to='${old.jid}' id='o1' type='chat'><body>1</body></message>`);
    await old.next(msgId('o1'));
    const fresh = await login(b as string, false);
    fresh.send(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='0'/>`);
    const resumed = await fresh.next(isSm('resumed'));
    assert.equal(resumed.attrs.h, '0');
    await fresh.next(msgId('o1'));
    const err = await old.next((el) => el.name === 'stream:error');
    assert.ok(err.getChild('conflict', 'urn:ietf:params:xml:ns:xmpp-streams'));
    await old.closed();
    pa.send(`<message to='${old.jid}' id='o2' type='chat'><body>2</body></message>`);
    await fresh.next(msgId('o2'));
  });

  it('a new bind of the same resource replaces a detached session; what it held waits offline', async () => {
    const [a, b] = await users('ya', 'yb');
    const pa = await login(a as string);
    const pb = await login(b as string, 'phone');
    await pb.enable(`resume='true'`);
    pa.send(`<message to='${pb.jid}' id='y1' type='chat'><body>1</body></message>`);
    await pb.next(msgId('y1'));
    pb.destroy();
    await until('the session to detach', () => sessionOf(t, pb.jid)?.detached === true);
    pa.send(`<message to='${pb.jid}' id='y2' type='chat'><body>2</body></message>`);
    await pa.ping('queued');
    const fresh = await login(b as string, 'phone');
    await until('both messages stored', async () => (await t.server.storage.offline.count('localhost', b as string)) === 2);
    fresh.send('<presence/>');
    await fresh.next(msgId('y2'));
    assert.deepEqual(fresh.log.filter((el) => el.name === 'message').map((el) => el.attrs.id), ['y1', 'y2']);
  });

  it('moves unacknowledged messages to offline storage when the stream closes, and bounces what is not stored', async () => {
    const [a, b] = await users('ca', 'cb');
    const pa = await login(a as string);
    const pb = await login(b as string);
    await pb.enable();
    pa.send(`<message to='${pb.jid}' id='c1' type='chat'><body>keep me</body></message>`);
    pa.send(`<message to='${pb.jid}' id='c2' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    pa.send(`<iq to='${pb.jid}' id='c3' type='get'><query xmlns='jabber:iq:version'/></iq>`);
    await pb.next((el) => el.attrs.id === 'c3');
    pb.end();
    await pb.closed();
    const bounced = await pa.next((el) => el.attrs.id === 'c2');
    assert.equal(bounced.attrs.type, 'error');
    assert.ok(bounced.getChild('error')?.getChild('service-unavailable', STANZAS));
    const iqError = await pa.next((el) => el.attrs.id === 'c3');
    assert.equal(iqError.attrs.type, 'error');
    await until('the message to be stored', async () => (await t.server.storage.offline.count('localhost', b as string)) === 1);
    const later = await login(b as string);
    later.send('<presence/>');
    const m = await later.next(msgId('c1'));
    assert.equal(m.getChildText('body'), 'keep me');
    assert.equal(m.getChildren('delay').length, 1, 'one delay stamp');
    assert.ok(pa.inbox.every((el) => el.attrs.id !== 'c1'), 'the stored message is not bounced');
  });

  it('removes offline messages only once acknowledged, and never delivers them twice', async () => {
    const [a, b] = await users('da', 'db');
    const pa = await login(a as string);
    for (let i = 1; i <= 3; i++) pa.send(`<message to='${b}@localhost' id='d${i}' type='chat'><body>${i}</body></message>`);
    await pa.ping('stored');
    const pb = await login(b as string);
    await pb.enable();
    pb.send('<presence/>');
    await pb.next(msgId('d3'));
    await pb.next(isSm('r'));
    assert.equal(await t.server.storage.offline.count('localhost', b as string), 3, 'written is not yet received');
    // Unavailable, then available again: what is on its way is not sent again.
    pb.send(`<presence type='unavailable'/>`);
    pb.send('<presence/>');
    await pb.ping('again');
    assert.equal(pb.log.filter((el) => el.name === 'message').length, 3);
    pb.ack(2); // own presence, d1
    await pb.ping('acked');
    assert.equal(await t.server.storage.offline.count('localhost', b as string), 2);
    pb.destroy(); // d2 and d3 never acknowledged: still stored for the next login
    await until('the session to end', () => sessionOf(t, pb.jid) === undefined);
    const next = await login(b as string);
    next.send('<presence/>');
    await next.next(msgId('d3'));
    assert.deepEqual(next.log.filter((el) => el.name === 'message').map((el) => el.attrs.id), ['d2', 'd3']);
    assert.equal(await t.server.storage.offline.count('localhost', b as string), 0, 'no stream management: removed once written');
  });
});

describe('stream management timeouts and limits', () => {
  let t: TestServer;
  const peers: Peer[] = [];
  let n = 0;
  before(async () => {
    t = await startServer({ modules: { smacks: { resume_timeout: 0.3, request_ack_after: 100, request_ack_delay: 0.1, max_unacked: 4 } } });
  });
  after(async () => {
    for (const p of peers) p.destroy();
    await t.stop();
  });
  async function users(...names: string[]): Promise<string[]> {
    n++;
    const out = names.map((x) => `${x}${n}`);
    for (const u of out) await t.register(u, 'pw');
    return out;
  }
  async function login(user: string, resource: string | false = 'r'): Promise<Peer> {
    const p = await Peer.login(t, user, resource);
    peers.push(p);
    return p;
  }

  it('asks for an acknowledgement after the configured delay', async () => {
    const [a, b] = await users('ta', 'tb');
    const pa = await login(a as string);
    const pb = await login(b as string);
    await pb.enable();
    pa.send(`<message to='${pb.jid}' id='t1' type='chat'><body>1</body></message>`);
    await pb.next(msgId('t1'));
    await pb.next(isSm('r'));
  });

  it('after the timeout, a resumption fails with item-not-found and h; the messages wait offline, once', async () => {
    const [a, b] = await users('ka', 'kb');
    const pa = await login(a as string);
    const pb = await login(b as string, 'phone');
    const enabled = await pb.enable(`resume='true'`);
    assert.equal(enabled.attrs.max, '1', 'whole seconds');
    pb.send('<presence/>');
    await pb.next((el) => el.name === 'presence');
    pa.send(`<message to='${b}@localhost' id='k1' type='chat'><body>1</body></message>`);
    pa.send(`<message to='${b}@localhost' id='k2' type='chat'><body>2</body></message>`);
    await pb.next(msgId('k2'));
    pb.send(`<message to='${pa.jid}' id='kb1'><body>x</body></message>`);
    await pa.next(msgId('kb1'));
    pb.destroy();
    await until('the session to detach', () => sessionOf(t, pb.jid)?.detached === true);
    pa.send(`<message to='${b}@localhost' id='k3' type='chat'><body>3</body></message>`);
    await until('the session to expire', () => sessionOf(t, pb.jid) === undefined);
    pa.send(`<message to='${b}@localhost' id='k4' type='chat'><body>4</body></message>`);
    await pa.ping('sent');

    const back = await login(b as string, false);
    // Handled: own presence, k1 (k2 arrived but the client says it did not get to it).
    back.send(`<resume xmlns='${SM}' previd='${enabled.attrs.id}' h='2'/>`);
    const failed = await back.next(isSm('failed'));
    assert.ok(failed.getChild('item-not-found', STANZAS));
    assert.equal(failed.attrs.h, '2', 'presence and one message from the client');
    await back.bind('phone');
    await back.enable(`resume='true'`);
    back.send('<presence/>');
    await back.next(msgId('k4'));
    const got = back.log.filter((el) => el.name === 'message');
    assert.deepEqual(got.map((el) => el.attrs.id), ['k2', 'k3', 'k4'], 'k1 was handled: not delivered again');
    for (const m of got) assert.equal(m.getChildren('delay').length, 1);
  });

  it('closes with policy-violation beyond the unacknowledged limit; nothing is lost', async () => {
    const [a, b] = await users('la', 'lb');
    const pa = await login(a as string);
    const pb = await login(b as string);
    await pb.enable();
    for (let i = 1; i <= 5; i++) pa.send(`<message to='${pb.jid}' id='l${i}' type='chat'><body>${i}</body></message>`);
    const err = await pb.next((el) => el.name === 'stream:error');
    assert.ok(err.getChild('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams'));
    await pb.closed();
    await pa.ping('done');
    await until('all five stored', async () => (await t.server.storage.offline.count('localhost', b as string)) === 5);
    assert.ok(pa.inbox.every((el) => el.attrs.type !== 'error'));
  });
});

/** A small seeded PRNG (mulberry32): the same run every time. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('stream management under random connection losses', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ modules: { smacks: { resume_timeout: 0.4, request_ack_after: 2, request_ack_delay: 0.05 } } });
    await t.register('alice', 'pw');
    await t.register('bob', 'pw');
  });
  after(async () => {
    await t.stop();
  });

  it('delivers every message exactly once, both ways, across resumptions and timeouts (30 losses)', async () => {
    const random = prng(198);
    const pick = (k: number): number => Math.floor(random() * k);
    const alice = await Peer.login(t, 'alice', 'desk');
    const sentToBob: string[] = [];
    const sentToAlice: string[] = [];
    const bobGot = new Map<string, number>();
    const paths = { resumed: 0, timedOut: 0 };

    /** Bob's stanzas not yet acknowledged by the server, oldest first (what the client resends). */
    let unacked: Array<{ id: string | undefined; xml: string }> = [];
    let serverH = 0;
    const bobSend = (p: Peer, xml: string, id?: string): void => {
      unacked.push({ id, xml });
      p.send(xml);
    };
    const applyServerH = (h: number): void => {
      const n = (h - serverH) >>> 0;
      assert.ok(n <= unacked.length, `server acknowledged ${n} of ${unacked.length}`);
      unacked.splice(0, n);
      serverH = h;
    };
    const record = (p: Peer, from: number): number => {
      const log = p.log;
      for (let i = from; i < log.length; i++) {
        const el = log[i] as Element;
        if (el.name === 'message' && el.attrs.type !== 'error' && el.attrs.id?.startsWith('a-')) bobGot.set(el.attrs.id, (bobGot.get(el.attrs.id) ?? 0) + 1);
        if (el.name === 'a' && el.attrs.xmlns === SM) applyServerH(Number(el.attrs.h));
      }
      return log.length;
    };

    /** A fresh session: bind, enable with resumption, available. */
    const freshBob = async (p: Peer): Promise<string> => {
      await p.bind('phone');
      const enabled = await p.enable(`resume='true'`);
      serverH = 0;
      p.autoAck = true;
      // What the old session never took is sent again on the new one (a client's duty, XEP-0198 §5).
      const again = unacked.filter((s) => s.id !== undefined);
      unacked = [];
      bobSend(p, '<presence/>');
      for (const s of again) bobSend(p, s.xml, s.id);
      return enabled.attrs.id as string;
    };

    let bob = await Peer.login(t, 'bob', false);
    let smId = await freshBob(bob);
    let seen = 0;
    for (let round = 0; round < 30; round++) {
      const toBob = 1 + pick(6);
      const toAlice = pick(4);
      const dropAt = pick(toBob + toAlice + 1);
      let step = 0;
      let dropped = false;
      const maybeDrop = (): void => {
        if (!dropped && step++ === dropAt) {
          seen = record(bob, seen);
          bob.destroy();
          dropped = true;
        }
      };
      for (let i = 0; i < Math.max(toBob, toAlice); i++) {
        if (i < toBob) {
          maybeDrop();
          const id = `a-${round}-${i}`;
          sentToBob.push(id);
          alice.send(`<message to='bob@localhost' id='${id}' type='chat'><body>${id}</body></message>`);
        }
        if (i < toAlice) {
          maybeDrop();
          const id = `b-${round}-${i}`;
          if (!dropped) {
            sentToAlice.push(id);
            bobSend(bob, `<message to='alice@localhost/desk' id='${id}' type='chat'><body>${id}</body></message>`, id);
          }
        }
        if (random() < 0.5) await new Promise((r) => setImmediate(r));
        if (random() < 0.3) await new Promise((r) => setTimeout(r, 2));
      }
      maybeDrop();
      if (!dropped) {
        seen = record(bob, seen);
        bob.destroy();
      }
      await bob.closed();
      seen = record(bob, seen);
      const handled = bob.h;

      const waitForTimeout = random() < 0.4;
      if (waitForTimeout) await until('the detached session to expire', () => sessionOf(t, 'bob@localhost/phone') === undefined);
      const next = await Peer.login(t, 'bob', false);
      next.h = handled;
      next.autoAck = true;
      next.send(`<resume xmlns='${SM}' previd='${smId}' h='${handled}'/>`);
      const answer = await next.next((el) => el.attrs.xmlns === SM && (el.name === 'resumed' || el.name === 'failed'));
      bob = next;
      seen = 0;
      if (answer.name === 'resumed') {
        paths.resumed++;
        applyServerH(Number(answer.attrs.h));
        for (const s of [...unacked]) {
          unacked.shift();
          bobSend(bob, s.xml, s.id);
        }
      } else {
        paths.timedOut++;
        assert.ok(answer.getChild('item-not-found', STANZAS), text(answer));
        assert.notEqual(answer.attrs.h, undefined, 'the server remembers how much it handled');
        applyServerH(Number(answer.attrs.h));
        bob.counting = false;
        bob.h = 0;
        smId = await freshBob(bob);
      }
    }

    // Everything settles: Bob has every message, Alice every one of Bob's.
    await until('Bob to receive everything', () => {
      seen = record(bob, seen);
      return sentToBob.every((id) => bobGot.has(id));
    }, 15_000);
    for (const id of sentToAlice) await alice.next(msgId(id), 10_000);
    bob.ack();
    await bob.ping('final-bob');
    await alice.ping('final-alice');
    seen = record(bob, seen);

    assert.ok(paths.resumed >= 5 && paths.timedOut >= 5, `both paths taken: ${JSON.stringify(paths)}`);
    assert.equal(sentToBob.length, bobGot.size);
    const twice = [...bobGot].filter(([, k]) => k !== 1);
    assert.deepEqual(twice, [], 'no message reached Bob twice');
    assert.deepEqual([...bobGot.keys()].sort(), [...sentToBob].sort());
    const aliceGot = alice.log.filter((el) => el.name === 'message' && el.attrs.id?.startsWith('b-')).map((el) => el.attrs.id as string);
    assert.deepEqual([...aliceGot].sort(), [...sentToAlice].sort(), 'Alice got each of Bob\'s messages exactly once');
    assert.ok(alice.log.every((el) => el.attrs.type !== 'error'), 'nothing bounced');
    assert.equal(await t.server.storage.offline.count('localhost', 'bob'), 0, 'nothing left behind in storage');
    alice.destroy();
    bob.destroy();
  });
});
