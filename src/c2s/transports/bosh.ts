// XEP-0124: Bidirectional-streams Over Synchronous HTTP (BOSH) <https://xmpp.org/extensions/xep-0124.html> 1.11.2
// XEP-0206: XMPP Over BOSH <https://xmpp.org/extensions/xep-0206.html> 1.4
//
// One BOSH session as a Transport: the HTTP requests of the session come in (already parsed) with their
// exchanges, payloads go to the stream state machine in 'rid' order, and what the session writes waits for the
// next held request. Request ordering, the replay buffer, hold/wait, inactivity and pauses live here; the HTTP
// side (routing, CORS, the session registry) is src/http/bosh.ts. No XMPP policy: stanzas pass through.
import { createHash } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { Attrs } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import type { ParserLimits } from '../../xml/parser.ts';
import { StreamError } from '../../core/errors.ts';
import type { StreamHeaderAttrs, Transport, TransportHandler } from './transport.ts';
import { qualify, responseBody, type BodyAttrs, type BoshBody, type BoshCondition } from './bosh-body.ts';

/** One HTTP request of the session, answered once with a whole <body/> (always HTTP 200). */
export interface BoshExchange {
  respond(body: string): void;
}

/** Told once when a session is over, so it can be forgotten (the registry). */
export interface BoshOwner {
  ended(t: BoshTransport): void;
}

export type BoshSessionSettings = {
  sid: string;
  /** Whether the session was created over HTTPS. */
  secure: boolean;
  remoteAddress: string;
  /** Negotiated values (XEP-0124 §7.2): seconds, counts. */
  wait: number;
  hold: number;
  requests: number;
  inactivity: number;
  polling: number;
  /** 0 when pauses are not offered. */
  maxPause: number;
  /** The BOSH version both sides speak (the lower one). */
  ver: string;
  limits: ParserLimits;
  owner: BoshOwner;
  /** The HTTP Content-Type of the session's responses (§7.1 'content'). */
  contentType: string;
};

/** A request processed in order and not answered yet. Repeats of its rid (a client retrying) join `exs`. */
type Held = { rid: number; exs: BoshExchange[]; deadline: number; pause: boolean; end?: boolean };
/** A request that arrived ahead of a missing rid (§14.2): processed when the gap fills. */
type Early = { body: BoshBody; exs: BoshExchange[] };

/** The highest BOSH version Parley speaks. */
export const BOSH_VERSION = '1.11';

export class BoshTransport implements Transport {
  readonly kind = 'bosh';
  readonly sid: string;
  readonly secure: boolean;
  readonly remoteAddress: string;
  readonly canStartTls = false;
  lastActivity = Date.now();
  /** Parser limits of this session's payloads (raised after authentication). */
  limits: ParserLimits;
  readonly contentType: string;

  private readonly s: BoshSessionSettings;
  private handler: TransportHandler | undefined;
  /** The last rid processed in order. */
  private rid = 0;
  private held: Held[] = [];
  private early: Map<number, Early> | undefined;
  /** Responses to the most recent requests, by rid, for clients that resend (§14.3). */
  private readonly replay = new Map<number, string>();
  private out = '';
  /** The session's <stream:error/>, sent only with a remote-stream-error terminate. */
  private streamError = '';
  private header: StreamHeaderAttrs | undefined;
  private created = false;
  private headerDelivered = false;
  /** The XMPP stream is over (footer written, a binding error, or the client terminated): the next answer terminates. */
  private closing = false;
  private condition: BoshCondition | undefined;
  private finished = false;
  private closedNotified = false;
  /** After SASL success until the client asks for a restart (XEP-0206 §5). */
  private awaitingRestart = false;
  /** Stream attributes of the session creation request, reused by restarts that leave them out. */
  private streamAttrs: Attrs = {};
  /** §15.4 key sequence: the hash the next 'key' must have, once the client set 'newkey'. */
  private key: string | undefined;
  private waitTimer: NodeJS.Timeout | undefined;
  private waitFor = Number.NaN;
  private inactivityTimer: NodeJS.Timeout | undefined;
  /** A pause (§10) in force: its length in ms replaces the inactivity period until the next request. */
  private pauseMs = 0;
  private lastPollAt = 0;
  private lastResponseEmpty = false;
  /** Queued for the end-of-tick flush. */
  flushQueued = false;

