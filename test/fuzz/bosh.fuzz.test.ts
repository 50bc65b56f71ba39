// Fuzzing BOSH (XEP-0124, XEP-0206): first the <body/> wrapper code on its own (parsing never throws anything but
// a stream error, accepts only well-formed documents, and generated bodies with payloads round-trip both ways),
// then a real Parley at /bosh: generated POST bodies (random bytes, mutated session creation requests, random rid,
// sid and attributes, unknown sessions, other content types, random children) each get an HTTP answer in bounded
// time (200 with a <body/>, or 413 above http.max_body), nothing unexpected is logged, another client can still
// log in and chat, and no session is left behind.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseBody, qualify, responseBody, BOSH_CONDITIONS, type BodyAttrs } from '../../src/c2s/transports/bosh-body.ts';
import { parseRid, parseSeconds } from '../../src/c2s/transports/bosh.ts';
import { Element, serialize } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/ns.ts';
import { DEFAULT_PARSER_LIMITS } from '../../src/xml/parser.ts';
import { StreamError } from '../../src/core/errors.ts';
import { startServer, type TestServer } from '../helpers/server.ts';
import { request, type HttpReply } from '../helpers/http.ts';
import { HTTPBIND, RawBosh, XBOSH, bodyAttrs } from '../helpers/bosh.ts';
import { WsRawClient } from '../helpers/ws-raw-client.ts';
import { fuzzOptions } from './runs.ts';
import { LogCapture, describeLine } from './log-capture.ts';
import { readXml, type OracleNode } from './xml-oracle.ts';
import { XMLISH, applyEdits, byteEdits, mutation, payload, stanza, text, type ByteEdit } from './xmpp-arbitraries.ts';

const LIMITS = DEFAULT_PARSER_LIMITS;
const parse = (data: Uint8Array) => parseBody(data, () => LIMITS, LIMITS);

/** Wrapper attributes a client may send (XEP-0124 §7.1, §9, §10, §12, §15; XEP-0206 §3, §5), and some it may not. */
const attrName = fc.constantFrom('rid', 'sid', 'to', 'xml:lang', 'wait', 'hold', 'ver', 'content', 'type', 'pause', 'newkey', 'key',
  'route', 'from', 'ack', 'secure', 'polling', 'requests', 'xmpp:version', 'xmpp:restart', 'condition', 'x-fuzz');
const attrValue = fc.oneof(text, fc.constantFrom('1', '0', '-1', '60', '1.6', 'true', 'terminate', 'localhost', '9007199254740991',
  '9007199254740992', '99999999999999999999', '0001', '', ' 1', '1e3', 'text/xml', 'text/html'));
const wrapperAttrs = fc.dictionary(attrName, attrValue, { maxKeys: 6 });

/** A request <body/>: its attributes and payloads, each stanza with or without xmlns='jabber:client' (XEP-0206 §2). */
const requestBody = fc.record({
  attrs: wrapperAttrs,
  payloads: fc.array(fc.oneof({ weight: 3, arbitrary: stanza }, { weight: 1, arbitrary: payload.map(serialize) }), { maxLength: 3 }),
  decl: fc.boolean(),
  ws: fc.constantFrom('', ' ', '\n', '\r\n\t'),
});

function wrap(b: { attrs: Record<string, string>; payloads: string[]; decl?: boolean; ws?: string }): string {
  const el = new Element('body', { ...b.attrs, xmlns: HTTPBIND });
  if (Object.keys(b.attrs).some((k) => k.startsWith('xmpp:'))) el.attrs['xmlns:xmpp'] = XBOSH;
  const open = serialize(el);
  const ws = b.ws ?? '';
  const doc = b.payloads.length === 0 ? open : `${open.slice(0, -2)}>${ws}${b.payloads.join(ws)}${ws}</body>`;
  return (b.decl ? "<?xml version='1.0'?>" : '') + doc + ws;
}

/**
 * A payload as a tree (namespaces resolved, attributes in order), read in the context of a client stream: an
 * unqualified top-level element, or one in the wrapper's namespace, means jabber:client (XEP-0206 §2).
 */
