// RFC 7395: An Extensible Messaging and Presence Protocol (XMPP) Subprotocol for WebSocket
// <https://www.rfc-editor.org/rfc/rfc7395> (October 2014)
//
// One WebSocket message carries one complete element (§3.3.3): the stream is framed by <open/> and <close/>
// in urn:ietf:params:xml:ns:xmpp-framing instead of <stream:stream>. Each message is read with Parley's own
// streaming parser under the same limits as TCP, wrapped in a stream header of its own so that elements come
// out exactly as they do from a TCP stream (top-level stanzas in jabber:client without an xmlns attribute).
import type { Duplex } from 'node:stream';
import type { WebSocket, RawData } from 'ws';
import { StreamParser, type ParserLimits, type StreamParserHandler } from '../../xml/parser.ts';
import type { Attrs, Element } from '../../xml/element.ts';
import { escapeAttr } from '../../xml/element.ts';
import { StreamError } from '../../core/errors.ts';
import { NS } from '../../xml/ns.ts';
import type { StreamHeaderAttrs, Transport, TransportHandler } from './transport.ts';
import { ReadShaper, type PausableInput, type ReadRate } from '../limits/read-shaper.ts';

/** The stream each message is parsed in: jabber:client as the default namespace, as on a TCP stream. */
const FRAME_HEADER = Buffer.from(`<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`, 'utf8');
const FRAME_FOOTER = Buffer.from('</stream:stream>', 'utf8');
const STREAM_FOOTER = `<close xmlns="${NS.FRAMING}"/>`;

/** RFC 6455 §7.4.1: 1000 normal closure; 1003 a type of data the endpoint cannot accept (binary messages). */
const CLOSE_NORMAL = 1000;
const CLOSE_UNSUPPORTED_DATA = 1003;

export type WebSocketTransportOptions = {
  /** The upgraded connection under the WebSocket: its 'drain' tells when output the client had not taken is out. */
  socket: Duplex;
  /** Whether the upgrade came over the HTTPS listener (wss://). */
  secure: boolean;
  remoteAddress: string;
  limits: ParserLimits;
  readRate?: ReadRate;
  /** Told of an unexpected exception while handling input, before the connection is cut (shared, not per connection). */
  onHandlerFailure?: (err: unknown, ip: string) => void;
};

export class WebSocketTransport implements Transport, StreamParserHandler, PausableInput {
  readonly kind = 'websocket';
  readonly secure: boolean;
  readonly remoteAddress: string;
  /** TLS, if any, is the WebSocket's own (wss://): there is no STARTTLS in the framing. */
  readonly canStartTls = false;
  lastActivity = Date.now();
  private readonly ws: WebSocket;
  private handler: TransportHandler | undefined;
  private readonly parser: StreamParser;
  private readonly onHandlerFailure: ((err: unknown, ip: string) => void) | undefined;
  /** An <open/> is expected next: at the start and after a stream restart (§3.5). */
  private expectOpen = true;
  // The message being parsed: its element, whether a second one followed, and whether the wrapper's end was seen.
  private element: Element | undefined;
  private extra = false;
  private ended = false;
  /** The input was refused with a stream error: nothing more is read. */
  private failed = false;
  private closing = false;
  private closeCode = CLOSE_NORMAL;
  private closedNotified = false;
  private readonly shaper: ReadShaper;

  constructor(ws: WebSocket, opts: WebSocketTransportOptions) {
    this.ws = ws;
    this.secure = opts.secure;
    this.remoteAddress = opts.remoteAddress;
    this.onHandlerFailure = opts.onHandlerFailure;
    this.parser = new StreamParser(this, opts.limits);
    this.shaper = new ReadShaper(this, opts.readRate);
    opts.socket.on('drain', this.onDrain);
    ws.on('message', this.onMessage);
    ws.on('ping', this.onPing);
    // ws reports protocol errors (an oversized or invalid message) and then closes with the matching code.
    ws.on('error', noop);
    ws.on('close', this.onClose);
  }

  private readonly onPing = (): void => {
    this.lastActivity = Date.now();
  };

  private readonly onDrain = (): void => {
    this.handler?.drained?.();
  };

