// What the stream state machine needs from a transport: elements in, serialized XML out. No XMPP policy here.
import type { Attrs, Element } from '../../xml/element.ts';
import type { StreamError } from '../../core/errors.ts';
import type { ParserLimits } from '../../xml/parser.ts';
import type { SecureContext } from 'node:tls';
import type { ReadRate } from '../limits/read-shaper.ts';

export interface TransportHandler {
  streamStart(name: string, ns: string, attrs: Attrs, contentNs: string): void;
  element(el: Element): void;
  streamEnd(): void;
  /** Malformed or over-limit input: the session answers with the stream error and closes. */
  error(err: StreamError): void;
  /** The connection is gone. */
  closed(): void;
  /** Output the peer had not taken has been written out (see Transport.queuedBytes). */
  drained?(): void;
}

export type StreamHeaderAttrs = { id: string; from?: string; to?: string };

export interface Transport {
  readonly kind: string;
  readonly secure: boolean;
  readonly remoteAddress: string;
  /** Whether STARTTLS can be negotiated on this transport now. */
  readonly canStartTls: boolean;
  /** When bytes last arrived (ms since the epoch), set on every chunk. */
  readonly lastActivity: number;
  setHandler(handler: TransportHandler): void;
  /** Queues serialized XML: one element (or the stream header or footer from below) per call. */
  send(data: string): void;
  /** The server's stream header in this transport's framing (RFC 6120 §4.7; RFC 7395 uses <open/>). */
  streamHeader(attrs: StreamHeaderAttrs): string;
  /** The end of the server's stream (</stream:stream>; RFC 7395 uses <close/>). */
  streamFooter(): string;
  /** Starts TLS in place after <proceed/> was sent; input until the handshake ends is discarded. */
  startTls(context: SecureContext, done: (err?: Error) => void): void;
  /** tls-exporter channel-binding data (RFC 9266), only on TLS 1.3. */
  channelBinding(): Buffer | undefined;
  /** A new stream starts on the same connection (after TLS or SASL). */
  restart(): void;
  setLimits(limits: ParserLimits): void;
  /** Flushes what was sent, then closes. */
  close(): void;
  // Back-pressure and rate limits (src/c2s/limits): a transport that cannot pause its input or measure its output
  // leaves these out, and only the limits that need neither apply to it.
  /** Bytes sent and not yet taken by the peer; a transport that has them calls TransportHandler.drained. */
  readonly queuedBytes?: number;
  /** Stops reading input for `ms` milliseconds (or until an earlier pause ends, if that is later). */
  pauseReading?(ms: number): void;
  /** Read shaping in bytes per second (0: off) with the bytes that may arrive at once. */
  setReadRate?(rate: ReadRate): void;
}
