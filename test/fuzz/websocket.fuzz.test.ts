// Fuzzing XMPP over WebSocket (RFC 7395) against a real Parley: clients send generated messages (random bytes and
// text, XML-ish fragments, mutated <open/>, <close/> and stanzas, binary messages, messages over the limits, several
// elements in one message) before the stream is opened, after it is, and after authentication. Whatever comes,
// every server message is a well-formed document of its own, a bad message gets a stream error then <close/> (or
// a WebSocket close code from RFC 6455), every connection ends in bounded time, the server logs no unexpected
// error, another client can still log in and chat, and no session is left behind.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startServer, type TestServer } from '../helpers/server.ts';
import { CLOSE, FRAMING, WsRawClient } from '../helpers/ws-raw-client.ts';
import { ScramClient } from '../helpers/scram-client.ts';
import { standalone } from '../../src/c2s/transports/websocket.ts';
import { Element, serialize } from '../../src/xml/element.ts';
import { NS } from '../../src/xml/ns.ts';
import { fuzzOptions } from './runs.ts';
import { LogCapture, describeLine } from './log-capture.ts';
import { readXml, type OracleNode } from './xml-oracle.ts';
import { XMLISH, jidish, mutation, payload, stanza, text } from './xmpp-arbitraries.ts';

/** limits.stanza_size: ws refuses a larger message with close code 1009. */
const STANZA_SIZE = 20_000;
/** limits.stanza_size_preauth (its default). */
const STANZA_SIZE_PREAUTH = 10_000;
/** A probe (another client logging in and exchanging a message) after this many cases. */
const PROBE_EVERY = 10;

/** RFC 6120 §4.9.3: the defined stream error conditions. */
const STREAM_CONDITIONS = new Set([
  'bad-format', 'bad-namespace-prefix', 'conflict', 'connection-timeout', 'host-gone', 'host-unknown',
  'improper-addressing', 'internal-server-error', 'invalid-from', 'invalid-namespace', 'invalid-xml',
  'not-authorized', 'not-well-formed', 'policy-violation', 'remote-connection-failed', 'reset',
  'resource-constraint', 'restricted-xml', 'see-other-host', 'system-shutdown', 'undefined-condition',
  'unsupported-encoding', 'unsupported-feature', 'unsupported-stanza-type', 'unsupported-version',
]);
/** Conditions a message that is not one well-formed element may get (RFC 6120 §4.9.3, §11). */
const MALFORMED_CONDITIONS = new Set([
  'not-well-formed', 'restricted-xml', 'policy-violation', 'invalid-namespace', 'bad-namespace-prefix', 'invalid-xml', 'bad-format',
]);

// --- generators ---

/**
 * Where in the stream the case starts: before <open/>, after it, after SASL success (a new <open/> is due, RFC 7395
 * §3.5), after that <open/> (a resource is to be bound), or with a bound resource.
 */
type Stage = 'fresh' | 'open' | 'sasl' | 'restart' | 'auth';
/** `cuts`: where the message is split into WebSocket fragments (RFC 6455 §5.4); `ping`: a ping frame goes first. */
type Frame = { data: Buffer; binary: boolean; kind: string; cuts: number[]; ping: boolean };
/** How the client leaves: its <close/> (RFC 7395 §3.6), a WebSocket close without it, or a dropped connection. */
type Ending = 'close' | 'ws-close' | 'drop';
type Case = { stage: Stage; frames: Frame[]; end: Ending };

const open = fc.record({
  ns: fc.constantFrom(FRAMING, FRAMING, FRAMING, 'jabber:client', NS.STREAM, 'urn:x-fuzz'),
  to: fc.option(fc.constantFrom('localhost', 'localhost', 'elsewhere.example', '', 'LOCALHOST', 'local host', 'fuzz@localhost')),
  version: fc.option(fc.constantFrom('1.0', '1.0', '2.0', '0.9', '1', 'x')),
  lang: fc.option(fc.constantFrom('en', '', 'x-fuzz', 'not a tag')),
  from: fc.option(jidish),
}).map(({ ns, to, version, lang, from }) => {
  const a: Record<string, string> = { xmlns: ns };
  if (to !== null) a.to = to;
  if (version !== null) a.version = version;
  if (lang !== null) a['xml:lang'] = lang;
  if (from !== null) a.from = from;
  return serialize(new Element('open', a));
});

