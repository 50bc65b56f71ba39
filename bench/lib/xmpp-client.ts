// RFC 6120 (streams, STARTTLS, SASL, bind) and RFC 6121 (roster, presence): a lean client for load generation.
// Elements are strings matched by name and attributes; nothing is parsed into trees, so thousands of sessions
// and tens of thousands of stanzas a second cost the generator little.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { NS } from '../../src/xml/ns.ts';
import { ScramClient, plainMessage, type ScramHashName } from './scram.ts';
import { Splitter, attr, childText, elementName, escapeXml, hasChild } from './splitter.ts';

/** Namespaces the generator speaks that the server core does not (yet). */
export const BENCH_NS = {
  SM: 'urn:xmpp:sm:3',
  MAM: 'urn:xmpp:mam:2',
  RSM: 'http://jabber.org/protocol/rsm',
} as const;

export const TLS_MODES = ['starttls', 'none', 'direct'] as const;
export type TlsMode = (typeof TLS_MODES)[number];
export const MECHANISMS = ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'PLAIN'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

export type ClientOptions = {
  host: string;
  port: number;
  domain: string;
  tls: TlsMode;
  mech: Mechanism;
  localAddress?: string | undefined;
  username: string;
  password: string;
  /** XEP-0198: enable stream management, answer <r/> and count inbound stanzas. */
  sm?: boolean;
  /** Fetch the roster and send initial presence (a full login, as a chat client does). Default true. */
  rosterAndPresence?: boolean;
  timeoutMs?: number;
};

type Pending = { match: (el: string) => boolean; resolve: (el: string) => void; reject: (err: Error) => void };

const noop = (): void => undefined;

export class BenchClient {
  readonly opts: ClientOptions;
  /** The full JID the server bound. */
  jid = '';
  /** The bare JID. */
  bare: string;
  closed = false;
  /** Called for every top-level element once logged in (stream errors included). */
  onStanza: (el: string) => void = noop;
  /** Called once when the connection is gone, whoever closed it. */
  onClose: (error: Error | undefined) => void = noop;

  private socket: Socket;
  private readonly splitter: Splitter;
  private pending: Pending | undefined;
  private ready = false;
  private step = 'connect';
  private error: Error | undefined;
  private smEnabled = false;
  private smInbound = 0;
  private closeWaiters: Array<() => void> = [];
  /** Our </stream:stream> went out (or the server's came in and we answered): nothing more may be written. */
  private ending = false;
  /** IQs sent with request(), several at a time, by id. */
  private requests: Map<string, Pending> | undefined;
  private readonly onData = (chunk: string): void => this.splitter.write(chunk);

  private constructor(opts: ClientOptions, socket: Socket) {
    this.opts = opts;
    this.bare = `${opts.username}@${opts.domain}`;
    this.socket = socket;
    this.splitter = new Splitter({
      header: noop,
      element: (el) => this.onElement(el),
      end: () => this.onServerEnd(),
    });
    this.attach(socket);
  }

