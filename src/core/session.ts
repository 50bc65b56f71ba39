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

export interface C2sSession {
  readonly id: string;
  /** Set once the stream names a served host. */
  readonly host: Host | undefined;
  /** The bound full JID; undefined before resource binding. */
  readonly jid: Jid | undefined;
  readonly transport: string;
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly startedAt: number;
  /** False once the stream is closing or closed: stanzas sent then are not delivered. */
  readonly active: boolean;
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
  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void;
  get<T>(key: SessionKey<T>): T | undefined;
  set<T>(key: SessionKey<T>, value: T | undefined): void;
}
