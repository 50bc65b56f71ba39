// Crash safety: a Parley process is killed with SIGKILL several times while one client sends messages to another,
// both with stream management. Every message the server acknowledged to the sender must reach the receiver, and
// nothing the receiver's acknowledgement was confirmed for may come again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from '@xmpp/xml';
import { RawClient } from '../helpers/raw-client.ts';
import { trust } from '../helpers/server.ts';
import { createSelfSigned } from '../../src/tls/certificates.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'parley.js');
const ROUNDS = 3;
const SM = 'urn:xmpp:sm:3';

type XmlEl = { name: string; attrs: Record<string, string>; getChildText(name: string): string | null };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`parley exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('parley did not start listening');
}

/** A logged-in raw client with stream management; every stanza after <enabled/> is parsed and counted. */
class SmClient {
  readonly raw: RawClient;
  /** Stanzas received since <enabled/> (our 'h'). */
  received = 0;
  /** Server 'h' answers, in order. */
  readonly acks: number[] = [];
  readonly messages: string[] = [];
  private readonly parser = new Parser();
  private ackWaiters: Array<() => void> = [];
  resumeAnswer: string | undefined;

  private constructor(raw: RawClient) {
    this.raw = raw;
    this.parser.on('element', (el: XmlEl) => {
      if (el.attrs.xmlns === SM && el.name === 'a') {
        this.acks.push(Number(el.attrs.h));
        for (const w of this.ackWaiters.splice(0)) w();
        return;
      }
      if (el.attrs.xmlns === SM && el.name === 'r') {
        this.raw.send(`<a xmlns='${SM}' h='${this.received}'/>`);
        return;
      }
      if (el.name === 'message' || el.name === 'presence' || el.name === 'iq') {
        this.received++;
        if (el.name === 'message') {
          const body = el.getChildText('body');
          if (body !== null) this.messages.push(body);
        }
      }
    });
    this.parser.on('error', () => undefined);
  }

  /** SM-ID of a resumable session. */
  id: string | undefined;

  /**
   * Logs in with stream management (resumable when asked). With `previd`, first tries to resume that session
   * and records the answer in `resumeAnswer`.
   */
  static async login(port: number, user: string, opts: { resume?: boolean; previd?: string } = {}): Promise<SmClient> {
    const raw = await RawClient.connect(port);
    await raw.authenticate(user, 'pw');
    let resumeAnswer: string | undefined;
    if (opts.previd !== undefined) {
      raw.send(`<resume xmlns='${SM}' previd='${opts.previd}' h='0'/>`);
      resumeAnswer = (await raw.expect(/<resumed [^>]*\/>|<failed [\s\S]*?<\/failed>/))[0];
    }
    raw.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`);
    await raw.expect(/<\/iq>/);
    raw.send(`<enable xmlns='${SM}'${opts.resume ? " resume='true'" : ''}/>`);
    const enabled = await raw.expect(/<enabled [^>]*\/>/);
    const c = new SmClient(raw);
    c.id = /id=['"]([^'"]+)/.exec(enabled[0])?.[1];
    c.resumeAnswer = resumeAnswer;
    // A synthetic stream header, so the parser sees the rest as children of one root.
    c.parser.write(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`);
    c.parser.write(raw.buffer);
    raw.buffer = '';
    raw.socket.removeAllListeners('data');
    raw.socket.on('data', (d: string | Buffer) => c.parser.write(d.toString()));
    return c;
  }

  /** Sends <r/> and waits for the server's <a/>: it answers only once what it counts is durable. */
  async request(timeoutMs = 5000): Promise<number | undefined> {
    const before = this.acks.length;
    this.raw.send(`<r xmlns='${SM}'/>`);
    const deadline = Date.now() + timeoutMs;
    while (this.acks.length === before && Date.now() < deadline && !this.raw.isClosed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.ackWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.acks.length > before ? this.acks.at(-1) : undefined;
  }
}

/** Every message body in an account's archive, paged through with RSM. */
async function archivedBodies(port: number, user: string): Promise<Set<string>> {
  const raw = await RawClient.connect(port);
  await raw.login(user, 'pw', 'mam');
  const bodies = new Set<string>();
  let after = '';
  for (let page = 0; page < 100; page++) {
    raw.send(`<iq type='set' id='q${page}'><query xmlns='urn:xmpp:mam:2' queryid='p${page}'>` +
      `<set xmlns='http://jabber.org/protocol/rsm'><max>250</max>${after ? `<after>${after}</after>` : ''}</set></query></iq>`);
    const m = await raw.expect(new RegExp(`^([\\s\\S]*?)<iq [^>]*id=["']q${page}["'][\\s\\S]*?</iq>`), 10_000);
    for (const b of (m[1] ?? '').matchAll(/<body>([^<]*)<\/body>/g)) bodies.add(b[1] as string);
    const last = /<last>([^<]+)<\/last>/.exec(m[0]);
    if (/complete=["']true["']/.test(m[0]) || !last) break;
    after = last[1] as string;
  }
  raw.destroy();
  return bodies;
}

test('SIGKILL during load loses no acknowledged message and repeats no confirmed one', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-kill9-'));
  const children: ChildProcess[] = [];
  try {
    const pems = await createSelfSigned(['localhost']);
    writeFileSync(join(dir, 'cert.pem'), pems.cert);
    writeFileSync(join(dir, 'key.pem'), pems.key, { mode: 0o600 });
    trust(pems.cert);
    const port = await freePort();
    const config = join(dir, 'parley.yml');
    writeFileSync(config, JSON.stringify({
      hosts: ['localhost'],
      data_dir: join(dir, 'data'),
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      listen: {
        c2s: { port, bind: '127.0.0.1' },
        c2s_direct_tls: { enabled: false },
        http: { enabled: false },
        https: { enabled: false },
      },
      log: { level: 'warn' },
    }));
    for (const user of ['sender', 'receiver']) {
      execFileSync(process.execPath, [BIN, 'register', user, 'localhost', 'pw', '--config', config], { stdio: 'pipe' });
    }
    const start = async (): Promise<ChildProcess> => {
      const child = spawn(process.execPath, [BIN, 'start', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      child.stderr?.resume();
      await waitForPort(port, child);
      return child;
    };

    /** Message ids the server acknowledged to the sender. */
    const acknowledged = new Set<string>();
    /** Every delivery the receiver saw, in order. */
    const deliveries: string[] = [];
    /** Ids whose receipt the receiver acknowledged and the server then confirmed (answered a later <r/>). */
    const confirmed = new Set<string>();
    const duplicatesOfConfirmed: string[] = [];
    let seq = 0;

    const record = (receiver: SmClient, from: number): void => {
      for (const id of receiver.messages.slice(from)) {
        if (confirmed.has(id)) duplicatesOfConfirmed.push(id);
        deliveries.push(id);
      }
    };

    let previd: string | undefined;
    for (let round = 0; round < ROUNDS; round++) {
      const child = await start();
      const receiver = await SmClient.login(port, 'receiver', { resume: true, previd });
      if (previd !== undefined) {
        // The session that was detached when the server died cannot come back: the client is told so.
        assert.match(receiver.resumeAnswer ?? '', /<failed [\s\S]*item-not-found/);
      }
      previd = receiver.id;
      receiver.raw.send(`<presence/>`); // initial presence: what is stored offline comes now
      const sender = await SmClient.login(port, 'sender');
      const sentThisConnection: string[] = [];
      const killAfter = 400 + round * 250;
      const started = Date.now();
      let seen = 0;
      // Bounded: at most 4,000 messages per round, and the kill comes after killAfter ms.
      const killed = new Promise<void>((resolve) => {
        setTimeout(() => {
          child.kill('SIGKILL');
          child.once('exit', () => resolve());
        }, killAfter);
      });
      let alive = true;
      void killed.then(() => { alive = false; });
      // Halfway, the receiver's connection drops without a word: its session waits detached, and what is sent
      // to it meanwhile exists only in the server until the client comes back.
      let dropped = false;
      const dropAfter = killAfter / 2;
      while (alive && !sender.raw.isClosed && sentThisConnection.length < 4000 && Date.now() - started < 10_000) {
        for (let i = 0; i < 20; i++) {
          const id = `m${++seq}`;
          sentThisConnection.push(id);
          sender.raw.send(`<message to='receiver@localhost' type='chat' id='${id}'><body>${id}</body></message>`);
        }
        const h = await sender.request(1000);
        if (h !== undefined) for (const id of sentThisConnection.slice(0, h)) acknowledged.add(id);
        if (!dropped && Date.now() - started >= dropAfter) {
          dropped = true;
          record(receiver, seen);
          seen = receiver.messages.length;
          receiver.raw.destroy();
        }
        if (dropped) continue;
        // The receiver acknowledges what it has, then learns (from the answer to its <r/>) that the server took it.
        const upTo = receiver.messages.length;
        receiver.raw.send(`<a xmlns='${SM}' h='${receiver.received}'/>`);
        if ((await receiver.request(1000)) !== undefined) {
          for (const id of receiver.messages.slice(seen, upTo)) {
            if (confirmed.has(id)) duplicatesOfConfirmed.push(id);
            deliveries.push(id);
            confirmed.add(id);
          }
          seen = upTo;
        }
      }
      await killed;
      record(receiver, seen);
      receiver.raw.destroy();
      sender.raw.destroy();
      assert.ok(sentThisConnection.length > 0, `round ${round}: nothing was sent before the kill`);
    }

    // After the last kill: a clean start, and the receiver collects what waits for it.
    const child = await start();
    const receiver = await SmClient.login(port, 'receiver', { previd });
    assert.match(receiver.resumeAnswer ?? '', /<failed [\s\S]*item-not-found/);
    receiver.raw.send(`<presence/>`);
    let last = -1;
    for (let i = 0; i < 100 && receiver.messages.length !== last; i++) {
      last = receiver.messages.length;
      await new Promise((r) => setTimeout(r, 300));
      receiver.raw.send(`<a xmlns='${SM}' h='${receiver.received}'/>`);
    }
    await receiver.request();
    record(receiver, 0);
    receiver.raw.destroy();
    // The sender's own archive (XEP-0313) holds every message it was acknowledged for, too.
    const archived = await archivedBodies(port, 'sender');
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));

    const notArchived = [...acknowledged].filter((id) => !archived.has(id));
    assert.deepEqual(notArchived, [], `${notArchived.length} acknowledged messages are missing from the sender's archive`);
    const delivered = new Set(deliveries);
    const lost = [...acknowledged].filter((id) => !delivered.has(id));
    assert.ok(acknowledged.size > 0, 'the server acknowledged nothing');
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.size} acknowledged messages were lost`);
    assert.deepEqual(duplicatesOfConfirmed, [], 'messages whose acknowledgement the server had confirmed came again');
    const perId = new Map<string, number>();
    for (const id of deliveries) perId.set(id, (perId.get(id) ?? 0) + 1);
    process.stderr.write(`# kill -9 x${ROUNDS}: ${seq} sent, ${acknowledged.size} acknowledged, ${delivered.size} delivered, ` +
      `${deliveries.length - delivered.size} redelivered (unconfirmed), 0 lost\n`);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