  constructor(settings: BoshSessionSettings) {
    this.s = settings;
    this.sid = settings.sid;
    this.secure = settings.secure;
    this.remoteAddress = settings.remoteAddress;
    this.limits = settings.limits;
    this.contentType = settings.contentType;
  }

  /** Whether the session is over: its sid is no longer valid. */
  get ended(): boolean {
    return this.finished;
  }

  setHandler(handler: TransportHandler): void {
    this.handler = handler;
  }

  // --- HTTP side ---

  /** The session creation request (§7.1): opens the XMPP stream; the response waits for the stream features. */
  start(body: BoshBody, rid: number, ex: BoshExchange): void {
    const a = body.attrs;
    this.rid = rid;
    if (a.newkey !== undefined) this.key = a.newkey.toLowerCase();
    this.streamAttrs = streamAttrs(a, {});
    this.held.push({ rid, exs: [ex], deadline: Date.now() + this.s.wait * 1000, pause: false });
    this.handler?.streamStart('stream', NS.STREAM, this.streamAttrs, NS.CLIENT);
    this.pump();
  }

  /** Any later request of the session. */
  request(body: BoshBody, ex: BoshExchange): void {
    if (this.finished) {
      ex.respond(responseBody({ type: 'terminate', condition: 'item-not-found' }, '', false));
      return;
    }
    this.lastActivity = Date.now();
    const rid = parseRid(body.attrs.rid);
    if (rid === undefined) return this.fail('bad-request', ex);
    if (rid <= this.rid) return this.repeated(rid, ex);
    // §14.2: a rid beyond the window of simultaneous requests means requests were lost for good.
    if (rid > this.rid + this.s.requests) return this.fail('item-not-found', ex);
    const early = this.early?.get(rid);
    if (early) {
      early.exs.push(ex);
      return;
    }
    // §11: more simultaneous requests than 'requests' (one more to pause or terminate) is overactivity.
    const extra = body.attrs.type === 'terminate' || body.attrs.pause !== undefined ? 1 : 0;
    if (this.held.length + (this.early?.size ?? 0) + 1 > this.s.requests + extra) return this.fail('policy-violation', ex);
    this.clearInactivity();
    if (rid !== this.rid + 1) {
      (this.early ??= new Map()).set(rid, { body, exs: [ex] });
      this.armTimers();
      return;
    }
    this.process(rid, body, [ex]);
    for (let next = this.early?.get(this.rid + 1); next && !this.finished; next = this.early?.get(this.rid + 1)) {
      this.early?.delete(this.rid + 1);
      this.process(this.rid + 1, next.body, next.exs);
    }
    this.pump();
  }

  /**
   * A request whose XML could not be read: a stanza over the size limit is a stream error (policy-violation,
   * sent as remote-stream-error); anything else is a bad-request binding error. Either ends the session.
   */
  inputError(err: StreamError, ex: BoshExchange): void {
    if (this.finished) {
      ex.respond(responseBody({ type: 'terminate', condition: 'item-not-found' }, '', false));
      return;
    }
    if (err.condition !== 'policy-violation') return this.fail('bad-request', ex);
    this.held.push({ rid: Number.NaN, exs: [ex], deadline: 0, pause: false });
    this.handler?.error(err);
    if (!this.finished) this.fail('bad-request');
  }

  /** The server stops: the session ends with system-shutdown (§17.2), and the stream with it. */
  shutdown(): void {
    if (this.finished) return;
    this.condition = 'system-shutdown';
    this.handler?.error(new StreamError('system-shutdown'));
    if (!this.finished) {
      this.closing = true;
      this.pump();
    }
    this.finish();
  }