function tree(xml: string): unknown {
  const r = readXml(`<w xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>${xml}</w>`);
  assert.ok(r.ok, `${r.ok ? '' : r.why}: ${xml}`);
  const strip = (n: OracleNode): unknown => ({
    name: `{${n.uri}}${n.local}`,
    attrs: Object.entries(n.attrs).filter(([k]) => k !== 'xmlns' && !k.startsWith('xmlns:')).sort(([a], [b]) => (a < b ? -1 : 1)),
    text: n.text,
    children: n.children.map(strip),
  });
  return strip(r.roots[0] as OracleNode);
}

describe('BOSH <body/> wrapper (bosh-body.ts)', () => {
  it('parsing arbitrary bytes never throws and fails only with a stream error', () => {
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutation(requestBody.map(wrap))), (data) => {
      const r = parse(data);
      if (!r.ok) assert.ok(r.error instanceof StreamError);
    }), fuzzOptions(1000));
  });

  it('accepts only a well-formed document whose root is <body/> in the httpbind namespace', () => {
    const junk = fc.array(fc.oneof(fc.constantFrom(...XMLISH, `<body xmlns='${HTTPBIND}'>`, '</body>', `<body xmlns='${HTTPBIND}'/>`), fc.string({ maxLength: 5 })), { maxLength: 30 })
      .map((p) => Buffer.from(p.join('')));
    const trailing = fc.tuple(requestBody.map(wrap), fc.constantFrom('x', '<x/>', '<!-- -->', `<body xmlns='${HTTPBIND}'/>`, '</body>', '\0', '&amp;'))
      .map(([doc, tail]) => Buffer.from(doc + tail));
    fc.assert(fc.property(fc.oneof(junk, mutation(requestBody.map(wrap)), trailing), (data) => {
      const r = parse(data);
      if (!r.ok) return;
      const oracle = readXml(new TextDecoder('utf-8', { fatal: false }).decode(data));
      assert.ok(oracle.ok, `accepted what is not well-formed XML (${oracle.ok ? '' : oracle.why}): ${JSON.stringify(data.toString())}`);
      const root = oracle.roots[0] as OracleNode;
      assert.equal(root.local, 'body');
      assert.equal(root.uri, HTTPBIND);
    }), fuzzOptions(2000));
  });

  it('a generated request body reads back with its attributes and payloads', () => {
    fc.assert(fc.property(requestBody, (b) => {
      const r = parse(Buffer.from(wrap(b)));
      assert.ok(r.ok, r.ok ? '' : `${r.error.message}: ${wrap(b)}`);
      assert.deepEqual({ ...r.body.attrs }, { ...b.attrs });
      assert.deepEqual(tree(r.body.payloads.map(serialize).join('')), tree(b.payloads.join('')));
    }), fuzzOptions(1000));
  });

  it('a response body is a well-formed <body/> whose payloads are stanzas in jabber:client, and reads back', () => {
    const responseAttrs = fc.dictionary(fc.constantFrom('sid', 'wait', 'requests', 'hold', 'inactivity', 'authid', 'from', 'type', 'condition',
      'xmpp:version', 'xmpp:restartlogic', 'ver', 'maxpause'), fc.oneof(text, fc.integer()), { maxKeys: 6 });
    const out = fc.oneof({ weight: 4, arbitrary: stanza.filter((s) => !/^<[a-z]+ xmlns="(?!jabber:client")/.test(s)) },
      { weight: 1, arbitrary: fc.constant(`<stream:features><bind xmlns="${NS.BIND}"/></stream:features>`) });
    fc.assert(fc.property(responseAttrs, fc.array(out, { maxLength: 3 }), (attrs: BodyAttrs, payloads) => {
      const wire = responseBody(attrs, payloads.map(qualify).join(''), payloads.some((p) => p.startsWith('<stream:')));
      const r = readXml(wire);
      assert.ok(r.ok, `${r.ok ? '' : r.why}: ${wire}`);
      const root = r.roots[0] as OracleNode;
      assert.equal(root.uri, HTTPBIND);
      for (const [k, v] of Object.entries(attrs)) if (v !== undefined) assert.equal(root.attrs[k], String(v), k);
      assert.equal(root.children.length, payloads.length);
      for (const [i, ch] of root.children.entries()) {
        assert.equal(ch.uri, (payloads[i] as string).startsWith('<stream:') ? NS.STREAM : NS.CLIENT);
      }
      const back = parse(Buffer.from(wire));
      assert.ok(back.ok);
      assert.deepEqual(tree(back.body.payloads.map(serialize).join('')), tree(payloads.join('')));
    }), fuzzOptions(1000));
  });

  it('rid and seconds: only plain decimal numbers in range are read, never anything else', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 24 }), fc.bigInt({ min: -10n, max: 2n ** 64n }).map(String),
      fc.constantFrom('1e3', '0x10', ' 1', '1 ', '+1', '1.0', 'Infinity', 'NaN', '٣')), (v) => {
      const rid = parseRid(v);
      if (rid !== undefined) {
        assert.match(v, /^[0-9]{1,16}$/);
        assert.ok(Number.isSafeInteger(rid) && rid > 0);
        assert.equal(BigInt(rid), BigInt(v));
      } else if (/^[0-9]{1,16}$/.test(v)) {
        assert.ok(BigInt(v) === 0n || BigInt(v) > BigInt(Number.MAX_SAFE_INTEGER), v);
      }
      const sec = parseSeconds(v);
      if (sec !== undefined) assert.ok(/^[0-9]{1,9}$/.test(v) && sec === Number(v));
    }), fuzzOptions(2000));
  });
});