  private readonly onClose = (): void => {
    if (this.closedNotified) return;
    this.closedNotified = true;
    this.shaper.stop();
    this.handler?.closed();
  };

  private readonly onMessage = (data: RawData, isBinary: boolean): void => {
    const now = Date.now();
    this.lastActivity = now;
    if (this.failed || this.closing) return;
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    // The message is already read: it is handled, and the debt it leaves is paid by not reading for a while.
    this.shaper.read(size, now);
    try {
      // §3.2: messages are UTF-8 text (ws has already checked the encoding of text messages).
      if (isBinary) {
        this.closeCode = CLOSE_UNSUPPORTED_DATA;
        return this.fail(new StreamError('unsupported-encoding', 'Only text messages are allowed'));
      }
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.frame(bytes);
    } catch (err) {
      // A bug in handling one connection's input must not take the process down: that connection ends.
      this.onHandlerFailure?.(err, this.remoteAddress);
      this.ws.terminate();
    }
  };

  /** Parses one message and hands on its element. */
  private frame(bytes: Buffer): void {
    // Whitespace between elements is allowed on a TCP stream; a message of only whitespace is read the same way.
    if (isBlank(bytes)) return;
    this.element = undefined;
    this.extra = false;
    this.ended = false;
    const p = this.parser;
    p.reset();
    // Each message is a document of its own and may open with an XML declaration (§3.3.3: not recommended);
    // the parser takes one only at the very start.
    const decl = declarationLength(bytes);
    if (decl > 0) {
      p.write(bytes.subarray(0, decl));
      if (this.failed) return;
    }
    p.write(FRAME_HEADER);
    p.write(decl > 0 ? bytes.subarray(decl) : bytes);
    if (this.failed) return;
    // The message closed the wrapper itself: an end tag without its start tag.
    if (this.ended) return this.fail(new StreamError('not-well-formed', 'End tag without a start tag'));
    p.write(FRAME_FOOTER);
    if (this.failed) return;
    const el = this.element;
    // An element still open absorbs the wrapper's end (in CDATA, say): the message did not end its element.
    if (!this.ended || el === undefined) return this.fail(new StreamError('not-well-formed', 'A message must hold one complete element'));
    if (this.extra) return this.fail(new StreamError('not-well-formed', 'A message must hold exactly one element'));
    this.element = undefined;
    this.dispatch(el);
  }

  private dispatch(el: Element): void {
    const handler = this.handler;
    if (!handler) return;
    const framing = el.attrs.xmlns === NS.FRAMING;
    if (framing && el.name === 'close') {
      handler.streamEnd();
      return;
    }
    if (this.expectOpen) {
      if (!framing || el.name !== 'open') {
        // §3.4: the first message of a stream is <open/> in the framing namespace.
        return this.fail(new StreamError('invalid-namespace', `Expected <open/> in ${NS.FRAMING}`));
      }
      this.expectOpen = false;
      const attrs: Attrs = { ...el.attrs };
      delete attrs.xmlns;
      handler.streamStart('stream', NS.STREAM, attrs, NS.CLIENT);
      return;
    }
    handler.element(el);
  }

  private fail(err: StreamError): void {
    this.failed = true;
    this.handler?.error(err);
  }

  // Parser events: the wrapper's own header and end are not the client's.
  streamStart(): void {}

  stanza(el: Element): void {
    if (this.element === undefined) this.element = el;
    else this.extra = true;
  }

  streamEnd(): void {
    this.ended = true;
  }