  // --- Transport (what the stream state machine calls) ---

  send(data: string): void {
    if (data === '' || this.closing || this.finished) return;
    if (data.startsWith('<stream:error')) {
      this.streamError = data;
      return;
    }
    this.out += qualify(data);
    if (this.held.length > 0) scheduleFlush(this);
  }

  /** The stream header is not sent as such: its id and from go out as the body's authid and from (XEP-0206 §4). */
  streamHeader(attrs: StreamHeaderAttrs): string {
    this.header = attrs;
    this.headerDelivered = false;
    return '';
  }

  /** The end of the stream: the next answer is a terminate body. */
  streamFooter(): string {
    this.closing = true;
    return '';
  }

  startTls(_context: SecureContext, done: (err?: Error) => void): void {
    done(new Error('STARTTLS is not possible over BOSH: use HTTPS'));
  }

  channelBinding(): Buffer | undefined {
    // Each HTTP request may come over another TLS connection: nothing binds the session to one.
    return undefined;
  }

  restart(): void {
    this.awaitingRestart = true;
  }

  setLimits(limits: ParserLimits): void {
    this.limits = limits;
  }

  close(): void {
    if (this.finished) return;
    this.closing = true;
    this.pump();
  }

  /** Answers held requests with what is queued; called once per tick after writes. */
  flush(): void {
    this.flushQueued = false;
    this.pump();
  }

  // --- internals ---

  private repeated(rid: number, ex: BoshExchange): void {
    const cached = this.replay.get(rid);
    if (cached !== undefined) {
      ex.respond(cached);
      return;
    }
    const held = this.held.find((h) => h.rid === rid);
    if (held) {
      // The client lost the connection of a request still held here: both get the same answer.
      held.exs.push(ex);
      return;
    }
    // §14.3: the response is no longer in the buffer.
    this.fail('item-not-found', ex);
  }

  private process(rid: number, body: BoshBody, exs: BoshExchange[]): void {
    const a = body.attrs;
    const now = Date.now();
    this.rid = rid;
    if (this.key !== undefined) {
      // §15.4: each key hashes to the previous one; a wrong or missing key ends the session.
      const key = a.key?.toLowerCase();
      if (key === undefined || createHash('sha1').update(key).digest('hex') !== this.key) {
        for (const ex of exs) this.held.push({ rid: Number.NaN, exs: [ex], deadline: 0, pause: false });
        return this.fail('item-not-found');
      }
      this.key = a.newkey?.toLowerCase() ?? key;
    }
    const pause = this.s.maxPause > 0 && a.pause !== undefined ? parseSeconds(a.pause) : undefined;
    const isPause = pause !== undefined && pause <= this.s.maxPause;
    this.pauseMs = isPause ? pause * 1000 : 0;
    const restart = a['xmpp:restart'] === 'true';
    const terminate = a.type === 'terminate';
    // §12: a polling session (hold 0) may not send two empty requests closer than 'polling' seconds.
    if (this.s.hold === 0 && this.s.polling > 0) {
      if (body.payloads.length === 0 && !isPause && !restart && !terminate) {
        if (this.lastPollAt !== 0 && now - this.lastPollAt < this.s.polling * 1000 && this.lastResponseEmpty) {
          for (const ex of exs) this.held.push({ rid: Number.NaN, exs: [ex], deadline: 0, pause: false });
          return this.fail('policy-violation');
        }
        this.lastPollAt = now;
      } else {
        this.lastPollAt = 0;
      }
    }
    // A terminate request is answered by the terminate body only, whatever output comes before.
    this.held.push({ rid, exs, deadline: now + this.s.wait * 1000, pause: isPause, end: terminate });
    if (this.closing) return;
    if (restart) {
      this.awaitingRestart = false;
      this.streamAttrs = streamAttrs(a, this.streamAttrs);
      this.handler?.streamStart('stream', NS.STREAM, this.streamAttrs, NS.CLIENT);
    }
    for (const el of body.payloads) {
      if (this.finished || this.closing) break;
      if (this.awaitingRestart) {
        this.handler?.error(new StreamError('policy-violation', 'Restart the stream (xmpp:restart) after authentication'));
        break;
      }
      this.handler?.element(el);
    }
    // §13: the payloads (typically unavailable presence) are handled first; the stream ends after them.
    if (terminate && !this.closing) setImmediate(endStream, this);
  }