// --- against a real server ---

/** http.max_body: above it the answer is 413. */
const MAX_BODY = 65_536;
const PROBE_EVERY = 10;

type Stage = 'none' | 'created' | 'auth';
type RidChoice = 'next' | 'same' | 'gap' | 'beyond' | 'missing' | { literal: string };
type SidChoice = 'real' | 'none' | 'unknown' | 'empty' | 'mangled';
/** A request, described before the session it goes to exists: its rid and sid are filled in when it is sent. */
type Spec = {
  rid: RidChoice; sid: SidChoice; attrs: Record<string, string>; payloads: string[]; decl: boolean; ws: string;
  /** Byte edits of the rendered body, random bytes instead of it, something after it, or a body over http.max_body. */
  bytes: { edits: ByteEdit[] } | { random: Uint8Array } | { trailing: string } | { huge: true } | null;
  contentType: string | undefined;
  /** Sent over the other scheme than the session's (plain HTTP for an HTTPS session is dropped, §19.1). */
  otherScheme: boolean;
};
type BoshCase = { stage: Stage; specs: Spec[] };

const ridChoice: fc.Arbitrary<RidChoice> = fc.oneof(
  { weight: 16, arbitrary: fc.constant<RidChoice>('next') },
  { weight: 3, arbitrary: fc.constantFrom<RidChoice>('same', 'gap', 'beyond', 'missing') },
  { weight: 2, arbitrary: fc.constantFrom('0', '-1', '1.5', 'abc', '', '9007199254740992', '99999999999999999999', ' 5', '0x10', '١', '00000000000000001')
    .map((literal) => ({ literal })) },
);
const spec: fc.Arbitrary<Spec> = fc.record({
  rid: ridChoice,
  sid: fc.oneof({ weight: 16, arbitrary: fc.constant<SidChoice>('real') }, { weight: 2, arbitrary: fc.constantFrom<SidChoice>('none', 'unknown', 'empty', 'mangled') }),
  attrs: fc.oneof({ weight: 2, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.dictionary(attrName.filter((n) => n !== 'rid' && n !== 'sid'), attrValue, { maxKeys: 3 }).map((a) => ({ ...a })) }),
  payloads: fc.array(fc.oneof({ weight: 4, arbitrary: stanza }, { weight: 1, arbitrary: payload.map(serialize) },
    { weight: 1, arbitrary: fc.constantFrom(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAeA==</auth>`,
      `<iq type='set' id='b'><bind xmlns='${NS.BIND}'/></iq>`, `<enable xmlns='urn:xmpp:sm:3' resume='true'/>`, `<r xmlns='urn:xmpp:sm:3'/>`) }), { maxLength: 2 }),
  decl: fc.boolean(),
  ws: fc.constantFrom('', ' ', '\n'),
  bytes: fc.oneof({ weight: 30, arbitrary: fc.constant(null) }, { weight: 4, arbitrary: byteEdits.map((edits) => ({ edits })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((random) => ({ random })) }, { weight: 1, arbitrary: fc.constant({ huge: true as const }) },
    { weight: 1, arbitrary: fc.constantFrom('x', '<x/>', '</body>', `<body xmlns='${HTTPBIND}'/>`, '\0', ' \r\n').map((trailing) => ({ trailing })) }),
  contentType: fc.constantFrom('text/xml; charset=utf-8', 'text/xml; charset=utf-8', 'application/xml', 'text/plain', 'application/json',
    'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/xml; charset=iso-8859-1', undefined),
  otherScheme: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
});
const boshCase: fc.Arbitrary<BoshCase> = fc.record({
  stage: fc.constantFrom<Stage>('none', 'created', 'auth'),
  specs: fc.array(spec, { minLength: 1, maxLength: 4 }),
});

/** A session of the case: its sid, the last rid used, and whether it was made over HTTPS. */
type Session = { sid: string; rid: number; secure: boolean };

/** The bytes of a request, its rid and sid chosen against the session (if any) now. */
function render(s: Spec, session: Session | undefined): Buffer {
  if (s.bytes && 'random' in s.bytes) return Buffer.from(s.bytes.random);
  const attrs: Record<string, string> = {};
  let rid: number | string | undefined = session?.rid ?? 1000;
  // Only a request that goes to the session moves its rid on.
  if (s.rid === 'next' && session) rid = s.sid === 'real' ? ++session.rid : session.rid + 1;
  else if (s.rid === 'gap') rid = (session?.rid ?? 1000) + 2;
  else if (s.rid === 'beyond') rid = (session?.rid ?? 1000) + 50;
  else if (s.rid === 'missing') rid = undefined;
  else if (typeof s.rid === 'object') rid = s.rid.literal;
  if (rid !== undefined) attrs.rid = String(rid);
  const real = session?.sid;
  if (s.sid === 'real' && real !== undefined) attrs.sid = real;
  else if (s.sid === 'unknown') attrs.sid = 'no-such-session-at-all';
  else if (s.sid === 'empty') attrs.sid = '';
  else if (s.sid === 'mangled' && real !== undefined) attrs.sid = `${real.slice(0, -1)}${real.endsWith('A') ? 'B' : 'A'}`;
  // Without a session, a request is a session creation request: mostly a proper one (XEP-0206 §3), for our domain.
  if (attrs.sid === undefined) Object.assign(attrs, { to: 'localhost', 'xml:lang': 'en', wait: '1', hold: '1', ver: '1.11', 'xmpp:version': '1.0' });
  Object.assign(attrs, s.attrs);
  let payloads = s.payloads;
  if (s.bytes && 'huge' in s.bytes) payloads = [...payloads, `<message to='nobody@localhost'><body>${'x'.repeat(MAX_BODY)}</body></message>`];
  const doc = Buffer.from(wrap({ attrs, payloads, decl: s.decl, ws: s.ws }));
  if (s.bytes && 'trailing' in s.bytes) return Buffer.concat([doc, Buffer.from(s.bytes.trailing)]);
  return s.bytes && 'edits' in s.bytes ? applyEdits(doc, s.bytes.edits) : doc;
}

/** How a request fared: the server's reply, or the connection closed without one. */
type Outcome = { reply: HttpReply } | { dropped: string };

function show(c: BoshCase): string {
  return `${c.stage}: ${c.specs.map((s) => JSON.stringify({ ...s, bytes: s.bytes && 'random' in s.bytes ? `${s.bytes.random.length} random bytes` : s.bytes })).join('\n  ')}`;
}

describe('fuzzing BOSH at /bosh (XEP-0124, XEP-0206)', () => {
  let t: TestServer;
  const logs = new LogCapture();
  let receiver: WsRawClient;
  let cases = 0;
  let probes = 0;
  let baseline = { sessions: 0, connections: 0 };
  const stats = new Map<string, number>();

  const post = async (body: Buffer, secure: boolean, contentType: string | undefined): Promise<Outcome> => {
    try {
      return { reply: await request({ port: secure ? t.httpsPort : t.httpPort, tls: secure, path: '/bosh', method: 'POST', body,
        headers: contentType === undefined ? {} : { 'Content-Type': contentType } }) };
    } catch (err) {
      return { dropped: (err as Error).message };
    }
  };

  /** Another client logs in over BOSH (HTTPS) and exchanges messages with a WebSocket client. */
  const probe = async (): Promise<void> => {
    const n = ++probes;
    const s = new RawBosh(t.httpsPort, true);
    const jid = await s.login('probe-tx', 'probe-secret', `tx${n}`);
    // Held until there is something to answer with: the reply, most likely.
    const sending = s.send(`<message xmlns='jabber:client' to='probe-rx@localhost/rx' id='probe-${n}' type='chat'><body>probe ${n}</body></message>`);
    for (let i = 0; ; i++) {
      const m = await receiver.next(10_000);
      if (m.includes(`id="probe-${n}"`)) break;
      assert.ok(i < 20, `the probe message did not arrive: ${m}`);
    }
    receiver.send(`<message xmlns='jabber:client' to='${jid}' id='reply-${n}' type='chat'><body>reply ${n}</body></message>`);
    await s.until(new RegExp(`id="reply-${n}"`), sending);
    assert.equal(bodyAttrs(await s.send('', { type: 'terminate' })).type, 'terminate');
  };

  const assertNoErrors = (where: string): void => {
    assert.deepEqual(logs.newErrors().map(describeLine), [], `the server logged errors ${where}`);
  };

  before(async () => {
    t = await startServer({
      // Short timers: held requests come back within a second, abandoned sessions end within two.
      http: { max_body: MAX_BODY, bosh: { max_wait: 1, inactivity: 2, max_pause: 2 } },
      limits: { max_sessions_per_account: 0 },
      auth: { brute_force: { max_failures: 1_000_000, backoff_after: 1_000_000 } },
      modules: { smacks: { resume_timeout: 1 } },
    }, { logger: logs.logger });
    for (const u of ['fuzz', 'probe-tx', 'probe-rx']) await t.register(u, u === 'fuzz' ? 'fuzz-secret' : 'probe-secret');
    receiver = await WsRawClient.connect(`ws://127.0.0.1:${t.httpPort}/ws`);
    await receiver.login('probe-rx', 'probe-secret', 'rx');
    baseline = { sessions: t.server.sessions.count, connections: t.server.connectionGuard.open };
  });

  after(async () => {
    receiver?.ws.terminate();
    await t.stop();
  });

  it('answers every generated request in bounded time with a <body/> (or 413), and the server lives on', async () => {
    await fc.assert(fc.asyncProperty(boshCase, async (c) => {
      cases++;
      let session: Session | undefined;
      if (c.stage === 'created') {
        const s = new RawBosh(t.httpPort);
        await s.create();
        session = { sid: s.sid, rid: s.rid, secure: false };
      } else if (c.stage === 'auth') {
        const s = new RawBosh(t.httpsPort, true);
        await s.login('fuzz', 'fuzz-secret', `f${cases}`);
        session = { sid: s.sid, rid: s.rid, secure: true };
      }
      const sent: Array<{ spec: Spec; body: Buffer; secure: boolean; outcome: Promise<Outcome> }> = [];
      for (const s of c.specs) {
        const body = render(s, session);
        const secure = (session?.secure ?? false) !== s.otherScheme;
        const outcome = post(body, secure, s.contentType);
        sent.push({ spec: s, body, secure, outcome });
        // Requests go in order, unless the server holds one: then the next goes alongside it, as a client's would.
        await Promise.race([outcome, new Promise((r) => setTimeout(r, 30))]);
      }
      // Every session the case used or made is ended, so held requests come back and nothing lingers. Which rids
      // the server took is not known here: one far beyond the window ends a session (§14.2).
      const end = async (s: Session): Promise<void> => {
        const o = await post(Buffer.from(`<body rid='${s.rid + 100}' sid='${s.sid}' xmlns='${HTTPBIND}'/>`), s.secure, 'text/xml; charset=utf-8');
        assert.ok('reply' in o && bodyAttrs(o.reply.body).type === 'terminate', `the session was not ended: ${JSON.stringify(o)}`);
      };
      if (session) await end(session);
      for (const r of sent) {
        const o = await r.outcome;
        if (!('reply' in o) || o.reply.status !== 200) continue;
        const a = bodyAttrs(o.reply.body);
        const rid = parseRid(/\brid=['"]([^'"]*)['"]/.exec(r.body.toString('latin1'))?.[1]);
        if (a.sid !== undefined && a.type !== 'terminate' && rid !== undefined) await end({ sid: a.sid, rid, secure: r.secure });
      }
      for (const r of sent) check(r.spec, r.body, r.secure, await r.outcome, session, c);
      assertNoErrors(`after ${show(c)}`);
      if (cases % PROBE_EVERY === 0) await probe();
    }), fuzzOptions(80));
  });

  /** What the answer to one request must be. */
  function check(s: Spec, body: Buffer, secure: boolean, o: Outcome, session: Session | undefined, c: BoshCase): void {
    const where = `\nrequest (${secure ? 'https' : 'http'}): ${JSON.stringify(body.length > 400 ? `${body.subarray(0, 400).toString()}…` : body.toString())}\ncase: ${show(c)}`;
    const sid = /\bsid=['"]([^'"]*)['"]/.exec(body.toString('latin1'))?.[1];
    if ('dropped' in o) {
      // §19.1: a request of an HTTPS session that comes over plain HTTP is dropped; nothing else goes unanswered.
      assert.ok(session?.secure && !secure && sid === session.sid && !o.dropped.startsWith('no answer'), `no answer (${o.dropped})${where}`);
      stats.set('dropped', (stats.get('dropped') ?? 0) + 1);
      return;
    }
    const { status, headers, body: answer } = o.reply;
    if (status === 413) {
      assert.ok(body.length > MAX_BODY, `413 for a body within http.max_body${where}`);
      stats.set('413', (stats.get('413') ?? 0) + 1);
      return;
    }
    assert.equal(status, 200, `status ${status}: ${answer}${where}`);
    assert.ok(body.length <= MAX_BODY, `an answer other than 413 for a body over http.max_body${where}`);
    assert.match(String(headers['content-type']), /^(text\/xml|application\/xml|text\/plain); charset=utf-8$/, where);
    const r = readXml(answer);
    assert.ok(r.ok && !r.restricted, `the answer is not a well-formed document: ${r.ok ? 'restricted' : r.why}: ${answer}${where}`);
    const root = r.roots[0] as OracleNode;
    assert.ok(root.local === 'body' && root.uri === HTTPBIND, `the answer is not a <body/>: ${answer}${where}`);
    const a = root.attrs;
    if (a.type === 'terminate' && a.condition !== undefined) {
      assert.ok((BOSH_CONDITIONS as readonly string[]).includes(a.condition), `condition ${a.condition}${where}`);
    }
    // A request that is not a well-formed <body/> ends in bad-request (a stanza over the size limit: remote-stream-error).
    const oracle = readXml(body.toString('utf8'));
    const wellFormed = oracle.ok && oracle.roots[0]?.local === 'body' && oracle.roots[0].uri === HTTPBIND && isUtf8(body);
    if (!wellFormed) {
      assert.equal(a.type, 'terminate', `a request that is not a well-formed <body/> got: ${answer}${where}`);
      assert.ok(a.condition === 'bad-request' || a.condition === 'remote-stream-error', `condition ${a.condition} for a bad request${where}`);
    } else if (sid !== undefined && sid !== session?.sid) {
      // An unknown session (§17.2); ours may have ended already, answered the same way.
      assert.equal(a.type, 'terminate', `an unknown sid got: ${answer}${where}`);
    }
    const inner = /<stream:error><([a-z-]+)/.exec(answer)?.[1];
    const key = a.type === 'terminate' ? `${c.stage} terminate ${a.condition ?? ''}${inner ? ` ${inner}` : ''}` : a.sid !== undefined ? 'created' : answer.includes('><') ? 'body with payloads' : 'empty body';
    stats.set(key, (stats.get(key) ?? 0) + 1);
  }

  it('still serves clients afterwards, and every fuzzed session is gone', async () => {
    await probe();
    assertNoErrors('at the end');
    const deadline = Date.now() + 10_000;
    const now = () => ({ sessions: t.server.sessions.count, connections: t.server.connectionGuard.open });
    while (Date.now() < deadline && JSON.stringify(now()) !== JSON.stringify(baseline)) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(now(), baseline, 'sessions and connections back where they were');
    // What the answers were (status, binding condition, stream error), for a look at what a long run covered.
    if (process.env.FUZZ_RUNS) {
      console.log(`${cases} cases: ${[...stats].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} × ${k}`).join(', ')}`);
      console.log(`server warnings:\n${logs.summary() || 'none'}`);
    }
  });
});

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}
