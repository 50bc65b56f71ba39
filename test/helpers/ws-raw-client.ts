// A raw WebSocket client (the `ws` package) for tests of exact XMPP framing (RFC 7395) and error paths.
import WebSocket from 'ws';
import { ScramClient } from './scram-client.ts';

export const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
export const OPEN = (domain = 'localhost'): string => `<open xmlns='${FRAMING}' to='${domain}' version='1.0'/>`;
export const CLOSE = `<close xmlns='${FRAMING}'/>`;

/** An upgrade the server answered with something other than 101. */
export class UpgradeRefused extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`upgrade refused with ${status}`);
    this.status = status;
  }
}

export class WsRawClient {
  readonly ws: WebSocket;
  /** Text of every message received and not yet taken. */
  readonly messages: string[] = [];
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      this.messages.push(isBinary ? `[binary ${String(data)}]` : String(data));
      this.wake();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static connect(url: string, opts: { protocols?: string[]; origin?: string } = {}): Promise<WsRawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts.protocols ?? ['xmpp'], opts.origin !== undefined ? { origin: opts.origin } : {});
      ws.once('open', () => resolve(new WsRawClient(ws)));
      ws.once('unexpected-response', (req, res) => {
        req.destroy();
        reject(new UpgradeRefused(res.statusCode ?? 0));
      });
      ws.once('error', reject);
    });
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next message in order. */
  async next(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.shift();
      if (m !== undefined) return m;
      if (this.closeCode !== undefined) throw new Error(`WebSocket closed (${this.closeCode}) while waiting for a message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await this.wait(left);
    }
  }

  /** Resolves with the close code once the WebSocket is closed. */
  async closed(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`WebSocket still open; unread: ${this.messages.join('\n')}`);
      await this.wait(left);
    }
    return this.closeCode;
  }

  private wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  /** Sends <open/> and returns the server's <open/> and its stream features. */
  async open(domain = 'localhost'): Promise<{ open: string; features: string }> {
    this.send(OPEN(domain));
    const open = await this.next();
    const features = await this.next();
    return { open, features };
  }

  /** Opens a stream, logs in with SCRAM-SHA-1, opens the stream again (RFC 7395 §3.5) and binds `resource`. */
  async login(username: string, password: string, resource: string): Promise<void> {
    await this.open();
    const scram = new ScramClient({ hash: 'SHA-1', username, password });
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>${scram.first().toString('base64')}</auth>`);
    const challenge = /^<challenge xmlns="urn:ietf:params:xml:ns:xmpp-sasl">([^<]+)<\/challenge>$/.exec(await this.next());
    if (!challenge) throw new Error('expected a SCRAM challenge');
    const serverFirst = Buffer.from(challenge[1] as string, 'base64').toString('utf8');
    this.send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${scram.final(serverFirst).toString('base64')}</response>`);
    const success = await this.next();
    if (!success.startsWith('<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"')) throw new Error(`expected success: ${success}`);
    const { features } = await this.open();
    if (!features.includes('<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/>')) throw new Error(`expected bind: ${features}`);
    this.send(`<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`);
    const bound = await this.next();
    if (!bound.includes(`<jid>${username}@localhost/${resource}</jid>`)) throw new Error(`expected the bound JID: ${bound}`);
  }
}