  /** The client's type='terminate', one macrotask after its payloads went in. */
  endByClient(): void {
    if (this.finished) return;
    if (!this.closing) this.handler?.streamEnd();
    if (!this.finished) {
      this.closing = true;
      this.pump();
    }
  }

  /** A binding error (§17.2): every open request gets the terminate body, the session ends. */
  private fail(condition: BoshCondition, ex?: BoshExchange): void {
    if (this.finished) {
      ex?.respond(responseBody({ type: 'terminate', condition }, '', false));
      return;
    }
    this.condition ??= condition;
    this.closing = true;
    if (ex) this.held.push({ rid: Number.NaN, exs: [ex], deadline: 0, pause: false });
    this.pump();
    this.finish();
  }

  /** Answers what can be answered now, then sets the timers. */
  private pump(): void {
    if (this.finished) return;
    if (this.closing) {
      if (this.held.length === 0) {
        // Nothing to answer with the terminate body yet: the next request (or inactivity) gets it.
        this.armTimers();
        return;
      }
      const condition = this.condition ?? (this.streamError !== '' ? 'remote-stream-error' : undefined);
      const payload = this.out + (condition === 'remote-stream-error' ? this.streamError : '');
      this.out = '';
      const all = this.held.splice(0);
      all.forEach((h, i) => this.answer(h, i === 0 ? payload : '', condition ?? null));
      for (const e of this.early?.values() ?? []) this.answer({ rid: Number.NaN, exs: e.exs, deadline: 0, pause: false }, '', condition ?? null);
      this.early = undefined;
      this.finish();
      return;
    }
    const now = Date.now();
    while (this.held.length > 0) {
      const h = this.held[0] as Held;
      const pauseAhead = this.held.some((x) => x.pause);
      // §10: the response to a pause request carries no payloads; every request held before it is answered too.
      if (h.end) break;
      if (h.pause) this.answer(h, '');
      else if (this.out !== '') this.answer(h, this.takeOut());
      else if (this.held.length > this.s.hold || pauseAhead || h.deadline <= now) this.answer(h, '');
      else break;
      this.held.shift();
    }
    this.armTimers();
  }

  private takeOut(): string {
    const out = this.out;
    this.out = '';
    return out;
  }

  /** `terminate`: null for a terminate body without condition, undefined for a normal body. */
  private answer(h: Held, payload: string, terminate?: BoshCondition | null): void {
    const attrs: BodyAttrs = {};
    if (!this.created) {
      this.created = true;
      const s = this.s;
      // §7.2 and XEP-0206 §4: the session creation response.
      Object.assign(attrs, {
        sid: s.sid, wait: s.wait, requests: s.requests, hold: s.hold, inactivity: s.inactivity,
        polling: s.polling, maxpause: s.maxPause > 0 ? s.maxPause : undefined, ver: s.ver,
        secure: this.secure ? 'true' : 'false', 'xmpp:restartlogic': 'true',
      });
    }
    if (this.header && !this.headerDelivered) {
      this.headerDelivered = true;
      attrs.from = this.header.from;
      attrs.authid = this.header.id;
      attrs['xmpp:version'] = '1.0';
    }
    if (terminate !== undefined) {
      attrs.type = 'terminate';
      if (terminate !== null) attrs.condition = terminate;
    }
    const body = responseBody(attrs, payload, payload.includes('<stream:'));
    if (!h.pause && terminate === undefined && !Number.isNaN(h.rid)) {
      this.replay.set(h.rid, body);
      // Keep as many responses as requests may be open at once (§14.3).
      for (const k of this.replay.keys()) {
        if (this.replay.size <= this.s.requests) break;
        this.replay.delete(k);
      }
    }
    this.lastResponseEmpty = payload === '';
    for (const ex of h.exs) ex.respond(body);
  }

