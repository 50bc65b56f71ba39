// What the core knows of a client session; the c2s stream state machine implements it for every transport.
import type { Element } from '../xml/element.ts';
import type { Jid } from '../xmpp/jid.ts';
import type { StreamError } from './errors.ts';
import type { Host } from './host.ts';

/** A typed key for per-session state kept by modules (never ad-hoc fields on the session). */
export class SessionKey<T> {
  readonly name: string;
  declare readonly _type: T;
  constructor(name: string) {
    this.name = name;
  }
}

/**
 * Stream-level delivery tracking for client sessions (XEP-0198 stream management), installed on a session by a
 * module (`session.tracker = t`). One object serves all of a module's sessions: per-session state lives under a
 * SessionKey, so no closures per session. The contract the rest of the server relies on: every stanza passed to
 * `sent` is later either reported in 'c2s/acked' or handed to 'c2s/unacked' once its session ends for good.
 */
export interface StanzaTracker {
  /** A stanza from the client, counted once it has been processed (routed, and stored where that applies). */
  received(session: C2sSession, stanza: Element): void;
  /** A stanza just written to the client, or kept for replay while the session is detached. */
  sent(session: C2sSession, stanza: Element): void;
  /** Asks the client to confirm what it has received so far (a module that wrote a batch wants to know soon). */
  requestAck(session: C2sSession): void;
  /** The connection dropped without the stream being closed: true keeps the session, detached, until it is
   * resumed on a new connection (adoptConnection) or closed. */
  connectionLost(session: C2sSession): boolean;
}

export interface C2sSession {
  readonly id: string;
  /** Set once the stream names a served host. */
  readonly host: Host | undefined;
  /** The bound full JID; undefined before resource binding. */
  readonly jid: Jid | undefined;
  /** The authenticated localpart, set at SASL success (before binding). */
  readonly user: string | undefined;
  readonly transport: string;
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly startedAt: number;
  /** When the connection last received bytes, whitespace included (ms since the epoch): the keepalive reads it. */
  readonly lastActivity: number;
  /** False once the stream is closing or closed: stanzas sent then are not delivered. A detached session is
   * active: what it is sent is kept for replay (or, if it never resumes, handed to 'c2s/unacked'). */
  readonly active: boolean;
  /** The connection dropped and a tracker kept the session for resumption: nothing is written until then. */
  readonly detached: boolean;
  /** Delivery tracking (stream management), when a module enabled it on this session. */
  tracker: StanzaTracker | undefined;
  /** Initial presence sent and not yet unavailable. */
  available: boolean;
  /** Priority of the last available presence (RFC 6121 §4.7.2.3). */
  priority: number;
  /** The last available presence broadcast by this resource, as sent (from stamped). */
  presence: Element | undefined;
  /** Requested the roster: roster pushes go to this resource (RFC 6121 §2.1.6). */
  rosterRequested: boolean;
  /** Delivers a stanza to the client. */
  send(stanza: Element): void;
  /** Writes a nonza (stream management and the like): no hooks, not tracked, nothing while detached. */
  sendRaw(el: Element): void;
  /**
   * Stream resumption: this bound session continues on the connection of `fresh`, a session that authenticated
   * but has not bound. `preamble` (the answer and the stanzas to replay) is written first, as it is; input that
   * followed on the new connection is processed next, in order. An old connection still open is closed with a
   * conflict stream error; `fresh` ends without a trace (it was never bound).
   */
  adoptConnection(fresh: C2sSession, preamble: Element[]): void;
  /** Ends the stream, with a stream error when given; a detached session simply ends. */
  close(error?: StreamError): void;
  get<T>(key: SessionKey<T>): T | undefined;
  set<T>(key: SessionKey<T>, value: T | undefined): void;
}
