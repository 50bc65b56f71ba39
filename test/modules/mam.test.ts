// XEP-0313 message archive: both directions archived once, XEP-0359 stanza-ids (and their spoofing refused),
// XEP-0059 paging both ways, the query filters, XEP-0441 preferences and access to one's own archive only.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { connectClient, xml as xxml, type TestClient } from '../helpers/xmpp-client.ts';
import type { Element } from '../../src/xml/element.ts';
import { StreamParser } from '../../src/xml/parser.ts';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { storageContract } from '../storage/contract.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAM = 'urn:xmpp:mam:2';
const SID = 'urn:xmpp:sid:0';
const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/** Every whole stanza in a piece of a stream (the tail of an element read before is skipped). */
function parseAll(text: string): Element[] {
  const out: Element[] = [];
  const start = text.search(/<(message|presence|iq)[\s>/]/);
  if (start < 0) return out;
  const parser = new StreamParser({
    streamStart: () => undefined,
    stanza: (el) => { out.push(el); },
    streamEnd: () => undefined,
    error: (err) => { throw err; },
  }, { maxStanzaBytes: 1 << 24, maxDepth: 64, maxAttrs: 256 });
  parser.write(Buffer.from(HEADER + text.slice(start), 'utf8'));
  return out;
}

type Result = { id: string; queryid: string | undefined; stamp: string; message: Element; wrapper: Element };
type QueryReply = { results: Result[]; iq: Element; fin: Element | undefined; set: Element | undefined };

let seq = 0;

/** Sends an IQ and returns what arrived before its reply, and the reply. */
async function iq(c: RawClient, type: 'get' | 'set', payload: string, to?: string): Promise<{ before: Element[]; iq: Element }> {
  const id = `iq${++seq}`;
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${to}'` : ''}>${payload}</iq>`);
  const m = await c.expect(new RegExp(`^([\\s\\S]*?)(<iq [^>]*id="${id}"(?:[^>]*/>|[\\s\\S]*?</iq>))`));
  return { before: parseAll(m[1] as string), iq: parseAll(m[2] as string)[0] as Element };
}

/** A MAM query: the result messages (checked for their shape) and the final IQ. */
async function query(c: RawClient, inner = '', opts: { to?: string; queryid?: string } = {}): Promise<QueryReply> {
  const queryid = opts.queryid ?? `q${seq + 1}`;
  const r = await iq(c, 'set', `<query xmlns='${MAM}' queryid='${queryid}'>${inner}</query>`, opts.to);
  const results: Result[] = [];
  for (const m of r.before) {
    const result = m.getChild('result', MAM);
    if (m.name !== 'message' || !result) continue;
    const forwarded = result.getChild('forwarded', 'urn:xmpp:forward:0');
    const message = forwarded?.getChild('message', 'jabber:client');
    const stamp = forwarded?.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp;
    assert.ok(message && stamp, `a well-formed result: ${m.toString()}`);
    results.push({ id: result.attrs.id as string, queryid: result.attrs.queryid, stamp, message, wrapper: m });
  }
  const fin = r.iq.getChild('fin', MAM);
  return { results, iq: r.iq, fin, set: fin?.getChild('set', 'http://jabber.org/protocol/rsm') };
}

const bodies = (r: QueryReply): string[] => r.results.map((x) => x.message.getChildText('body') ?? '?');
const rsm = (max: number, extra = ''): string => `<set xmlns='http://jabber.org/protocol/rsm'><max>${max}</max>${extra}</set>`;
const form = (fields: Record<string, string | string[]>): string =>
  `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>${MAM}</value></field>${
    Object.entries(fields).map(([k, v]) => `<field var='${k}'>${(Array.isArray(v) ? v : [v]).map((x) => `<value>${x}</value>`).join('')}</field>`).join('')}</x>`;
const errorOf = (el: Element): string | undefined => el.getChild('error')?.getElements()[0]?.name;