const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const nonza = fc.oneof(
  fc.constant(CLOSE),
  fc.constant(`<close xmlns='${FRAMING}'><extra/></close>`),
  fc.tuple(fc.constantFrom('PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'ANONYMOUS', 'X-BOGUS', ''), fc.oneof(fc.base64String({ maxLength: 40 }), text, fc.constant('=')))
    .map(([m, data]) => `<auth xmlns='${SASL}' mechanism='${m}'>${data}</auth>`),
  fc.constantFrom(`<response xmlns='${SASL}'>Zm9v</response>`, `<abort xmlns='${SASL}'/>`, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
    `<enable xmlns='urn:xmpp:sm:3' resume='true'/>`, `<r xmlns='urn:xmpp:sm:3'/>`, `<a xmlns='urn:xmpp:sm:3' h='4294967296'/>`,
    `<a xmlns='urn:xmpp:sm:3' h='-1'/>`, `<resume xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>`, `<active xmlns='urn:xmpp:csi:0'/>`,
    `<inactive xmlns='urn:xmpp:csi:0'/>`, `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGZ1enoAeA==</initial-response></authenticate>`,
    `<stream:features xmlns:stream='${NS.STREAM}'/>`, `<stream:stream xmlns:stream='${NS.STREAM}' to='localhost' version='1.0'>`,
    `<stream:stream xmlns:stream='${NS.STREAM}' xmlns='jabber:client' to='localhost' version='1.0'/>`, '</stream:stream>',
    `<iq type='set' id='b'><bind xmlns='${NS.BIND}'><resource>fuzz-bind</resource></bind></iq>`,
    `<iq type='set' id='s'><session xmlns='${NS.SESSION}'/></iq>`),
);

/** Whole elements a client could well send. */
const element = fc.oneof({ weight: 2, arbitrary: open }, { weight: 4, arbitrary: stanza }, { weight: 3, arbitrary: nonza });

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
const textFrame = (kind: string) => (s: string): Frame => ({ data: utf8(s), binary: false, kind, cuts: [], ping: false });

/** Bytes of a valid element flipped, dropped or inserted. */
const mutated = mutation(element).map((data): Frame => ({ data, binary: false, kind: 'mutated', cuts: [], ping: false }));

const WS_XMLISH = [...XMLISH, `xmlns='${FRAMING}'`, 'open', 'close', '<open', '<close'];
const junk = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((b): Frame => ({ data: Buffer.from(b), binary: false, kind: 'bytes', cuts: [], ping: false })),
  fc.string({ unit: 'binary', maxLength: 100 }).map(textFrame('string')),
  fc.array(fc.oneof(fc.constantFrom(...WS_XMLISH), fc.string({ maxLength: 5 })), { maxLength: 40 }).map((p) => p.join('')).map(textFrame('xmlish')),
);

const several = fc.tuple(fc.array(element, { minLength: 2, maxLength: 3 }), fc.constantFrom('', ' ', '\n'))
  .map(([els, sep]) => els.join(sep)).map(textFrame('several'));

const declared = fc.tuple(fc.constantFrom("<?xml version='1.0'?>", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='ISO-8859-1'?>",
  "<?xml version='1.1'?>", '<?xml ?>', "<?xml version='1.0' standalone='yes'?>\n", ' <?xml version="1.0"?>', '<?xml version="1.0"'), element)
  .map(([d, el]) => d + el).map(textFrame('declared'));

/** Messages at and over the limits: stanza sizes either side of both size limits, depth and attribute counts. */
const oversized = fc.oneof(
  fc.constantFrom(STANZA_SIZE_PREAUTH - 200, STANZA_SIZE_PREAUTH + 500, STANZA_SIZE - 200, STANZA_SIZE + 1, STANZA_SIZE * 3)
    .map((n) => `<message xmlns='jabber:client' to='nobody@localhost'><body>${'x'.repeat(Math.max(0, n - 80))}</body></message>`),
  fc.integer({ min: 60, max: 120 }).map((d) => `<message xmlns='jabber:client'>${'<a>'.repeat(d)}${'</a>'.repeat(d)}</message>`),
  fc.integer({ min: 200, max: 400 }).map((n) => `<message xmlns='jabber:client' ${Array.from({ length: n }, (_, i) => `a${i}='1'`).join(' ')}/>`),
).map(textFrame('oversized'));

const frame = fc.tuple(
  fc.oneof(
    { weight: 4, arbitrary: element.map(textFrame('element')) },
    { weight: 4, arbitrary: mutated },
    { weight: 2, arbitrary: junk },
    { weight: 1, arbitrary: several },
    { weight: 1, arbitrary: declared },
    { weight: 1, arbitrary: oversized },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '\n\t', '\r\n').map(textFrame('blank')) },
  ),
  fc.integer({ min: 0, max: 11 }),
  fc.oneof({ weight: 4, arbitrary: fc.constant<number[]>([]) }, { weight: 1, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }) }),
  fc.integer({ min: 0, max: 9 }),
).map(([f, r, cuts, p]): Frame => ({
  ...f, cuts, ping: p === 0,
  ...(r === 0 ? { binary: true, kind: `binary ${f.kind}` } : {}),
}));

