// Plain TCP (with STARTTLS) and direct TLS (XEP-0368): bytes in, elements out through the streaming parser.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { StreamParser, type ParserLimits, type StreamParserHandler } from '../../xml/parser.ts';
import type { Attrs, Element } from '../../xml/element.ts';
import type { StreamError } from '../../core/errors.ts';
import type { StreamHeaderAttrs, Transport, TransportHandler } from './transport.ts';
import { NS } from '../../xml/ns.ts';
import { escapeAttr } from '../../xml/element.ts';
import { ReadShaper, type PausableInput, type ReadRate } from '../limits/read-shaper.ts';

export class TcpTransport implements Transport, StreamParserHandler, PausableInput {
  readonly kind: string;
  readonly remoteAddress: string;
  private socket: Socket;
  private handler: TransportHandler | undefined;
  private readonly parser: StreamParser;
  private upgrading = false;
  private closing = false;
  private out = '';
  private closedNotified = false;
  lastActivity = Date.now();
  private readonly shaper: ReadShaper;
  private readonly onData = (chunk: Buffer): void => {
    const now = Date.now();
    this.lastActivity = now;
    if (this.upgrading) return;
    // The chunk is already read: it is parsed, and the debt it leaves is paid by not reading for a while.
    this.shaper.read(chunk.length, now);
    try {
      this.parser.write(chunk);
    } catch (err) {
      // A bug in handling one connection's input must not take the process down: that connection ends.
      this.onHandlerFailure?.(err, this.remoteAddress);
      this.socket.destroy();
    }
  };
  /** Told of an unexpected exception while handling input, before the connection is cut (shared, not per connection). */
  private readonly onHandlerFailure: ((err: unknown, ip: string) => void) | undefined;

  private readonly onDrain = (): void => {
    this.handler?.drained?.();
  };

  constructor(socket: Socket, limits: ParserLimits, onHandlerFailure?: (err: unknown, ip: string) => void, readRate?: ReadRate) {
    this.socket = socket;
    this.onHandlerFailure = onHandlerFailure;
    this.kind = socket instanceof TLSSocket ? 'tls' : 'tcp';
    this.remoteAddress = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    this.parser = new StreamParser(this, limits);
    this.shaper = new ReadShaper(this, readRate);
    this.attach(socket);
  }

  // Parser events; while TLS is being set up, whatever was sent in clear text after <starttls/> is dropped.
  streamStart(name: string, ns: string, attrs: Attrs, contentNs: string): void {
    if (!this.upgrading) this.handler?.streamStart(name, ns, attrs, contentNs);
  }
  stanza(el: Element): void {
    if (!this.upgrading) this.handler?.element(el);
  }
  streamEnd(): void {
    if (!this.upgrading) this.handler?.streamEnd();
  }
  error(err: StreamError): void {
    if (!this.upgrading) this.handler?.error(err);
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.notifyClosed());
  }

  private notifyClosed(): void {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.shaper.stop();
    this.handler?.closed();
  }

  get secure(): boolean {
    return this.socket instanceof TLSSocket;
  }

  get canStartTls(): boolean {
    return !this.secure && !this.upgrading;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  streamHeader(a: StreamHeaderAttrs): string {
    const from = a.from !== undefined ? ` from='${escapeAttr(a.from)}'` : '';
    const to = a.to !== undefined ? ` to='${escapeAttr(a.to)}'` : '';
    return `<?xml version='1.0'?><stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}' id='${a.id}'${from}${to} version='1.0' xml:lang='en'>`;
  }

  streamFooter(): string {
    return '</stream:stream>';
  }

  send(data: string): void {
    if (this.socket.destroyed || this.closing) return;
    // What is sent in one tick leaves in one write (one TLS record, one packet): see flushPending.
    if (this.out === '') scheduleFlush(this);
    this.out += data;
  }

  /** Bytes written and not yet taken by the peer, plus what waits for this tick's flush. */
  get queuedBytes(): number {
    return this.socket.writableLength + this.out.length;
  }

  setReadRate(rate: ReadRate): void {
    this.shaper.setRate(rate);
  }

  /** Stops reading for `ms` (or longer, if already paused longer): the peer's sending slows to TCP's pace. */
  pauseReading(ms: number): void {
    this.shaper.pause(ms);
  }

  // The shaper's view of the input; the socket changes at STARTTLS.
  pauseInput(): void {
    this.socket.pause();
  }
  resumeInput(): void {
    this.socket.resume();
  }
  get inputLive(): boolean {
    return !this.closing && !this.socket.destroyed;
  }

  /** Writes what was queued; called once per tick for every transport with output. */
  flush(): void {
    const data = this.out;
    if (data === '') return;
    this.out = '';
    if (!this.socket.destroyed) this.socket.write(data);
  }

  startTls(context: SecureContext, done: (err?: Error) => void): void {
    const raw = this.socket;
    // The handshake must not wait on a read pause; what was sent after <starttls/> in clear text is discarded
    // anyway (RFC 6120 §5.4.3.3).
    this.shaper.resume();
    this.upgrading = true;
    raw.removeListener('data', this.onData);
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    // <proceed/> leaves in clear text before the handshake starts.
    this.flush();
    const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = secure;
    secure.once('secure', () => {
      this.upgrading = false;
      this.parser.reset();
      done();
    });
    secure.on('error', (err) => {
      if (this.upgrading) done(err);
      secure.destroy();
    });
    secure.on('data', this.onData);
    secure.on('drain', this.onDrain);
    secure.on('close', () => this.notifyClosed());
  }

  channelBinding(): Buffer | undefined {
    const s = this.socket;
    if (!(s instanceof TLSSocket) || s.getProtocol() !== 'TLSv1.3') return undefined;
    return s.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  }

  restart(): void {
    this.parser.reset();
  }

  setLimits(limits: ParserLimits): void {
    this.parser.setLimits(limits);
  }

  close(): void {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    // A paused reader would not see the peer close its side.
    this.shaper.resume();
    this.socket.end();
    // A peer that never closes its side must not hold the socket forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }
}

/** Transports with queued output, flushed together at the end of the tick: no timer or closure per connection. */
const pending: TcpTransport[] = [];

function flushPending(): void {
  // A flush may queue more (a write error closing a session); those wait for the next round.
  const batch = pending.splice(0);
  for (const t of batch) t.flush();
}

function scheduleFlush(t: TcpTransport): void {
  if (pending.length === 0) process.nextTick(flushPending);
  pending.push(t);
}