const ping = async (c: RawClient): Promise<void> => {
  const r = await iq(c, 'get', "<ping xmlns='urn:xmpp:ping'/>", 'localhost');
  assert.equal(r.iq.attrs.type, 'result');
};

describe('message archive (XEP-0313)', () => {
  let t: TestServer;
  const open: RawClient[] = [];
  let n = 0;
  before(async () => {
    // Thousands of messages are sent at once: no read shaping or stanza rate in the way.
    t = await startServer({ modules: { mam: { fulltext: true } }, limits: { read_rate: { bytes_per_second: 0 }, stanza_rate: { per_second: 0 } } });
  });
  after(async () => {
    for (const c of open) c.destroy();
    await t.stop();
  });

  async function users(...names: string[]): Promise<string[]> {
    n++;
    const out = names.map((x) => `${x}${n}`);
    for (const u of out) await t.register(u, 'pw');
    return out;
  }
  async function login(user: string, resource = 'r', presence = true): Promise<RawClient> {
    const c = await RawClient.connect(t.port);
    open.push(c);
    await c.login(user, 'pw', resource);
    if (presence) {
      c.send('<presence/>');
      await c.expect(new RegExp(`<presence from="${user}@localhost/${resource}"`));
    }
    return c;
  }
  /** Sends a chat message and waits for the recipient to get it; returns it as received. */
  async function chat(from: RawClient, to: RawClient | undefined, toJid: string, body: string, extra = ''): Promise<Element | undefined> {
    const id = `m${++seq}`;
    from.send(`<message to='${toJid}' type='chat' id='${id}'><body>${body}</body>${extra}</message>`);
    if (!to) return undefined;
    const m = await to.expect(new RegExp(`<message [^>]*id="${id}"[\\s\\S]*?</message>`));
    return parseAll(m[0])[0];
  }

  it('archives both directions and stamps the recipient\'s stanza-id', async () => {
    const [a, b] = await users('alice', 'bob');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const received = await chat(ca, cb, `${b}@localhost`, 'Hello Bob');
    const sids = received?.getChildren('stanza-id', SID) ?? [];
    assert.equal(sids.length, 1);
    assert.equal(sids[0]?.attrs.by, `${b}@localhost`);
    const stamped = sids[0]?.attrs.id as string;
    await chat(cb, ca, `${a}@localhost`, 'Hi Alice');

    const mine = await query(ca);
    assert.deepEqual(bodies(mine), ['Hello Bob', 'Hi Alice']);
    assert.equal(mine.results[0]?.queryid, mine.results[1]?.queryid);
    assert.deepEqual(mine.results.map((r) => [r.message.attrs.from, r.message.attrs.to]), [
      [`${a}@localhost/r`, `${b}@localhost`],
      [`${b}@localhost/r`, `${a}@localhost`],
    ]);
    assert.equal(mine.results[0]?.wrapper.attrs.to, `${a}@localhost/r`);
    assert.equal(mine.results[0]?.wrapper.attrs.from, `${a}@localhost`);
    assert.match(mine.results[0]?.stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(mine.fin?.attrs.complete, 'true');
    assert.equal(mine.set?.getChildText('count'), '2');
    assert.equal(mine.set?.getChild('first')?.attrs.index, '0');
    assert.equal(mine.set?.getChildText('first'), mine.results[0]?.id);
    assert.equal(mine.set?.getChildText('last'), mine.results[1]?.id);

    const theirs = await query(cb);
    assert.deepEqual(bodies(theirs), ['Hello Bob', 'Hi Alice']);
    assert.equal(theirs.results[0]?.id, stamped, 'the stanza-id is the archive id');
    // The outgoing copy reached Alice without Bob's archive id of it: only the archive's owner sees those.
    const aliceGot = ca.buffer;
    assert.doesNotMatch(aliceGot, new RegExp(`by="${b}@localhost"`));
  });

  it('drops stanza-ids a client claims for an archive', async () => {
    const [a, b] = await users('sa', 'sb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const received = await chat(ca, cb, `${b}@localhost`, 'spoof',
      `<stanza-id xmlns='${SID}' by='${b}@localhost' id='forged'/><stanza-id xmlns='${SID}' by='${a}@localhost' id='forged-too'/>` +
      `<stanza-id xmlns='${SID}' by='muc.example' id='foreign'/>`);
    const sids = (received?.getChildren('stanza-id', SID) ?? []).map((s) => [s.attrs.by, s.attrs.id]);
    assert.equal(sids.length, 2);
    assert.deepEqual(sids[0], ['muc.example', 'foreign'], 'other entities\' ids pass through');
    assert.equal(sids[1]?.[0], `${b}@localhost`);
    assert.notEqual(sids[1]?.[1], 'forged');
    const mine = await query(ca);
    const kept = mine.results[0]?.message.getChildren('stanza-id', SID).map((s) => s.attrs.by);
    assert.deepEqual(kept, ['muc.example']);
    // A message not archived (no body) is still cleaned.
    cb.send(`<message to='${a}@localhost' type='chat' id='cs1'><active xmlns='http://jabber.org/protocol/chatstates'/><stanza-id xmlns='${SID}' by='${a}@localhost' id='x'/></message>`);
    const cs = await ca.expect(/<message [^>]*id="cs1"[\s\S]*?<\/message>/);
    assert.doesNotMatch(cs[0], /stanza-id/);
  });

  it('archives a message once per account: several resources, offline storage', async () => {
    const [a, b, c] = await users('oa', 'ob', 'oc');
    const ca = await login(a as string);
    const b1 = await login(b as string, 'one');
    const b2 = await login(b as string, 'two');
    const got1 = await chat(ca, b1, `${b}@localhost`, 'to both');
    const m2 = await b2.expect(/<message [^>]*type="chat"[\s\S]*?<\/message>/);
    const got2 = parseAll(m2[0])[0];
    const id1 = got1?.getChild('stanza-id', SID)?.attrs.id;
    assert.ok(id1);
    assert.equal(got2?.getChild('stanza-id', SID)?.attrs.id, id1);
    const bArchive = await query(b1);
    assert.deepEqual(bArchive.results.map((r) => r.id), [id1]);

    // Carol is offline: both messages wait in offline storage, stamped, and are archived once.
    await chat(ca, undefined, `${c}@localhost`, 'while you were out 1');
    await chat(ca, undefined, `${c}@localhost`, 'while you were out 2');
    await ping(ca);
    const cc = await login(c as string, 'r', false);
    cc.send('<presence/>');
    const delivered: Element[] = [];
    for (let i = 0; i < 2; i++) delivered.push(parseAll((await cc.expect(/<message [^>]*>[\s\S]*?<\/message>/))[0])[0] as Element);
    const stamped = delivered.map((m) => m.getChild('stanza-id', SID)?.attrs.id);
    assert.ok(stamped.every((x) => typeof x === 'string'));
    assert.ok(delivered.every((m) => m.getChild('delay', 'urn:xmpp:delay') !== undefined), 'they did come from offline storage');
    const cArchive = await query(cc);
    assert.deepEqual(bodies(cArchive), ['while you were out 1', 'while you were out 2']);
    assert.deepEqual(cArchive.results.map((r) => r.id), stamped);
    assert.equal(cArchive.set?.getChildText('count'), '2');
  });

  it('pages forwards and backwards through thousands of messages', async () => {
    const [a, b] = await users('pa', 'pb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const total = 3000;
    for (let i = 1; i <= total; i++) {
      ca.send(`<message to='${b}@localhost' type='chat' id='p${i}'><body>n${i}</body></message>`);
      if (i % 500 === 0) await ping(ca);
    }
    await cb.expect(new RegExp(`id="p${total}"`));
    cb.buffer = '';
    const expected = Array.from({ length: total }, (_, i) => `n${i + 1}`);

    // Forwards, 250 at a time, from the start.
    const forward: Result[] = [];
    let after = '';
    for (let page = 0; ; page++) {
      const r = await query(ca, rsm(250, after ? `<after>${after}</after>` : ''));
      assert.equal(r.set?.getChildText('count'), String(total));
      assert.equal(r.set?.getChildText('first'), r.results[0]?.id);
      assert.equal(r.set?.getChildText('last'), r.results.at(-1)?.id);
      forward.push(...r.results);
      const done = forward.length === total;
      // The index, when given (the server may leave it out where counting would cost), is exact; it is always
      // given next to either end.
      const index = r.set?.getChild('first')?.attrs.index;
      if (index !== undefined || page < 2 || done) assert.equal(index, String(page * 250));
      assert.equal(r.fin?.attrs.complete, done ? 'true' : undefined, `complete only on the last page (page ${page})`);
      if (done) break;
      after = r.set?.getChildText('last') as string;
    }
    assert.deepEqual(forward.map((r) => r.message.getChildText('body')), expected);
    assert.equal(new Set(forward.map((r) => r.id)).size, total);

    // Backwards from the end: each page oldest first, pages newest first; the same ids.
    const pages: Result[][] = [];
    let before = '';
    for (;;) {
      const r = await query(ca, rsm(240, before ? `<before>${before}</before>` : '<before/>'));
      pages.push(r.results);
      const seen = pages.reduce((s, p) => s + p.length, 0);
      const index = r.set?.getChild('first')?.attrs.index;
      if (index !== undefined || pages.length < 3 || seen === total) assert.equal(index, String(total - seen));
      assert.equal(r.fin?.attrs.complete, seen === total ? 'true' : undefined);
      if (seen === total) break;
      before = r.set?.getChildText('first') as string;
    }
    assert.equal(pages[0]?.length, 240);
    assert.equal(pages.at(-1)?.length, total % 240);
    const backward = pages.reverse().flat();
    assert.deepEqual(backward.map((r) => r.id), forward.map((r) => r.id));

    // A page by index, the count alone, flipped pages, and an unknown id.
    assert.deepEqual(bodies(await query(ca, rsm(3, '<index>1500</index>'))), ['n1501', 'n1502', 'n1503']);
    const counted = await query(ca, rsm(0));
    assert.deepEqual([counted.results.length, counted.set?.getChildText('count'), counted.fin?.attrs.complete], [0, String(total), undefined]);
    const flipped = await query(ca, `${rsm(3, '<before/>')}<flip-page/>`);
    assert.deepEqual(bodies(flipped), ['n3000', 'n2999', 'n2998']);
    assert.equal(flipped.set?.getChildText('first'), forward[2997]?.id, 'first and last stay chronological');
    const missing = await query(ca, rsm(10, '<after>AAAAAAAAAAAAAAAAAAAAAA</after>'));
    assert.equal(missing.iq.attrs.type, 'error');
    assert.equal(errorOf(missing.iq), 'item-not-found');
    assert.equal(missing.results.length, 0);
    // Without <max/> the server's page size applies (50), and no page is longer than its maximum (250).
    const dflt = await query(ca);
    assert.deepEqual([dflt.results.length, dflt.fin?.attrs.complete], [50, undefined]);
    assert.equal((await query(ca, rsm(1000))).results.length, 250);
  });

  it('filters by peer, time, ids, before-id/after-id and text', async () => {
    const [a, b, c] = await users('fa', 'fb', 'fc');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const cc = await login(c as string, 'phone');
    const stamps: number[] = [];
    // Messages a few milliseconds apart, so times draw clear lines between them.
    const send = async (from: RawClient, to: RawClient, toJid: string, body: string): Promise<void> => {
      await chat(from, to, toJid, body);
      const at = Date.now();
      while (Date.now() < at + 3) await new Promise((r) => setTimeout(r, 1));
    };
    await send(ca, cb, `${b}@localhost`, 'one to bob');
    await send(cc, ca, `${a}@localhost`, 'two from carol with bananas');
    await send(ca, cb, `${b}@localhost/r`, 'three to bob');
    await send(ca, cc, `${c}@localhost`, 'four to carol');
    const all = await query(ca);
    assert.deepEqual(bodies(all), ['one to bob', 'two from carol with bananas', 'three to bob', 'four to carol']);
    for (const r of all.results) stamps.push(Date.parse(r.stamp));
    const ids = all.results.map((r) => r.id);

    assert.deepEqual(bodies(await query(ca, form({ with: `${b}@localhost` }))), ['one to bob', 'three to bob']);
    assert.deepEqual(bodies(await query(ca, form({ with: `${b}@localhost/r` }))), ['three to bob']);
    assert.deepEqual(bodies(await query(ca, form({ with: `${c}@localhost` }))), ['two from carol with bananas', 'four to carol']);
    assert.deepEqual(bodies(await query(ca, form({ with: `${c}@localhost/phone` }))), ['two from carol with bananas']);
    const iso = (ms: number): string => new Date(ms).toISOString();
    assert.deepEqual(bodies(await query(ca, form({ start: iso(stamps[1] as number) }))), ['two from carol with bananas', 'three to bob', 'four to carol']);
    assert.deepEqual(bodies(await query(ca, form({ end: iso(stamps[1] as number) }))), ['one to bob', 'two from carol with bananas']);
    assert.deepEqual(bodies(await query(ca, form({ start: iso(stamps[1] as number), end: iso(stamps[2] as number), with: `${b}@localhost` }))), ['three to bob']);
    // A time zone offset is the same instant.
    const offset = new Date((stamps[3] as number) + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    assert.deepEqual(bodies(await query(ca, form({ start: offset }))), ['four to carol']);
    assert.deepEqual(bodies(await query(ca, form({ ids: [ids[3] as string, ids[0] as string] }))), ['one to bob', 'four to carol']);
    assert.deepEqual(bodies(await query(ca, form({ 'after-id': ids[0] as string, 'before-id': ids[3] as string }))), ['two from carol with bananas', 'three to bob']);
    // before-id bounds the set without paging backwards; RSM <before/> pages within it.
    const bounded = await query(ca, form({ 'before-id': ids[3] as string }) + rsm(1));
    assert.deepEqual([bodies(bounded), bounded.set?.getChildText('count')], [['one to bob'], '3']);
    assert.deepEqual(bodies(await query(ca, form({ 'before-id': ids[3] as string }) + rsm(1, '<before/>'))), ['three to bob']);
    assert.deepEqual(bodies(await query(ca, form({ '{urn:xmpp:fulltext:0}fulltext': 'BANANAS' }))), ['two from carol with bananas']);
    assert.deepEqual(bodies(await query(ca, form({ '{urn:xmpp:fulltext:0}fulltext': 'bob three' }))), ['three to bob']);

    const fail = async (inner: string, condition: string): Promise<void> => {
      const r = await query(ca, inner);
      assert.equal(r.iq.attrs.type, 'error', inner);
      assert.equal(errorOf(r.iq), condition, inner);
    };
    await fail(form({ ids: [ids[0] as string, 'unknown'] }), 'item-not-found');
    await fail(form({ 'after-id': 'unknown' }), 'item-not-found');
    await fail(form({ 'include-groupchat': 'true' }), 'feature-not-implemented');
    await fail(form({ start: 'yesterday' }), 'bad-request');
    await fail(form({ with: 'not@a@jid' }), 'jid-malformed');
    await fail(rsm(10).replace('10', '-1'), 'bad-request');
  });

  it('offers its form, metadata and features on the account only', async () => {
    const [a, b] = await users('ma', 'mb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const empty = await iq(ca, 'get', `<metadata xmlns='${MAM}'/>`);
    assert.equal(empty.iq.getChild('metadata', MAM)?.getElements().length, 0);
    await chat(ca, cb, `${b}@localhost`, 'first');
    await chat(ca, cb, `${b}@localhost`, 'second');
    const ids = (await query(ca)).results.map((r) => r.id);
    const meta = (await iq(ca, 'get', `<metadata xmlns='${MAM}'/>`)).iq.getChild('metadata', MAM);
    assert.deepEqual([meta?.getChild('start')?.attrs.id, meta?.getChild('end')?.attrs.id], ids);
    assert.match(meta?.getChild('end')?.attrs.timestamp ?? '', /^\d{4}-\d\d-\d\dT/);

    const f = (await iq(ca, 'get', `<query xmlns='${MAM}'/>`)).iq.getChild('query', MAM)?.getChild('x', 'jabber:x:data');
    const vars = f?.getChildren('field').map((x) => x.attrs.var);
    assert.deepEqual(vars, ['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids', '{urn:xmpp:fulltext:0}fulltext']);
    assert.ok(f?.getChildren('field').every((x) => !x.getChild('required')));

    const features = async (to: string): Promise<string[]> =>
      ((await iq(ca, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>", to)).iq.getChild('query')?.getChildren('feature') ?? [])
        .map((x) => x.attrs.var as string);
    const account = await features(`${a}@localhost`);
    for (const f of [MAM, `${MAM}#extended`, SID, 'urn:xmpp:fulltext:0']) assert.ok(account.includes(f), f);
    assert.ok(!(await features('localhost')).includes(MAM), 'the host keeps no archive');
  });

  it('refuses access to another user\'s archive', async () => {
    const [a, b] = await users('xa', 'xb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    await chat(cb, ca, `${a}@localhost`, 'private');
    const r = await query(ca, '', { to: `${b}@localhost` });
    assert.equal(r.iq.attrs.type, 'error');
    assert.equal(errorOf(r.iq), 'forbidden');
    assert.equal(r.results.length, 0);
    for (const payload of [`<prefs xmlns='${MAM}'/>`, `<metadata xmlns='${MAM}'/>`]) {
      assert.equal(errorOf((await iq(ca, 'get', payload, `${b}@localhost`)).iq), 'forbidden');
    }
    assert.equal(errorOf((await iq(ca, 'set', `<prefs xmlns='${MAM}' default='never'/>`, `${b}@localhost`)).iq), 'forbidden');
    assert.equal((await query(ca, '', { to: `${a}@localhost` })).results.length, 1, 'one\'s own bare JID is fine');
  });

  it('follows the preferences: never, always and roster', async () => {
    const [a, b, c] = await users('ra', 'rb', 'rc');
    const ca = await login(a as string);
    const cb = await login(b as string);
    const cc = await login(c as string);
    const got = await iq(ca, 'get', `<prefs xmlns='${MAM}'/>`);
    assert.equal(got.iq.getChild('prefs', MAM)?.toString(), `<prefs xmlns="${MAM}" default="always"><always/><never/></prefs>`);

    const set = await iq(ca, 'set', `<prefs xmlns='${MAM}' default='always'><always/><never><jid>${c}@localhost</jid></never></prefs>`);
    assert.equal(set.iq.getChild('prefs', MAM)?.toString(), `<prefs xmlns="${MAM}" default="always"><always/><never><jid>${c}@localhost</jid></never></prefs>`);
    const fromCarol = await chat(cc, ca, `${a}@localhost`, 'not for the record');
    assert.equal(fromCarol?.getChild('stanza-id', SID), undefined, 'nothing archived, nothing stamped');
    await chat(ca, cc, `${c}@localhost/r`, 'nor this');
    await chat(cb, ca, `${a}@localhost`, 'on the record');
    assert.deepEqual(bodies(await query(ca)), ['on the record']);
    // Carol's own archive has her side: the preference is Alice's.
    assert.deepEqual(bodies(await query(cc)), ['not for the record', 'nor this']);

    // roster: only contacts in Alice's roster; always overrides it.
    await iq(ca, 'set', `<query xmlns='jabber:iq:roster'><item jid='${b}@localhost'/></query>`);
    await iq(ca, 'set', `<prefs xmlns='${MAM}' default='roster'><always><jid>${c}@localhost/r</jid></always></prefs>`);
    await chat(cb, ca, `${a}@localhost`, 'from a contact');
    await chat(cc, ca, `${a}@localhost`, 'always from that resource');
    const [d] = await users('rd');
    const cd = await login(d as string);
    await chat(cd, ca, `${a}@localhost`, 'from a stranger');
    assert.deepEqual(bodies(await query(ca)), ['on the record', 'from a contact', 'always from that resource']);

    assert.equal(errorOf((await iq(ca, 'set', `<prefs xmlns='${MAM}' default='sometimes'/>`)).iq), 'bad-request');
    await iq(ca, 'set', `<prefs xmlns='${MAM}' default='never'/>`);
    await chat(cb, ca, `${a}@localhost`, 'off');
    assert.equal((await query(ca)).results.length, 3);
  });

  it('does not archive what is not a conversation', async () => {
    const [a, b] = await users('na', 'nb');
    const ca = await login(a as string);
    const cb = await login(b as string);
    ca.send(`<message to='${b}@localhost' type='chat' id='c1'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    ca.send(`<message to='${b}@localhost' type='headline' id='c2'><body>news</body></message>`);
    ca.send(`<message to='${b}@localhost' type='chat' id='c3'><body>secret</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`);
    ca.send(`<message to='${b}@localhost' type='chat' id='c4'><body>secret too</body><no-store xmlns='urn:xmpp:hints'/></message>`);
    ca.send(`<message to='${b}@localhost' id='c5'><body>a normal message</body></message>`);
    ca.send(`<message to='${b}@localhost' type='chat' id='c6'><store xmlns='urn:xmpp:hints'/><encrypted xmlns='eu.siacs.conversations.axolotl'/></message>`);
    await cb.expect(/id="c6"/);
    assert.deepEqual((await query(ca)).results.map((r) => r.message.attrs.id), ['c5', 'c6']);
    assert.deepEqual((await query(cb)).results.map((r) => r.message.attrs.id), ['c5', 'c6']);
  });
});

describe('message archive retention', () => {
  it('removes messages older than the retention period', async () => {
    // 0.00002 days is 1.7 s; the purge runs every second.
    const t = await startServer({ modules: { mam: { retention_days: 0.00002, purge_interval: 1 } } });
    try {
      await t.register('alice', 'pw');
      await t.register('bob', 'pw');
      const a = await RawClient.connect(t.port);
      await a.login('alice', 'pw');
      a.send(`<message to='bob@localhost' type='chat' id='old'><body>soon gone</body></message>`);
      await ping(a);
      assert.equal((await query(a)).results.length, 1);
      const deadline = Date.now() + 10_000;
      let left = 1;
      while (left > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        left = (await query(a)).results.length;
      }
      assert.equal(left, 0);
      a.destroy();
    } finally {
      await t.stop();
    }
  });
});

describe('message archive with xmpp.js', () => {
  let t: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    t = await startServer();
    await t.register('alice', 'alice-secret');
    await t.register('bob', 'bob-secret');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('archives what an independent client sends; a raw query pages through it', async () => {
    const alice = await connectClient({ port: t.port, username: 'alice', password: 'alice-secret', resource: 'js' });
    const bob = await connectClient({ port: t.port, username: 'bob', password: 'bob-secret', resource: 'js' });
    clients.push(alice, bob);
    await bob.xmpp.send(xxml('presence'));
    await bob.next((s) => s.is('presence'));
    for (let i = 1; i <= 5; i++) {
      await alice.xmpp.send(xxml('message', { to: 'bob@localhost', type: 'chat', id: `js${i}` }, xxml('body', {}, `from xmpp.js ${i}`)));
    }
    const stamped: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const m = await bob.next((s) => s.is('message') && s.attrs.id === `js${i}`);
      const sid = m.getChild('stanza-id', SID);
      assert.equal(sid?.attrs.by, 'bob@localhost');
      stamped.push(sid?.attrs.id as string);
    }

    // xmpp.js queries Bob's archive itself: results arrive before the IQ result.
    const results: string[] = [];
    bob.xmpp.on('stanza', (s) => {
      const r = s.getChild('result', MAM);
      if (s.is('message') && r?.attrs.queryid === 'js-q') results.push(r.attrs.id as string);
    });
    const fin = await bob.xmpp.iqCaller.request(xxml('iq', { type: 'set' }, xxml('query', { xmlns: MAM, queryid: 'js-q' },
      xxml('set', { xmlns: 'http://jabber.org/protocol/rsm' }, xxml('max', {}, '3'), xxml('before', {})))));
    assert.deepEqual(results, stamped.slice(2));
    assert.equal(fin.getChild('fin', MAM)?.getChild('set')?.getChildText('count'), '5');

    // A raw client reads Alice's side, two pages backwards.
    const raw = await RawClient.connect(t.port);
    try {
      await raw.login('alice', 'alice-secret', 'raw');
      const last = await query(raw, rsm(3, '<before/>'));
      assert.deepEqual(bodies(last), ['from xmpp.js 3', 'from xmpp.js 4', 'from xmpp.js 5']);
      assert.equal(last.fin?.attrs.complete, undefined);
      const earlier = await query(raw, rsm(3, `<before>${last.set?.getChildText('first')}</before>`));
      assert.deepEqual(bodies(earlier), ['from xmpp.js 1', 'from xmpp.js 2']);
      assert.equal(earlier.fin?.attrs.complete, 'true');
      assert.ok(earlier.results.every((r) => r.message.attrs.from === 'alice@localhost/js'));
      // Search is off by default: its field is not offered, and a query using it is refused.
      const fields = (await iq(raw, 'get', `<query xmlns='${MAM}'/>`)).iq.getChild('query', MAM)?.getChild('x', 'jabber:x:data')?.getChildren('field');
      assert.ok(fields && !fields.some((f) => f.attrs.var === '{urn:xmpp:fulltext:0}fulltext'));
      const search = await query(raw, form({ '{urn:xmpp:fulltext:0}fulltext': 'xmpp.js' }));
      assert.equal(errorOf(search.iq), 'feature-not-implemented');
    } finally {
      raw.destroy();
    }
  });
});

// A database file has its archive written by a worker thread: the same contract, and nothing lost at close.
const fileDir = mkdtempSync(join(tmpdir(), 'parley-archive-'));
process.once('exit', () => rmSync(fileDir, { recursive: true, force: true }));
let files = 0;
storageContract('sqlite (file, archive written by its writer thread)', () => new SqliteStorage(join(fileDir, `c${++files}.db`)));

describe('archive storage on a file', () => {
  it('writes every appended message before close() returns, and keeps ids across a reopen', async () => {
    const path = join(fileDir, 'durable.db');
    const a = new SqliteStorage(path);
    const ids: string[] = [];
    for (let i = 0; i < 2000; i++) {
      ids.push((await a.archive.append('h.test', 'u', { with: 'p@h.test', direction: 'out', stanza: `<message><body>${i}</body></message>`, text: `word${i}` })).id);
    }
    a.close(); // no read before: close itself must wait for the writer
    const b = new SqliteStorage(path);
    try {
      const page = await b.archive.query('h.test', 'u', {}, { max: 5, before: '' });
      assert.equal(page.count, 2000);
      assert.deepEqual(page.messages.map((m) => m.id), ids.slice(-5));
      assert.deepEqual((await b.archive.query('h.test', 'u', { text: 'word1999' }, { max: 5 })).messages.map((m) => m.id), [ids[1999]]);
      const next = await b.archive.append('h.test', 'u', { with: 'p@h.test', direction: 'out', stanza: '<message><body>new</body></message>' });
      assert.ok(!ids.includes(next.id));
      assert.equal((await b.archive.query('h.test', 'u', {}, { max: 1, before: '' })).messages[0]?.id, next.id, 'new ids sort after old ones');
    } finally {
      b.close();
    }
  });
});
