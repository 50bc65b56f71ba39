// BOSH clients for tests: Strophe.js (an independent library) running in Node, and a raw client that writes
// <body/> wrappers by hand for exact protocol checks.
import XHR from 'xhr2';
import { request, type HttpReply } from './http.ts';

// Strophe's BOSH transport runs on XMLHttpRequest and reads responseXML, as in a browser. Node has neither:
// xhr2 provides the request object, and responseXML is parsed here like a browser does for text/xml.
class BrowserXhr extends (XHR as unknown as { new (): { readyState: number; responseText: string } }) {
  get responseXML(): unknown {
    if (this.readyState !== 4 || !this.responseText) return null;
    const Parser = (globalThis as unknown as { DOMParser: new () => { parseFromString(s: string, t: string): unknown } }).DOMParser;
    return new Parser().parseFromString(this.responseText, 'text/xml');
  }
}
(globalThis as unknown as { XMLHttpRequest: unknown }).XMLHttpRequest = BrowserXhr;
// The Node build of Strophe installs its DOM globals (xmldom) when loaded.
const strophe = await import('strophe.js');
export const { Strophe, $msg, $pres, $iq } = strophe;
// Strophe logs every request at debug level to the console by default.
Strophe.setLogLevel(Strophe.LogLevel.FATAL);

export const HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const XBOSH = 'urn:xmpp:xbosh';

/** The DOM element Strophe hands to handlers (xmldom). */
export type DomElement = {
  nodeName: string;
  getAttribute(name: string): string | null;
  getElementsByTagName(name: string): ArrayLike<DomElement> & { length: number };
  textContent: string | null;
};

type StropheConnection = InstanceType<typeof Strophe.Connection>;

export type StropheClient = {
  conn: StropheConnection;
  jid: string;
  /** Raw XML Strophe sent, for checking what the library did on the wire. */
  sent: string[];
  next(match: (el: DomElement) => boolean, timeoutMs?: number): Promise<DomElement>;
  /** Sends the terminate body (with unavailable presence) and waits for Strophe to report the end. */
  logout(): Promise<void>;
};

/** Connects and logs in with Strophe over BOSH; `mechanisms` limits the SASL mechanisms Strophe may use. */
export async function stropheLogin(url: string, jid: string, password: string, mechanisms?: unknown[]): Promise<StropheClient> {
  const conn = new Strophe.Connection(url, mechanisms ? { mechanisms } : {});
  const sent: string[] = [];
  conn.rawOutput = (data: string) => { sent.push(data); };
  const inbox: DomElement[] = [];
  const waiters: Array<() => void> = [];
  const statusWaiters: Array<(status: number, condition: string) => void> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('Strophe login timed out')), 15_000);
    conn.connect(jid, password, (status: number, condition: string) => {
      for (const w of statusWaiters) w(status, condition);
      if (status === Strophe.Status.CONNECTED) {
        clearTimeout(timer);
        resolve();
      } else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL || status === Strophe.Status.DISCONNECTED) {
        clearTimeout(timer);
        reject(new Error(`Strophe login failed: status ${status} ${condition}`));
      }
    });
  });
  // Every stanza after login lands in the inbox; handlers returning true stay registered.
  conn.addHandler((el: unknown) => {
    inbox.push(el as DomElement);
    for (const w of waiters.splice(0)) w();
    return true;
  }, null, null, null, null, null);
  const next = async (match: (el: DomElement) => boolean, timeoutMs = 10_000): Promise<DomElement> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = inbox.findIndex(match);
      if (i >= 0) return inbox.splice(i, 1)[0] as DomElement;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; inbox: ${inbox.map((e) => e.nodeName).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  };
  const logout = (): Promise<void> => new Promise((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    statusWaiters.push((status) => {
      if (status === Strophe.Status.DISCONNECTED) {
        clearTimeout(timer);
        resolve();
      }
    });
    conn.disconnect('logout');
  });
  return { conn, jid: conn.jid, sent, next, logout };
}