  /** Connects and logs in; rejects with an Error naming the step that failed. */
  static async login(opts: ClientOptions): Promise<BenchClient> {
    const client = await BenchClient.connect(opts);
    const timer = setTimeout(() => client.fail(new Error(`timed out after ${opts.timeoutMs ?? 30000} ms`)), opts.timeoutMs ?? 30000);
    try {
      await client.negotiate();
      return client;
    } catch (err) {
      client.destroy();
      throw new Error(`${opts.username}: ${client.step}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  private static connect(opts: ClientOptions): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const local = opts.localAddress === undefined ? {} : { localAddress: opts.localAddress };
      const socket = opts.tls === 'direct'
        ? tlsConnect({
          host: opts.host, port: opts.port, ...local, servername: opts.domain,
          rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'],
        })
        : netConnect({ host: opts.host, port: opts.port, ...local });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`${opts.username}: connect: timed out`));
      }, opts.timeoutMs ?? 30000);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(new Error(`${opts.username}: connect: ${err.message}`));
      };
      socket.once('error', onError);
      socket.once(opts.tls === 'direct' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        resolve(new BenchClient(opts, socket));
      });
    });
  }

  private attach(socket: Socket): void {
    socket.setEncoding('utf8');
    socket.on('data', this.onData);
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.onSocketClose());
  }

  private async negotiate(): Promise<void> {
    const o = this.opts;
    this.step = 'stream';
    let features = await this.restart();
    if (o.tls === 'starttls') {
      this.step = 'starttls';
      if (!hasChild(features, 'starttls', NS.TLS)) throw new Error('the server does not offer STARTTLS');
      this.send(`<starttls xmlns='${NS.TLS}'/>`);
      const answer = await this.waitFor((el) => elementName(el) === 'proceed' || elementName(el) === 'failure');
      if (elementName(answer) !== 'proceed') throw new Error('the server refused STARTTLS');
      this.step = 'tls';
      await this.upgrade();
      this.step = 'stream';
      features = await this.restart();
    } else if (o.tls === 'none' && /<starttls[^>]*>\s*<required/.test(features)) {
      throw new Error('the server requires STARTTLS (use --tls starttls)');
    }

    this.step = 'sasl';
    const offered = [...features.matchAll(/<mechanism>([^<]*)<\/mechanism>/g)].map((m) => m[1]);
    if (!offered.includes(o.mech)) throw new Error(`the server does not offer ${o.mech} (offered: ${offered.join(', ') || 'none'})`);
    await this.authenticate();
    this.step = 'stream';
    features = await this.restart();

    this.step = 'bind';
    if (!hasChild(features, 'bind', NS.BIND)) throw new Error('the server does not offer resource binding');
    const bound = await this.iq(`<iq type='set' id='bind1'><bind xmlns='${NS.BIND}'/></iq>`, 'bind1');
    this.jid = childText(bound, 'jid') ?? '';
    if (!this.jid) throw new Error('bind result without a JID');
    // RFC 3921 sessions: only servers that still mark the feature mandatory need the request.
    const session = /<session[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-session['"][^>]*(\/>|>([\s\S]*?)<\/session>)/.exec(features);
    if (session && !(session[2] ?? '').includes('<optional')) {
      this.step = 'session';
      await this.iq(`<iq type='set' id='sess1'><session xmlns='${NS.SESSION}'/></iq>`, 'sess1');
    }
    if (o.sm) {
      this.step = 'sm';
      if (!hasChild(features, 'sm', BENCH_NS.SM)) throw new Error('the server does not offer stream management (XEP-0198)');
      this.send(`<enable xmlns='${BENCH_NS.SM}'/>`);
      const answer = await this.waitFor((el) => elementName(el) === 'enabled' || elementName(el) === 'failed');
      if (elementName(answer) !== 'enabled') throw new Error('the server refused to enable stream management');
      this.smEnabled = true;
    }
    if (o.rosterAndPresence !== false) {
      this.step = 'roster';
      await this.iq(`<iq type='get' id='roster1'><query xmlns='${NS.ROSTER}'/></iq>`, 'roster1');
      this.send('<presence/>');
    }
    this.step = 'ready';
    this.ready = true;
  }

  /** Sends a stream header and waits for the features. */
  private restart(): Promise<string> {
    this.splitter.reset();
    this.send(`<?xml version='1.0'?><stream:stream to='${escapeXml(this.opts.domain)}' version='1.0' xml:lang='en' xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`);
    return this.waitFor((el) => elementName(el) === 'stream:features');
  }

  private upgrade(): Promise<void> {
    return new Promise((resolve, reject) => {
      const plain = this.socket;
      plain.off('data', this.onData);
      plain.removeAllListeners('error');
      plain.removeAllListeners('close');
      plain.on('error', noop); // the TLS socket reports failures from here on
      const secure = tlsConnect({ socket: plain, servername: this.opts.domain, rejectUnauthorized: false });
      this.socket = secure;
      const onError = (err: Error): void => reject(err);
      const onClose = (): void => reject(this.error ?? new Error('connection closed during the TLS handshake'));
      secure.once('error', onError);
      secure.once('close', onClose);
      secure.once('secureConnect', () => {
        secure.off('error', onError);
        secure.off('close', onClose);
        this.attach(secure);
        resolve();
      });
    });
  }

  private async authenticate(): Promise<void> {
    const o = this.opts;
    const sasl = NS.SASL;
    const isSasl = (el: string): boolean => {
      const n = elementName(el);
      return n === 'challenge' || n === 'success' || n === 'failure';
    };
    const failure = (el: string): Error => {
      const condition = /<failure[^>]*>\s*<([a-z-]+)/.exec(el)?.[1] ?? 'unknown';
      return new Error(`authentication failed: ${condition}`);
    };
    if (o.mech === 'PLAIN') {
      this.send(`<auth xmlns='${sasl}' mechanism='PLAIN'>${plainMessage(o.username, o.password)}</auth>`);
      const answer = await this.waitFor(isSasl);
      if (elementName(answer) !== 'success') throw failure(answer);
      return;
    }
    const scram = new ScramClient(o.mech === 'SCRAM-SHA-256' ? 'SHA-256' : 'SHA-1', o.username, o.password);
    this.send(`<auth xmlns='${sasl}' mechanism='${o.mech}'>${b64(scram.first())}</auth>`);
    let answer = await this.waitFor(isSasl);
    if (elementName(answer) !== 'challenge') throw failure(answer);
    this.send(`<response xmlns='${sasl}'>${b64(scram.final(unb64(innerText(answer))))}</response>`);
    answer = await this.waitFor(isSasl);
    if (elementName(answer) === 'challenge') {
      // Servers that send the server-final-message as a challenge want an empty response before <success/>.
      scram.verify(unb64(innerText(answer)));
      this.send(`<response xmlns='${sasl}'/>`);
      answer = await this.waitFor(isSasl);
      if (elementName(answer) !== 'success') throw failure(answer);
      return;
    }
    if (elementName(answer) !== 'success') throw failure(answer);
    scram.verify(unb64(innerText(answer)));
  }

  /** Sends an IQ and waits for its result; an error reply rejects with the condition. */
  async iq(xml: string, id: string): Promise<string> {
    this.send(xml);
    const reply = await this.waitFor((el) => elementName(el) === 'iq' && attr(el, 'id') === id);
    if (attr(reply, 'type') !== 'result') throw new Error(`IQ ${id} failed: ${stanzaErrorCondition(reply)}`);
    return reply;
  }

  /**
   * Sends an IQ (or any data ending in one) and resolves with the reply whose id matches, result or error;
   * unlike iq(), many can be outstanding at once.
   */
  request(data: string, id: string): Promise<string> {
    if (this.error) return Promise.reject(this.error);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    this.requests ??= new Map();
    const requests = this.requests;
    const p = new Promise<string>((resolve, reject) => {
      requests.set(id, { match: () => true, resolve, reject });
    });
    this.send(data);
    return p;
  }

  /** Waits for the next element that matches; others are handled as unsolicited (pings answered). */
  waitFor(match: (el: string) => boolean): Promise<string> {
    if (this.error) return Promise.reject(this.error);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.pending = { match, resolve, reject };
    });
  }

  send(data: string): void {
    if (!this.closed && !this.ending) this.socket.write(data);
  }

  /** Ends the stream and waits until the server has closed it too (at most timeoutMs). */
  close(timeoutMs = 5000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.destroy(), timeoutMs);
      this.closeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.ending) {
        this.ending = true;
        this.socket.write('</stream:stream>');
      }
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onElement(el: string): void {
    if (this.smEnabled) {
      const n = elementName(el);
      if (n === 'message' || n === 'presence' || n === 'iq') this.smInbound = (this.smInbound + 1) >>> 0;
      else if (n === 'r') {
        this.send(`<a xmlns='${BENCH_NS.SM}' h='${this.smInbound}'/>`);
        return;
      } else if (n === 'a') return;
    }
    const pending = this.pending;
    if (pending) {
      if (elementName(el) === 'stream:error') {
        this.pending = undefined;
        pending.reject(new Error(`stream error: ${streamErrorCondition(el)}`));
        return;
      }
      if (pending.match(el)) {
        this.pending = undefined;
        pending.resolve(el);
        return;
      }
    }
    if (this.requests !== undefined && this.requests.size > 0 && el.charCodeAt(1) === 0x69 && elementName(el) === 'iq') {
      const id = attr(el, 'id');
      const request = id === undefined ? undefined : this.requests.get(id);
      if (request && id !== undefined) {
        this.requests.delete(id);
        request.resolve(el);
        return;
      }
    }
    if (this.answerIq(el)) return;
    if (this.ready) this.onStanza(el);
  }

  /** RFC 6120 §8.2.3: an IQ get or set must be answered; XEP-0199 pings get a result, anything else an error. */
  private answerIq(el: string): boolean {
    if (el.charCodeAt(1) !== 0x69 || elementName(el) !== 'iq') return false;
    const type = attr(el, 'type');
    if (type !== 'get' && type !== 'set') return false;
    const id = attr(el, 'id') ?? '';
    const from = attr(el, 'from');
    const to = from === undefined ? '' : ` to='${from}'`;
    if (hasChild(el, 'ping', NS.PING)) this.send(`<iq type='result' id='${id}'${to}/>`);
    else this.send(`<iq type='error' id='${id}'${to}><error type='cancel'><service-unavailable xmlns='${NS.STANZAS}'/></error></iq>`);
    return true;
  }

  private onServerEnd(): void {
    // The server ended the stream: answer in kind (if we have not already) and let the TCP close follow.
    if (!this.closed) {
      if (!this.ending) this.socket.write('</stream:stream>');
      this.ending = true;
      this.socket.end();
    }
  }

  private fail(err: Error): void {
    this.error ??= err;
    this.rejectAll(err);
    this.socket.destroy();
  }

  private rejectAll(err: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
    if (this.requests) {
      const requests = [...this.requests.values()];
      this.requests.clear();
      for (const r of requests) r.reject(err);
    }
  }

  private onSocketClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(this.error ?? new Error('the server closed the connection'));
    for (const w of this.closeWaiters.splice(0)) w();
    this.onClose(this.error);
  }
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

function unb64(s: string): string {
  return Buffer.from(s.trim(), 'base64').toString('utf8');
}

/** Character data of a leaf element such as <challenge>...</challenge> ('' when self-closing). */
function innerText(el: string): string {
  const gt = el.indexOf('>');
  if (el.charCodeAt(gt - 1) === 0x2f) return '';
  const close = el.lastIndexOf('</');
  return el.slice(gt + 1, close < gt ? el.length : close);
}

/** The defined condition of a stanza error (RFC 6120 §8.3.3), e.g. 'service-unavailable'. */
export function stanzaErrorCondition(el: string): string {
  const m = /<([a-z-]+)[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-stanzas['"]/.exec(el);
  return m?.[1] ?? 'unknown-error';
}

function streamErrorCondition(el: string): string {
  const m = /<([a-z-]+)[^>]*xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(el);
  return m?.[1] ?? 'unknown';
}
