// A raw XMPP socket for tests of exact bytes and error paths.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export const STREAM_HEADER = (domain = 'localhost'): string =>
  `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;

export class RawClient {
  socket: Socket;
  buffer = '';
  private waiters: Array<() => void> = [];
  private closedPromise: Promise<void>;
  isClosed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.closedPromise = new Promise((resolve) => {
      this.attach(socket, resolve);
    });
  }

  private attach(socket: Socket, onClose?: () => void): void {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buffer += d;
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('error', () => undefined);
    if (onClose) {
      socket.on('close', () => {
        this.isClosed = true;
        for (const w of this.waiters.splice(0)) w();
        onClose();
      });
    }
  }

  static connect(port: number, opts: { tls?: boolean; localAddress?: string } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) } as ConnectionOptions)
        : netConnect({ host: '127.0.0.1', port, localAddress: opts.localAddress });
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the received text matches, then consumes it up to the end of the match. */
  async expect(pattern: RegExp, timeoutMs = 5000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.buffer.match(pattern);
      if (m && m.index !== undefined) {
        this.buffer = this.buffer.slice(m.index + m[0].length);
        return m;
      }
      if (this.isClosed) throw new Error(`connection closed while waiting for ${pattern}; received: ${this.buffer}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${pattern}; received: ${this.buffer}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Resolves when the server has closed the connection. */
  closed(timeoutMs = 5000): Promise<void> {
    return Promise.race([
      this.closedPromise,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`connection still open; received: ${this.buffer}`)), timeoutMs).unref()),
    ]);
  }

  async openStream(domain = 'localhost'): Promise<string> {
    this.send(STREAM_HEADER(domain));
    const m = await this.expect(/<stream:features>[\s\S]*?<\/stream:features>|<stream:features\/>/);
    return m[0];
  }

  /** Negotiates STARTTLS and verifies the server certificate for `localhost`. */
  async starttls(): Promise<void> {
    this.send(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`);
    await this.expect(/<proceed xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]\/>/);
    const raw = this.socket;
    raw.removeAllListeners('data');
    const secure: TLSSocket = tlsConnect({ socket: raw, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
  }

  /** STARTTLS, SASL PLAIN and the stream restart: ready to bind (or resume). */
  async authenticate(user: string, password: string): Promise<void> {
    await this.openStream();
    await this.starttls();
    await this.openStream();
    this.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`);
    await this.expect(/<success xmlns=['"]urn:ietf:params:xml:ns:xmpp-sasl['"]\/>/);
    await this.openStream();
  }

  /** STARTTLS, SASL PLAIN, restart and bind: a ready session. Returns the bound JID. */
  async login(user: string, password: string, resource?: string): Promise<string> {
    await this.authenticate(user, password);
    this.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>${resource ? `<resource>${resource}</resource>` : ''}</bind></iq>`);
    const m = await this.expect(/<jid>([^<]+)<\/jid>/);
    await this.expect(/<\/iq>/);
    return m[1] as string;
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