  error(err: StreamError): void {
    if (!this.failed) this.fail(err);
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  /** §3.4: the server's answer to <open/>. */
  streamHeader(a: StreamHeaderAttrs): string {
    const from = a.from !== undefined ? ` from="${escapeAttr(a.from)}"` : '';
    const to = a.to !== undefined ? ` to="${escapeAttr(a.to)}"` : '';
    return `<open xmlns="${NS.FRAMING}" id="${escapeAttr(a.id)}"${from}${to} version="1.0" xml:lang="en"/>`;
  }

  /** §3.6: the end of the server's stream. */
  streamFooter(): string {
    return STREAM_FOOTER;
  }

  /** One element per message, each a namespace-well-formed document of its own (§3.3.3). */
  send(data: string): void {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(standalone(data));
  }

  startTls(): void {
    throw new Error('STARTTLS is not available over WebSocket');
  }

  /**
   * None: a WebSocket often reaches Parley through a proxy that ends the client's TLS and opens its own, so
   * the TLS session seen here need not be the client's; no -PLUS mechanism is offered.
   */
  channelBinding(): Buffer | undefined {
    return undefined;
  }

  /** §3.5: after SASL the client opens a new stream with <open/> (and sends no <close/>). */
  restart(): void {
    this.expectOpen = true;
  }

  setLimits(limits: ParserLimits): void {
    this.parser.setLimits(limits);
  }

  /** Bytes sent and not yet taken by the client (ws's queue and the socket's). */
  get queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  setReadRate(rate: ReadRate): void {
    this.shaper.setRate(rate);
  }

  /** Stops reading for `ms` (or longer, if already paused longer): the client's sending slows to TCP's pace. */
  pauseReading(ms: number): void {
    this.shaper.pause(ms);
  }

  // The shaper's view of the input.
  pauseInput(): void {
    this.ws.pause();
  }
  resumeInput(): void {
    this.ws.resume();
  }
  get inputLive(): boolean {
    return !this.closing && !this.closedNotified;
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    // A paused reader would not see the client's close frame.
    this.shaper.resume();
    // What was sent goes out before the close frame; a peer that never answers it must not hold the socket.
    this.ws.close(this.closeCode);
    setTimeout(() => this.ws.terminate(), 5000).unref();
  }

  /** Ends the stream from the server's side (shutdown): the session sends the error and <close/>. */
  shutdown(err: StreamError): void {
    if (this.closing || this.closedNotified) return;
    this.fail(err);
  }
}

function noop(): void {}

function isBlank(b: Buffer): boolean {
  if (b.length > 0 && b[0] === 0x3c) return false;
  for (const c of b) if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  return true;
}

/** Length of a leading '<?xml ...?>' (up to and including '?>'), or 0. The parser validates it. */
function declarationLength(b: Buffer): number {
  // '<?xml' followed by whitespace; another processing instruction is left to the parser to refuse.
  if (b.length < 6 || b[0] !== 0x3c || b[1] !== 0x3f || b[2] !== 0x78 || b[3] !== 0x6d || b[4] !== 0x6c) return 0;
  const c = b[5];
  if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return 0;
  const end = b.indexOf('?>', 6, 'latin1');
  return end < 0 ? b.length : end + 2;
}

const XMLNS_CLIENT = ` xmlns="${NS.CLIENT}"`;
const XMLNS_STREAM = ` xmlns:stream="${NS.STREAM}"`;

/**
 * Serialized elements leave out the namespaces a TCP stream declares once in its header: a top-level element
 * without xmlns gets jabber:client, a stream:-prefixed one gets the stream prefix declared. The input is
 * Parley's own serialization (double-quoted attributes, '"' and '>' escaped in values), scanned up to the end
 * of the start tag only.
 */
export function standalone(data: string): string {
  if (data.charCodeAt(0) !== 60) return data;
  const n = data.length;
  let i = 1;
  for (; i < n; i++) {
    const c = data.charCodeAt(i);
    if (c === 32 || c === 47 || c === 62) break;
  }
  const name = data.slice(1, i);
  const prefixed = name.indexOf(':');
  let want: string;
  if (prefixed < 0) want = 'xmlns';
  else if (name.startsWith('stream:')) want = 'xmlns:stream';
  else return data;
  // Attribute by attribute: ` name="value"` until '>' or '/>'.
  let p = i;
  while (p < n && data.charCodeAt(p) === 32) {
    const eq = data.indexOf('="', p + 1);
    if (eq < 0) break;
    if (eq - p - 1 === want.length && data.startsWith(want, p + 1)) return data;
    const close = data.indexOf('"', eq + 2);
    if (close < 0) break;
    p = close + 1;
  }
  return data.slice(0, i) + (prefixed < 0 ? XMLNS_CLIENT : XMLNS_STREAM) + data.slice(i);
}
