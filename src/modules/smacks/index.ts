// XEP-0198: Stream Management <https://xmpp.org/extensions/xep-0198.html> 1.6.3 — acknowledgements both ways,
// resumption of a session whose connection dropped, and no stanza lost when it does not come back.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { defineModule } from '../../core/module.ts';
import { PRIORITY } from '../../core/hooks.ts';
import { StanzaError, StreamError } from '../../core/errors.ts';
import { SessionKey, type C2sSession, type StanzaTracker } from '../../core/session.ts';
import { Element, serialize, xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { Jid } from '../../xmpp/jid.ts';
import { messageType } from '../../xmpp/stanza.ts';
import { fromStorage, worthStoring } from '../offline.ts';
import { requestPush } from '../push.ts';
import { AckQueue, nextCount, parseCount } from './ack-queue.ts';

export const SM_NS = 'urn:xmpp:sm:3';

/** How long, and for how many sessions, a failed <resume/> can still learn the old session's 'h' (§5). */
const EXPIRED_TTL_MS = 60 * 60 * 1000;
const EXPIRED_MAX = 10_000;

/** Stream management state of one session. */
type SmState = {
  readonly session: C2sSession;
  /** Stanzas sent to the client and not yet acknowledged. */
  readonly queue: AckQueue<Element>;
  /** Stanzas handled from the client ('h' we report), modulo 2^32. */
  inbound: number;
  /** The SM-ID when the session may be resumed. */
  readonly id: string | undefined;
  /** Seconds a detached session is kept. */
  readonly max: number;
  /** queue.sent when we last sent <r/>. */
  requested: number;
  /** When the first stanza since the last <r/> was sent; 0 when there is none. */
  dirtySince: number;
  /** When a detached session expires; 0 while connected. */
  deadline: number;
  /** The session is ending: it can no longer be resumed. */
  ending: boolean;
  /** A requested <r/> waits for the stanzas still on their way through c2s/outgoing. */
  ackScheduled: boolean;
  /** Our <a/> answers, each sent once what it acknowledges is durable, in order. */
  answering: Promise<void>;
};

/** What remains of a resumable session that ended: enough to answer a late <resume/> (§5) and take its 'h'. */
type Expired = {
  user: string;
  /** Stanzas we had handled from the client. */
  h: number;
  /** The client's count at which `items` start. */
  base: number;
  /** Stanzas the client never acknowledged, oldest first, as they were kept (offline storage). */
  items: Element[];
  at: number;
  /** Settles once the unacknowledged stanzas have been dealt with. */
  done: Promise<void>;
};

const STATE = new SessionKey<SmState>('smacks.state');

/** RFC 6120 §4.9.2 with XEP-0198 §4's application-specific condition. */
export class HandledCountTooHigh extends StreamError {
  readonly h: number;
  readonly sendCount: number;
  constructor(h: number, sendCount: number) {
    super('undefined-condition', `You acknowledged ${h} stanzas, but only ${sendCount} were sent`);
    this.h = h;
    this.sendCount = sendCount;
  }
  override toElement(): Element {
    const el = super.toElement();
    el.children.push(xml('handled-count-too-high', { xmlns: SM_NS, h: this.h, 'send-count': this.sendCount }));
    return el;
  }
}

function failed(condition: 'unexpected-request' | 'feature-not-implemented' | 'item-not-found' | 'bad-request' | 'undefined-condition',
  h?: number, app?: Element): Element {
  return xml('failed', { xmlns: SM_NS, h }, xml(condition, { xmlns: NS.STANZAS }), app);
}

export default defineModule({
  id: 'smacks',
  xeps: [{ xep: 198, version: '1.6.3', status: 'complete' }],
  options: z.strictObject({
    resume_timeout: z.number().min(0).default(300)
      .describe('seconds a session whose connection dropped is kept for resumption; 0 turns resumption off'),
    max_unacked: z.number().int().min(1).default(500)
      .describe('stanzas a session may leave unacknowledged; beyond it the stream is closed with policy-violation'),
    request_ack_after: z.number().int().min(1).default(5)
      .describe('ask the client for an acknowledgement after this many stanzas sent since the last request'),
    request_ack_delay: z.number().positive().default(5)
      .describe('seconds after which stanzas not yet covered by a request are asked about anyway'),
  }),
  setup(ctx) {
    const { host, options, router } = ctx;
    const bus = host.bus;
    /** SM-ID -> a resumable session, connected or detached. */
    const resumable = new Map<string, SmState>();
    /** Sessions with stanzas sent since their last <r/>. */
    const dirty = new Set<SmState>();
    const detached = new Set<SmState>();
    /** SM-ID -> an ended resumable session, oldest first. */
    const expired = new Map<string, Expired>();
    /** An unacknowledged message -> the copy moved to offline storage (what a late acknowledgement names). */
    const movedAs = new WeakMap<Element, Element>();
    const ackDelayMs = options.request_ack_delay * 1000;
    const resumeMs = options.resume_timeout * 1000;
    const R = xml('r', { xmlns: SM_NS });
    const { storage } = ctx;
    /** Unacknowledged messages -> their journal rows (see journal()). */
    const journaled = new WeakMap<Element, number>();
    /** Copies whose journal row became a stored message -> that row (a late acknowledgement removes it). */
    const unheldRows = new WeakMap<Element, number>();

    /**
     * A message written to the client is journaled in offline storage until acknowledged, so a hard kill of
     * the server cannot lose it: after a restart it is an ordinary stored message.
     */
    function journal(session: C2sSession, stanza: Element, sentAt: number): void {
      const jid = session.jid;
      if (!jid || stanza.name !== 'message' || fromStorage.has(stanza) || !worthStoring(stanza)) return;
      const id = storage.offline.hold(host.name, jid.local, stanza.attrs.from ?? host.name, serialize(storedCopy(stanza, sentAt, jid)));
      journaled.set(stanza, id);
    }

    /** What the journal row holds: stamped with when the message was sent, addressed to the bare JID. */
    function storedCopy(stanza: Element, sentAt: number, jid: Jid): Element {
      const copy = withDelay(stanza, sentAt, host.name);
      copy.attrs.to = jid.bareString;
      return copy;
    }

    /** Acknowledged: journal rows of these stanzas are dropped. */
    function releaseJournaled(stanzas: Element[]): void {
      const ids: number[] = [];
      for (const el of stanzas) {
        const id = journaled.get(el);
        if (id === undefined) continue;
        ids.push(id);
        journaled.delete(el);
      }
      storage.offline.release(ids);
    }

    /** §4: our 'h', sent once every stanza it counts is durable (group commit: one barrier serves many). */
    function answer(st: SmState): void {
      const h = st.inbound;
      st.answering = st.answering.then(() => storage.barrier()).then(
        () => { if (!st.ending) st.session.sendRaw(xml('a', { xmlns: SM_NS, h })); },
        (err: unknown) => {
          ctx.log.error({ err }, 'storage barrier failed; acknowledgement withheld');
          st.session.close(new StreamError('internal-server-error'));
        },
      );
    }

    const tracker: StanzaTracker = {
      received(session) {
        const st = session.get(STATE);
        if (st) st.inbound = nextCount(st.inbound);
      },
      sent(session, stanza) {
        const st = session.get(STATE);
        if (!st || st.ending) return;
        const now = Date.now();
        st.queue.push(stanza, now);
        journal(session, stanza, now);
        if (st.queue.length > options.max_unacked) {
          end(st, new StreamError('policy-violation', `More than ${options.max_unacked} stanzas unacknowledged`));
          return;
        }
        if (session.detached) {
          // §5 leaves notification to the server: a push tells the app a message waits for its session.
          if (stanza.name === 'message' && worthStoring(stanza) && session.jid) {
            void requestPush({ host, user: session.jid.bare, reason: 'no-active-session', stanza })
              .catch((err) => ctx.log.error({ err }, 'push request failed'));
          }
          return;
        }
        if (((st.queue.sent - st.requested) >>> 0) >= options.request_ack_after) askNow(st);
        else if (st.dirtySince === 0) {
          st.dirtySince = Date.now();
          dirty.add(st);
        }
      },
      requestAck(session) {
        const st = session.get(STATE);
        if (!st || st.ackScheduled) return;
        // Stanzas just sent may still be passing c2s/outgoing handlers: their writes wait one promise job each,
        // queued before this one, so <r/> follows them (in the same write, as the transport flushes per tick).
        st.ackScheduled = true;
        void Promise.resolve(st).then(askScheduled);
      },
      connectionLost(session) {
        const st = session.get(STATE);
        if (!st || st.id === undefined || st.ending) return false;
        st.deadline = Date.now() + st.max * 1000;
        st.dirtySince = 0;
        dirty.delete(st);
        detached.add(st);
        ctx.log.debug({ jid: session.jid?.toString(), seconds: st.max }, 'session detached, waiting for resumption');
        return true;
      },
    };

    /** <r/> now, if anything was sent since the last one. */
    function askNow(st: SmState): void {
      st.dirtySince = 0;
      dirty.delete(st);
      const session = st.session;
      if (session.detached || !session.active || st.ending) return;
      if (st.queue.length === 0 || st.queue.sent === st.requested) return;
      st.requested = st.queue.sent;
      session.sendRaw(R);
    }

    function askScheduled(st: SmState): void {
      st.ackScheduled = false;
      askNow(st);
    }

    // §2: offered once the client has authenticated, with bind.
    ctx.fold('c2s/features', (_e, features) => [...features, xml('sm', { xmlns: SM_NS })]);

    ctx.hook('c2s/nonza', async ({ session, element }) => {
      if (element.attrs.xmlns !== SM_NS) return false;
      switch (element.name) {
        case 'enable':
          enable(session, element);
          return true;
        case 'resume':
          await resume(session, element);
          return true;
        case 'r': {
          const st = session.get(STATE);
          if (!st) return false; // not enabled: unsupported-stanza-type, like any unknown element
          answer(st);
          return true;
        }
        case 'a': {
          const st = session.get(STATE);
          if (!st) return false;
          await acknowledge(st, element);
          return true;
        }
        default:
          return false;
      }
    });

    // Inline (XEP-0388, XEP-0386): <enable/> inside Bind2's <bind/>, <resume/> inside SASL2's <authenticate/>;
    // the answers land inside <bound/> and <success/>.
    ctx.hook('c2s/inline', async ({ session, element, context }) => {
      if (element.attrs.xmlns !== SM_NS) return false;
      if (context === 'bind2' && element.name === 'enable') {
        enable(session, element);
        return true;
      }
      if (context === 'sasl2' && element.name === 'resume') {
        await resume(session, element);
        return true;
      }
      return false;
    });

    // First, so the session stops being resumable the moment it closes (handlers start synchronously).
    ctx.hook('session/closed', ({ session }) => {
      const st = session.get(STATE);
      if (st) return ended(st);
    }, { priority: PRIORITY.FILTER });

    // What nobody else took: messages as for a resource that went away (RFC 6121 §8.5.3.2.1, so §8.5.2),
    // IQ requests answered with an error (RFC 6120 §8.2.3), the rest dropped.
    ctx.hook('c2s/unacked', async ({ session, stanza, sentAt }) => {
      const jid = session.jid;
      const from = stanza.attrs.from === undefined ? undefined : Jid.tryParse(stanza.attrs.from);
      if (!jid) return true;
      if (stanza.name === 'message') {
        const type = messageType(stanza);
        if (type === 'error') return true;
        const id = journaled.get(stanza);
        if (id !== undefined) {
          // Already stored (held): it just becomes an ordinary offline message, and is announced as one.
          journaled.delete(stanza);
          const count = await storage.offline.unhold(host.name, jid.local, [id]);
          const copy = storedCopy(stanza, sentAt, jid);
          movedAs.set(stanza, copy);
          unheldRows.set(copy, id);
          await bus.run('message/stored-offline', { host, user: jid.bare, from: from ?? host.jid, stanza: copy, id, count });
          return true;
        }
        if (type !== 'groupchat') {
          const copy = withDelay(stanza, sentAt, host.name);
          try {
            if (await bus.run('message/offline', { host, stanza: copy, from: from ?? host.jid, to: jid.bare })) {
              movedAs.set(stanza, copy);
              return true;
            }
          } catch (err) {
            bounce(stanza, from, jid, err instanceof StanzaError ? err : StanzaError.internal());
            return true;
          }
          if (type === 'headline') return true;
        }
        bounce(stanza, from, jid, StanzaError.serviceUnavailable());
        return true;
      }
      if (stanza.name === 'iq' && (stanza.attrs.type === 'get' || stanza.attrs.type === 'set')) {
        bounce(stanza, from, jid, StanzaError.serviceUnavailable());
      }
      return true;
    }, { priority: PRIORITY.DELIVERY });

    // One timer for every session: ack requests that are due, detached sessions that expired, old SM-IDs.
    ctx.timer(Math.max(10, Math.min(1000, ackDelayMs / 4, resumeMs > 0 ? resumeMs / 4 : 1000)), () => {
      const now = Date.now();
      for (const st of dirty) if (now - st.dirtySince >= ackDelayMs) askNow(st);
      for (const st of detached) {
        if (now >= st.deadline) {
          ctx.log.debug({ jid: st.session.jid?.toString() }, 'resumption timed out');
          end(st);
        }
      }
      forgetExpired(now);
    });

    ctx.onStop(() => {
      resumable.clear();
      dirty.clear();
      detached.clear();
      expired.clear();
    });

    /** §3: only after binding, only once; resumption when the client asks and the server allows it. */
    function enable(session: C2sSession, el: Element): void {
      if (!session.jid || session.get(STATE)) {
        session.sendRaw(failed('unexpected-request'));
        return;
      }
      const wantsResume = el.attrs.resume === 'true' || el.attrs.resume === '1';
      const canResume = wantsResume && options.resume_timeout > 0;
      const asked = parseCount(el.attrs.max);
      const max = canResume ? Math.min(options.resume_timeout, asked !== undefined && asked > 0 ? asked : Infinity) : 0;
      const id = canResume ? randomBytes(18).toString('base64url') : undefined;
      // The counters start with <enabled/> (§4): written, then the tracker installed, with nothing in between.
      session.sendRaw(xml('enabled', { xmlns: SM_NS, id, resume: canResume ? 'true' : undefined, max: canResume ? Math.ceil(max) : undefined }));
      const st: SmState = {
        session, queue: new AckQueue<Element>(), inbound: 0, id, max, requested: 0, dirtySince: 0, deadline: 0, ending: false,
        ackScheduled: false, answering: Promise.resolve(),
      };
      session.set(STATE, st);
      session.tracker = tracker;
      if (id !== undefined) resumable.set(id, st);
    }

    /** §4: <a/> from the client. A malformed or impossible 'h' ends the stream. */
    async function acknowledge(st: SmState, el: Element): Promise<void> {
      const h = parseCount(el.attrs.h);
      if (h === undefined) {
        // Well-formed XML that cannot be processed (RFC 6120 §4.9.3.1): 'h' must be an xs:unsignedInt.
        st.session.close(new StreamError('bad-format', "'h' must be an unsigned 32-bit integer"));
        return;
      }
      const acked = st.queue.ack(h);
      if (!acked) {
        st.session.close(new HandledCountTooHigh(h, st.queue.sent));
        return;
      }
      if (st.queue.length === 0) {
        st.dirtySince = 0;
        dirty.delete(st);
      }
      if (acked.length > 0) await fireAcked(st, acked);
    }

    function fireAcked(st: SmState, stanzas: Element[]): Promise<boolean> {
      releaseJournaled(stanzas);
      const jid = st.session.jid as Jid;
      return bus.run('c2s/acked', { host, user: jid.bare, session: st.session, stanzas });
    }

    /** §5: a new stream of the same account takes the old session over; anything else fails. */
    async function resume(fresh: C2sSession, el: Element): Promise<void> {
      if (fresh.jid || fresh.get(STATE)) {
        fresh.sendRaw(failed('unexpected-request'));
        return;
      }
      if (options.resume_timeout === 0) {
        fresh.sendRaw(failed('feature-not-implemented'));
        return;
      }
      const previd = el.attrs.previd;
      const h = parseCount(el.attrs.h);
      // Any 'h' we report below counts only what is durable.
      await storage.barrier();
      if (previd === undefined || previd === '' || h === undefined) {
        fresh.sendRaw(failed('bad-request'));
        return;
      }
      const user = `${fresh.user ?? ''}@${host.name}`;
      const st = resumable.get(previd);
      if (st && !st.ending && st.session.jid?.bareString === user) {
        await takeOver(st, fresh, h);
        return;
      }
      const old = expired.get(previd);
      if (old && old.user === user) {
        // Timed out: the client still says what it had received, so nothing moved offline reaches it twice.
        await old.done;
        await lateAck(old, h);
        fresh.sendRaw(failed('item-not-found', old.h));
        return;
      }
      // Unknown, or another account's session: the same answer, so SM-IDs reveal nothing.
      if (st) ctx.log.info({ user, owner: st.session.jid?.bareString }, 'resumption by another account refused');
      fresh.sendRaw(failed('item-not-found'));
    }

    async function takeOver(st: SmState, fresh: C2sSession, h: number): Promise<void> {
      // Out of the sweep's reach while acknowledgements are handed over.
      detached.delete(st);
      st.deadline = 0;
      const acked = st.queue.ack(h);
      if (!acked) {
        fresh.sendRaw(failed('undefined-condition', st.inbound, xml('handled-count-too-high', { xmlns: SM_NS, h, 'send-count': st.queue.sent })));
        end(st, new HandledCountTooHigh(h, st.queue.sent));
        return;
      }
      if (acked.length > 0) await fireAcked(st, acked);
      if (!fresh.active || fresh.jid) return;
      if (st.ending || !st.session.active) {
        // It ended meanwhile (replaced by a new bind, or the server stopping).
        const memo = st.id === undefined ? undefined : expired.get(st.id);
        if (memo) await memo.done;
        fresh.sendRaw(failed('item-not-found', st.inbound));
        return;
      }
      // <resumed/>, then exactly the stanzas not acknowledged (sent before or queued while detached), then <r/>.
      const replay = [...st.queue.pending()];
      const preamble = [xml('resumed', { xmlns: SM_NS, previd: st.id, h: st.inbound }), ...replay];
      st.dirtySince = 0;
      dirty.delete(st);
      if (replay.length > 0) {
        preamble.push(R);
        st.requested = st.queue.sent;
      }
      st.session.adoptConnection(fresh, preamble);
      ctx.log.debug({ jid: st.session.jid?.toString(), replayed: replay.length }, 'session resumed');
    }

    /** Ends a session now (a detached one has no stream to write the error to). */
    function end(st: SmState, error?: StreamError): void {
      if (st.ending) return;
      detached.delete(st);
      st.session.close(error);
    }

    /** The session is over: what the client never acknowledged goes to 'c2s/unacked', in order. */
    async function ended(st: SmState): Promise<void> {
      st.ending = true;
      detached.delete(st);
      dirty.delete(st);
      const jid = st.session.jid;
      if (st.id !== undefined && resumable.get(st.id) === st) resumable.delete(st.id);
      const base = st.queue.acked;
      const unacked = st.queue.takeAll();
      let finish: () => void = () => undefined;
      let memo: Expired | undefined;
      if (st.id !== undefined && jid) {
        memo = { user: jid.bareString, h: st.inbound, base, items: [], at: Date.now(), done: new Promise<void>((r) => { finish = r; }) };
        expired.delete(st.id);
        expired.set(st.id, memo);
        forgetExpired(Date.now());
      }
      try {
        for (const { item, at } of unacked) {
          try {
            await bus.run('c2s/unacked', { host, session: st.session, stanza: item, sentAt: at });
          } catch (err) {
            ctx.log.error({ err }, 'an unacknowledged stanza could not be handled');
          }
          // Taken by another handler: its journal row is not needed.
          const id = journaled.get(item);
          if (id !== undefined) {
            journaled.delete(item);
            storage.offline.release([id]);
          }
          memo?.items.push(movedAs.get(item) ?? item);
        }
      } finally {
        finish();
      }
    }

    /** A failed <resume/> of a session we remember: its 'h' acknowledges what the client did receive. */
    async function lateAck(old: Expired, h: number): Promise<void> {
      const n = (h - old.base) >>> 0;
      if (n === 0 || n > old.items.length) return;
      const stanzas = old.items.splice(0, n);
      old.base = h;
      // Journal rows that became stored messages: the client had them after all.
      const user = Jid.parse(old.user);
      const ids = stanzas.flatMap((el) => {
        const id = unheldRows.get(el);
        return id === undefined ? [] : [id];
      });
      if (ids.length > 0) await storage.offline.remove(host.name, user.local, ids);
      await bus.run('c2s/acked', { host, user, session: undefined, stanzas });
    }

    function forgetExpired(now: number): void {
      for (const [id, x] of expired) {
        if (now - x.at < EXPIRED_TTL_MS && expired.size <= EXPIRED_MAX) break;
        expired.delete(id);
      }
    }

    /** Answers the sender of a stanza that cannot be delivered (never an error to an error). */
    function bounce(stanza: Element, from: Jid | undefined, to: Jid, err: StanzaError): void {
      if (!from || stanza.attrs.type === 'error') return;
      router.bounce({ host, stanza, from, to }, err);
    }

  },
});

/** A copy for offline storage, stamped with when the server first sent it (XEP-0203), unless already stamped. */
function withDelay(stanza: Element, sentAt: number, hostName: string): Element {
  const copy = stanza.clone();
  const stamped = copy.getChildren('delay', NS.DELAY).some((d) => d.attrs.from === hostName);
  if (!stamped) copy.children.push(xml('delay', { xmlns: NS.DELAY, from: hostName, stamp: new Date(sentAt).toISOString() }, 'Offline storage'));
  return copy;
}
