// Every hook name with its event type. Feature modules add theirs by declaration merging:
//   declare module '../core/hook-map.ts' { interface HookMap { 'my-hook': MyEvent } }
import type { Element } from '../xml/element.ts';
import type { Jid } from '../xmpp/jid.ts';
import type { Host } from './host.ts';
import type { C2sSession } from './session.ts';

export type StanzaKind = 'message' | 'presence' | 'iq';

/** A stanza in flight: `from` and `to` are parsed once at the router's edge. */
export type StanzaEvent = {
  host: Host;
  stanza: Element;
  from: Jid;
  to: Jid;
  /** The local session that sent it, when it came from one of our clients. */
  origin?: C2sSession | undefined;
};

export type SessionEvent = { host: Host; session: C2sSession };
export type SessionClosedEvent = SessionEvent & { reason: string };

export interface HookMap {
  'pre-message': StanzaEvent;
  'pre-presence': StanzaEvent;
  'pre-iq': StanzaEvent;
  'message/bare': StanzaEvent;
  'message/full': StanzaEvent;
  'message/host': StanzaEvent;
  'presence/bare': StanzaEvent;
  'presence/full': StanzaEvent;
  'presence/host': StanzaEvent;
  'iq/bare': StanzaEvent;
  'iq/full': StanzaEvent;
  'iq/host': StanzaEvent;
  /** A message for an account with no available resource; a handler returning true has taken it (stored it). */
  'message/offline': StanzaEvent;
  /** Just before a stanza is written to a client's stream; returning true suppresses it. */
  'c2s/outgoing': { host: Host; session: C2sSession; stanza: Element };
  /**
   * Stanzas a client confirmed it received (stream management acknowledgements; see StanzaTracker), oldest
   * first, for the account `user`. `session` is undefined for a late acknowledgement: a client that could not
   * resume its ended session still says what it had received.
   */
  'c2s/acked': { host: Host; user: Jid; session: C2sSession | undefined; stanzas: Element[] };
  /**
   * A stanza written to a tracked session that will never be acknowledged: the session ended for good. A handler
   * returning true has dealt with it; stream management handles the rest (messages go to offline storage or
   * bounce, as for an unavailable resource). `sentAt` is when it was first sent (ms since the epoch).
   */
  'c2s/unacked': { host: Host; session: C2sSession; stanza: Element; sentAt: number };
  /** A top-level element that is not a stanza, from an authenticated client (stream management and the like). */
  'c2s/nonza': { host: Host; session: C2sSession; element: Element };
  /** A stanza from a client that has not authenticated (only over TLS where TLS is required); true if handled. */
  'c2s/unauthenticated-stanza': { host: Host; session: C2sSession; stanza: Element };
  /** A resource was bound. */
  'session/bound': SessionEvent;
  /** Initial presence: the resource became available. */
  'user/available': SessionEvent;
  /** The resource became unavailable (unavailable presence or session end). */
  'user/unavailable': SessionEvent;
  /** A bound session has ended, for any reason. */
  'session/closed': SessionClosedEvent;
  /** An account is about to be removed: its data can still be read. */
  'account/removing': { host: Host; user: Jid };
  /** An account was removed: modules drop what they keep for it. */
  'account/removed': { host: Host; user: Jid };
}

/** Fold hooks: [event, accumulator]. */
export interface FoldHookMap {
  /** Stream features offered after authentication (bind and session are the core's). */
  'c2s/features': [{ host: Host; session: C2sSession }, Element[]];
  /** Stream features offered before authentication, after TLS. */
  'c2s/features-preauth': [{ host: Host; session: C2sSession }, Element[]];
}