/** Attributes of the <body/> wrapper as a string map, read from a response. */
export function bodyAttrs(body: string): Record<string, string> {
  const start = /^<body\b([^>]*?)\/?>/.exec(body)?.[1] ?? '';
  const out: Record<string, string> = {};
  for (const m of start.matchAll(/([\w:.-]+)=(['"])(.*?)\2/g)) out[m[1] as string] = m[3] as string;
  return out;
}

/** A BOSH session driven by hand: one <body/> per call, with the rid counted here. */
export class RawBosh {
  readonly port: number;
  readonly tls: boolean;
  sid = '';
  rid: number;
  /** The session creation response. */
  created = '';

  constructor(port: number, tls = false, rid = 1_000_000 + Math.floor(Math.random() * 1_000_000)) {
    this.port = port;
    this.tls = tls;
    this.rid = rid;
  }

  /** POSTs a raw body to /bosh. */
  static post(port: number, body: string | Buffer, tls = false, headers: Record<string, string> = {}): Promise<HttpReply> {
    return request({ port, path: '/bosh', method: 'POST', tls, body, headers: { 'Content-Type': 'text/xml; charset=utf-8', ...headers } });
  }

  /** Sends the session creation request; resolves with its response body. */
  async create(attrs: Record<string, string> = {}): Promise<string> {
    const a = { to: 'localhost', 'xml:lang': 'en', wait: '5', hold: '1', ver: '1.11', 'xmpp:version': '1.0', ...attrs };
    const reply = await RawBosh.post(this.port, `<body rid='${this.rid}' xmlns='${HTTPBIND}' xmlns:xmpp='${XBOSH}'${attrString(a)}/>`, this.tls);
    this.created = reply.body;
    this.sid = bodyAttrs(reply.body).sid ?? '';
    return reply.body;
  }

  /** The next request (rid + 1) with these payloads and extra wrapper attributes; resolves with the response body. */
  send(payload = '', attrs: Record<string, string> = {}): Promise<string> {
    return this.sendRid(++this.rid, payload, attrs);
  }

  /** A request with a chosen rid (the counter is left alone). */
  async sendRid(rid: number, payload = '', attrs: Record<string, string> = {}): Promise<string> {
    return (await RawBosh.post(this.port, this.wrap(rid, payload, attrs), this.tls)).body;
  }

  wrap(rid: number, payload: string, attrs: Record<string, string> = {}): string {
    const open = `<body rid='${rid}' sid='${this.sid}' xmlns='${HTTPBIND}'${attrString(attrs)}`;
    return payload === '' ? `${open}/>` : `${open}>${payload}</body>`;
  }

  /** Creation, SASL PLAIN (HTTPS only), restart and bind; resolves with the bound JID. */
  async login(user: string, password: string, resource: string): Promise<string> {
    const features = await this.create();
    if (!features.includes('<mechanism>PLAIN</mechanism>')) throw new Error(`PLAIN not offered: ${features}`);
    const auth = Buffer.from(`\0${user}\0${password}`).toString('base64');
    await this.until(/<success/, this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`));
    await this.until(/urn:ietf:params:xml:ns:xmpp-bind/, this.send('', { 'xmlns:xmpp': XBOSH, 'xmpp:restart': 'true', to: 'localhost' }));
    const bound = await this.until(/<jid>/, this.send(`<iq type='set' id='bind' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`));
    return /<jid>([^<]+)<\/jid>/.exec(bound)?.[1] as string;
  }

  /** The response, or (when the answer came empty because 'wait' ran out) the next ones, until one matches. */
  async until(pattern: RegExp, first: Promise<string>): Promise<string> {
    let body = await first;
    for (let i = 0; i < 10 && !pattern.test(body); i++) {
      if (body.includes("type='terminate'")) break;
      body = await this.send('');
    }
    if (!pattern.test(body)) throw new Error(`expected ${pattern}: ${body}`);
    return body;
  }
}

function attrString(attrs: Record<string, string>): string {
  let s = '';
  for (const [k, v] of Object.entries(attrs)) s += ` ${k}='${v}'`;
  return s;
}