const wsCase: fc.Arbitrary<Case> = fc.record({
  stage: fc.constantFrom<Stage>('fresh', 'open', 'sasl', 'restart', 'auth', 'auth'),
  frames: fc.array(frame, { minLength: 1, maxLength: 3 }),
  end: fc.constantFrom<Ending>('close', 'close', 'close', 'close', 'ws-close', 'drop'),
});

/** Sends one message, in fragments where it has cuts. */
function sendFrame(ws: WsRawClient, f: Frame): void {
  if (f.ping) ws.ws.ping(Buffer.from('fuzz'));
  const points = [...new Set(f.cuts.map((c) => c % (f.data.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const at of points) {
    ws.ws.send(f.data.subarray(from, at), { binary: f.binary, fin: false });
    from = at;
  }
  ws.ws.send(f.data.subarray(from), { binary: f.binary, fin: true });
}

// --- the oracle: what the server must do with a message ---

type Verdict =
  | { is: 'blank' }
  /** The client's <close/>, or what ends the stream without an error. */
  | { is: 'close' }
  | { is: 'element'; restricted: boolean }
  /** `code`: the WebSocket close code ws must answer with (RFC 6455 §7.4.1), else a stream error is due. */
  | { is: 'bad'; code?: number; why: string };

function judge(f: Frame): Verdict {
  // ws enforces maxPayload before the message reaches the transport.
  if (f.data.length > STANZA_SIZE) return { is: 'bad', code: 1009, why: 'too big' };
  if (f.binary) return { is: 'bad', code: 1003, why: 'binary' };
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true }).decode(f.data);
  } catch {
    return { is: 'bad', code: 1007, why: 'not UTF-8' };
  }
  if (/^[ \t\r\n]*$/.test(s)) return { is: 'blank' };
  const r = readXml(s);
  if (!r.ok) return { is: 'bad', why: r.why };
  const root = r.roots[0] as OracleNode;
  if (root.local === 'close' && root.uri === FRAMING) return { is: 'close' };
  // RFC 6120 §5.4.2.2: STARTTLS (never possible over WebSocket) is answered with <failure/> and the end of the stream.
  if (root.local === 'starttls' && root.uri === 'urn:ietf:params:xml:ns:xmpp-tls') return { is: 'close' };
  // RFC 6120 §11.6: XML 1.0 in UTF-8; a declaration saying otherwise may well be refused.
  const decl = /^<\?xml\s[^>]*\?>/.exec(s)?.[0];
  if (decl !== undefined && (!/version=['"]1\.0['"]/.test(decl) || /encoding=['"](?!utf-8['"])/i.test(decl))) return { is: 'element', restricted: true };
  return { is: 'element', restricted: r.restricted };
}

type Transcript = { messages: string[]; binary: number; code: number };

/** What a transcript says about the stream error, checked against RFC 7395 §3.6 and RFC 6120 §4.9. */
function checkTranscript(t: Transcript, c: Case): void {
  const where = `\ncase: ${show(c)}\ngot (${t.code}):\n${t.messages.join('\n')}`;
  assert.equal(t.binary, 0, `the server sent a binary message${where}`);
  for (const m of t.messages) {
    const r = readXml(m);
    assert.ok(r.ok && !r.restricted, `a server message is not a well-formed document of its own (§3.3.3): ${r.ok ? 'restricted XML' : r.why}${where}`);
  }
  const errAt = t.messages.findIndex((m) => m.startsWith('<stream:error'));
  let condition: string | undefined;
  if (errAt >= 0) {
    const r = readXml(t.messages[errAt] as string);
    const root = r.ok ? r.roots[0] : undefined;
    assert.ok(root && root.local === 'error' && root.uri === NS.STREAM, `a stream error in the streams namespace${where}`);
    const conditions = root.children.filter((ch) => ch.uri === NS.STREAMS_ERR && ch.local !== 'text');
    assert.equal(conditions.length, 1, `one defined condition${where}`);
    condition = (conditions[0] as OracleNode).local;
    assert.ok(STREAM_CONDITIONS.has(condition), `an RFC 6120 condition, not ${condition}${where}`);
    assert.notEqual(condition, 'internal-server-error', `a server failure${where}`);
  }
  // A client that left without <close/> may not have waited for the rest.
  if (c.end !== 'close') return;
  if (errAt >= 0) {
    // §3.6.1: the stream error, then <close/>, then the WebSocket closes.
    assert.equal(t.messages.length, errAt + 2, `<close/> right after the stream error, and nothing more${where}`);
    assert.match(t.messages[errAt + 1] as string, /^<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"\/>$/, `<close/> after the stream error${where}`);
    assert.ok(t.code === 1000 || t.code === 1003, `close code 1000 (or 1003 after a binary message), not ${t.code}${where}`);
  }
  if (t.code === 1000) assert.match(t.messages.at(-1) ?? '', /^<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"\/>$/, `<close/> before a normal close${where}`);
  else assert.ok([1000, 1003, 1007, 1009].includes(t.code), `an expected close code, not ${t.code}${where}`);

  // The first message that is bad (before the client's own <close/>) gets its answer; exactly the one RFC 6455 or
  // RFC 7395 names when nothing but whitespace came before it (an earlier element may have ended the stream).
  let first = true;
  for (const f of c.frames) {
    const v = judge(f);
    if (v.is === 'close') break;
    if (v.is === 'blank') continue;
    if (v.is === 'bad') {
      if (!first) assert.ok(errAt >= 0 || [1003, 1007, 1009].includes(t.code), `no stream error for a bad message (${v.why})${where}`);
      else if (v.code === 1009 || v.code === 1007) assert.equal(t.code, v.code, `close code ${v.code} for ${v.why}${where}`);
      else if (errAt < 0) assert.fail(`no stream error for a bad message (${v.why})${where}`);
      else if (v.code === 1003) {
        assert.equal(condition, 'unsupported-encoding', `unsupported-encoding for a binary message${where}`);
        assert.equal(t.code, 1003, where);
      } else assert.ok(MALFORMED_CONDITIONS.has(condition as string), `a condition for bad XML (${v.why}), not ${condition}${where}`);
      break;
    }
    first = false;
  }
  // Messages that are all well-formed (and not restricted XML) are never answered with not-well-formed.
  const verdicts = c.frames.map(judge);
  const upToClose = verdicts.slice(0, verdicts.findIndex((v) => v.is === 'close') >>> 0);
  if (condition === 'not-well-formed' && upToClose.every((v) => v.is === 'blank' || (v.is === 'element' && !v.restricted))) {
    assert.fail(`not-well-formed for well-formed messages${where}`);
  }
}

/** Opens a stream and authenticates with SCRAM-SHA-1 as the fuzz account; with `restart`, opens the stream again. */
async function authenticate(ws: WsRawClient, restart: boolean): Promise<void> {
  await ws.open();
  const scram = new ScramClient({ hash: 'SHA-1', username: 'fuzz', password: 'fuzz-secret' });
  ws.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
  const challenge = /<challenge [^>]*>([^<]+)<\/challenge>/.exec(await ws.next())?.[1];
  assert.ok(challenge, 'a SCRAM challenge');
  ws.send(`<response xmlns='${SASL}'>${scram.final(Buffer.from(challenge, 'base64').toString('utf8')).toString('base64')}</response>`);
  assert.match(await ws.next(), /^<success /);
  if (restart) assert.match((await ws.open()).features, /<bind /);
}

/** Polls `done` for up to 10 seconds: the server must have reached that point by then. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function show(c: Case): string {
  return `${c.stage}, then ${c.end}: ${c.frames.map((f) => `[${f.kind}${f.cuts.length > 0 ? `, cut at ${f.cuts.join(' ')}` : ''}${f.ping ? ', after a ping' : ''}] ${JSON.stringify(f.data.length > 300 ? `${f.data.subarray(0, 300).toString()}… (${f.data.length} bytes)` : f.data.toString())}`).join(' | ')}`;
}

describe('fuzzing XMPP over WebSocket (RFC 7395)', () => {
  let t: TestServer;
  let url: string;
  const logs = new LogCapture();
  let receiver: WsRawClient;
  let probes = 0;
  let cases = 0;
  const stats = new Map<string, number>();
  let baseline = { sessions: 0, connections: 0 };
  /** Clients not closed yet, cut at the end whatever happened. */
  const clients = new Set<WsRawClient>();

  const connect = async (): Promise<WsRawClient> => {
    const c = await WsRawClient.connect(url);
    clients.add(c);
    return c;
  };

  /** Another client logs in and sends the long-lived receiver a message, which arrives. */
  const probe = async (): Promise<void> => {
    const n = ++probes;
    const tx = await connect();
    await tx.login('probe-tx', 'probe-secret', `tx${n}`);
    tx.send(`<message xmlns='jabber:client' to='probe-rx@localhost/rx' id='probe-${n}' type='chat'><body>probe ${n}</body></message>`);
    for (let i = 0; ; i++) {
      const m = await receiver.next(10_000);
      if (m.includes(`id="probe-${n}"`)) {
        assert.match(m, /<body>probe \d+<\/body>/);
        break;
      }
      assert.ok(i < 20, `the probe message did not arrive: ${m}`);
    }
    tx.send(CLOSE);
    await tx.closed(10_000);
    clients.delete(tx);
  };

  const assertNoErrors = (where: string): void => {
    const errors = logs.newErrors();
    assert.deepEqual(errors.map(describeLine), [], `the server logged errors ${where}`);
  };

  before(async () => {
    t = await startServer({
      limits: {
        stanza_size: STANZA_SIZE,
        // Generated cases come fast from one address: shaping and account caps are not what is fuzzed here.
        read_rate_preauth: { bytes_per_second: 1_000_000, burst: 1_000_000 },
        max_sessions_per_account: 0,
      },
      auth: { brute_force: { max_failures: 1_000_000, backoff_after: 1_000_000 } },
      // A session with resumption enabled whose WebSocket closed without <close/> (1007, 1009) waits for the
      // client to resume it (XEP-0198): only briefly here, so the leak check at the end can see it go.
      modules: { smacks: { resume_timeout: 1 } },
    }, { logger: logs.logger });
    for (const u of ['fuzz', 'probe-tx', 'probe-rx']) await t.register(u, u === 'fuzz' ? 'fuzz-secret' : 'probe-secret');
    url = `ws://127.0.0.1:${t.httpPort}/ws`;
    receiver = await connect();
    await receiver.login('probe-rx', 'probe-secret', 'rx');
    baseline = { sessions: t.server.sessions.count, connections: t.server.connectionGuard.open };
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await t.stop();
  });

  it('outgoing elements are standalone documents in jabber:client (standalone, §3.3.3)', () => {
    fc.assert(fc.property(payload, fc.constantFrom('message', 'presence', 'iq', 'stream:features', 'stream:error'), (child, top) => {
      const el = new Element(top, { id: 'x' }, [child]);
      const out = standalone(serialize(el));
      const r = readXml(out);
      assert.ok(r.ok, `${out}: ${r.ok ? '' : r.why}`);
      const root = r.roots[0] as OracleNode;
      assert.equal(root.uri, top.startsWith('stream:') ? NS.STREAM : NS.CLIENT);
      // Nothing else changes: the first start tag gains one declaration.
      assert.equal(out.replace(/ xmlns(:stream)?="[^"]*"/, ''), serialize(el));
    }), fuzzOptions(500));
  });

  it('every generated message gets a well-formed answer, bad ones a stream error and <close/>, and the server lives on', async () => {
    await fc.assert(fc.asyncProperty(wsCase, async (c) => {
      cases++;
      const ws = await connect();
      if (c.stage === 'open') await ws.open();
      else if (c.stage === 'sasl' || c.stage === 'restart') await authenticate(ws, c.stage === 'restart');
      else if (c.stage === 'auth') await ws.login('fuzz', 'fuzz-secret', `f${cases}`);
      // What the stage itself received is not part of the case.
      ws.messages.length = 0;
      let binary = 0;
      ws.ws.on('message', (_d, isBinary) => { if (isBinary) binary++; });
      for (const f of c.frames) {
        if (ws.closeCode !== undefined) break;
        sendFrame(ws, f);
      }
      // After authentication a ping is answered once everything before it was handled, so the answers to the
      // case's stanzas are in before the stream ends.
      if (c.stage === 'auth' && ws.closeCode === undefined) {
        ws.ws.send(utf8(`<iq xmlns='jabber:client' type='get' id='fuzz-barrier' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`), { binary: false });
        await until(() => ws.closeCode !== undefined || ws.messages.some((m) => m.includes('id="fuzz-barrier"')), `the ping after ${show(c)}`);
      }
      // The client ends its stream (§3.6): whatever state the frames left, the connection must end soon.
      if (ws.closeCode === undefined) {
        if (c.end === 'close') ws.ws.send(utf8(CLOSE), { binary: false });
        else if (c.end === 'ws-close') ws.ws.close(1000);
        else ws.ws.terminate();
      }
      const code = await ws.closed(10_000);
      checkTranscript({ messages: [...ws.messages], binary, code }, c);
      clients.delete(ws);
      const condition = /^<stream:error[^>]*><([a-z-]+) /.exec(ws.messages.find((m) => m.startsWith('<stream:error')) ?? '')?.[1];
      const key = `${c.stage}: ${condition ?? `close ${code}`}`;
      stats.set(key, (stats.get(key) ?? 0) + 1);
      assertNoErrors(`after ${show(c)}`);
      if (cases % PROBE_EVERY === 0) await probe();
    }), fuzzOptions(120));
  });

  it('still serves clients afterwards, and every fuzzed session is gone', async () => {
    await probe();
    assertNoErrors('at the end');
    const deadline = Date.now() + 10_000;
    const now = () => ({ sessions: t.server.sessions.count, connections: t.server.connectionGuard.open });
    while (Date.now() < deadline && JSON.stringify(now()) !== JSON.stringify(baseline)) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(now(), baseline, 'sessions and connections back where they were');
    // What the cases came to (stream error conditions, close codes), for a look at what a long run covered.
    if (process.env.FUZZ_RUNS) {
      console.log(`${cases} cases: ${[...stats].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} × ${k}`).join(', ')}`);
      console.log(`server warnings:\n${logs.summary() || 'none'}`);
    }
  });
});