  private armTimers(): void {
    const first = this.held[0];
    if (first) {
      this.clearInactivity();
      // A terminate request waits for the end of the stream, which follows within a macrotask.
      if (first.end) return;
      if (this.waitFor === first.rid && this.waitTimer) return;
      if (this.waitTimer) clearTimeout(this.waitTimer);
      this.waitFor = first.rid;
      this.waitTimer = setTimeout(onWait, Math.max(0, first.deadline - Date.now()), this);
      this.waitTimer.unref();
      return;
    }
    if (this.waitTimer) {
      clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
      this.waitFor = Number.NaN;
    }
    if (!this.inactivityTimer && !this.finished) {
      this.inactivityTimer = setTimeout(onInactive, this.pauseMs || this.s.inactivity * 1000, this);
      this.inactivityTimer.unref();
    }
  }

  private clearInactivity(): void {
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = undefined;
  }

  /** The wait of the oldest held request is over. */
  waited(): void {
    this.waitTimer = undefined;
    this.waitFor = Number.NaN;
    this.pump();
  }

  /** §10: no request for the inactivity period: the client is gone, the session ends without telling it. */
  inactive(): void {
    this.inactivityTimer = undefined;
    if (this.finished) return;
    for (const e of this.early?.values() ?? []) {
      const body = responseBody({ type: 'terminate', condition: 'item-not-found' }, '', false);
      for (const ex of e.exs) ex.respond(body);
    }
    this.early = undefined;
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closing = true;
    this.out = '';
    this.replay.clear();
    if (this.waitTimer) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    this.clearInactivity();
    this.s.owner.ended(this);
    if (!this.closedNotified) {
      this.closedNotified = true;
      // For the stream state machine this is a lost connection (its own close already ended it otherwise).
      this.handler?.closed();
    }
  }

}

/** The attributes of the XMPP stream a <body/> opens or restarts (XEP-0206 §3, §5). */
function streamAttrs(a: Attrs, previous: Attrs): Attrs {
  const out: Attrs = {};
  const to = a.to ?? previous.to;
  const lang = a['xml:lang'] ?? previous['xml:lang'];
  const version = a['xmpp:version'] ?? previous.version;
  const from = a.from ?? previous.from;
  if (to !== undefined) out.to = to;
  if (lang !== undefined) out['xml:lang'] = lang;
  if (version !== undefined) out.version = version;
  if (from !== undefined) out.from = from;
  return out;
}

/** §14.1: a positive integer no larger than 2^53 - 1. */
export function parseRid(v: string | undefined): number | undefined {
  if (v === undefined || !/^[0-9]{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return n > 0 && Number.isSafeInteger(n) ? n : undefined;
}

/** A non-negative whole number of seconds, as 'wait', 'hold' and 'pause' carry. */
export function parseSeconds(v: string): number | undefined {
  if (!/^[0-9]{1,9}$/.test(v)) return undefined;
  return Number(v);
}

// Shared timer callbacks: no closure per session.
function onWait(t: BoshTransport): void {
  t.waited();
}
function onInactive(t: BoshTransport): void {
  t.inactive();
}
function endStream(t: BoshTransport): void {
  t.endByClient();
}

/** Sessions with output for a held request, answered together at the end of the tick (like the TCP writes). */
const pending: BoshTransport[] = [];

function flushPending(): void {
  const batch = pending.splice(0);
  for (const t of batch) t.flush();
}

function scheduleFlush(t: BoshTransport): void {
  if (t.flushQueued) return;
  t.flushQueued = true;
  if (pending.length === 0) process.nextTick(flushPending);
  pending.push(t);
}
