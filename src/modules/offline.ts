// XEP-0160: Best Practices for Handling Offline Messages <https://xmpp.org/extensions/xep-0160.html> 1.0.1,
// with XEP-0203 delay stamps and XEP-0334 storage hints.
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import type { Host } from '../core/host.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import { Element, xml, serialize } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { parseElement } from '../xml/parse.ts';
import { messageType } from '../xmpp/stanza.ts';
import type { Jid } from '../xmpp/jid.ts';

declare module '../core/hook-map.ts' {
  interface HookMap {
    /** A message was stored for an offline account (webhooks and push follow it). */
    'message/stored-offline': { host: Host; user: Jid; from: Jid; stanza: Element; id: number; count: number };
  }
}

/** Stored rows written to a session that confirms delivery (stream management) and not yet acknowledged. */
const HELD = new SessionKey<{ ids: Set<number>; more: boolean; again: boolean }>('offline.held');
/** Rows per batch; a session that confirms delivery gets the next batch once the last one is acknowledged. */
const BATCH = 500;
const TRACKED_BATCH = 100;

/** Whether a message carries something a user would miss: chat states alone are not worth storing. */
/** Messages written to a session straight from storage: their rows exist already, so nothing journals them again. */
export const fromStorage = new WeakSet<Element>();

export function worthStoring(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type === 'error' || type === 'groupchat') return false;
  const hints = (name: string): boolean => stanza.getChild(name, NS.HINTS) !== undefined;
  if (hints('no-store') || hints('no-permanent-store')) return false;
  if (hints('store')) return true;
  if (type === 'headline') return false;
  // A delay stamp says when, not what: a chat state that was on its way (stream management) is still only that.
  return stanza.getElements().some((c) => c.attrs.xmlns !== NS.CHATSTATES && c.attrs.xmlns !== NS.HINTS && c.attrs.xmlns !== NS.DELAY);
}

export default defineModule({
  id: 'offline',
  xeps: [{ xep: 160, version: '1.0.1', status: 'complete' }, { xep: 203, version: '2.0', status: 'complete' }],
  options: z.strictObject({
    quota: z.number().int().min(1).default(1000).describe('messages kept per account; beyond it senders get resource-constraint'),
  }),
  setup(ctx) {
    const { host, storage } = ctx;
    const draining = new Set<string>();
    /** Rows written to tracked sessions and not yet acknowledged, per account: later deliveries skip them. */
    const heldByAccount = new Map<string, Set<number>>();
    /** A stanza written from storage -> its row: removed when the client acknowledges it, kept otherwise. */
    const delivered = new WeakMap<Element, number>();
    /** A stanza stored here -> its row: a late acknowledgement (a client that had it after all) removes it. */
    const storedAs = new WeakMap<Element, number>();
    ctx.disco.feature(NS.OFFLINE);

    ctx.hook('message/offline', async (e) => {
      if (!worthStoring(e.stanza)) return false;
      const stored = e.stanza.clone();
      stored.attrs.to = e.to.bareString;
      // A message that was already on its way (stream management moving it here) keeps its first stamp.
      if (!stored.getChildren('delay', NS.DELAY).some((d) => d.attrs.from === host.name)) {
        stored.children.push(xml('delay', { xmlns: NS.DELAY, from: host.name, stamp: new Date().toISOString() }, 'Offline storage'));
      }
      const result = await storage.offline.store(host.name, e.to.local, e.from.toString(), serialize(stored), ctx.options.quota);
      if (!result) throw new StanzaError('resource-constraint', 'The recipient\'s offline storage is full');
      storedAs.set(e.stanza, result.id);
      await host.bus.run('message/stored-offline', { host, user: e.to.bare, from: e.from, stanza: stored, id: result.id, count: result.count });
      return true;
    }, { priority: PRIORITY.FEATURE });

    // Stream management: a stored message leaves storage once the client acknowledges it, not when written.
    ctx.hook('c2s/acked', async ({ user, session, stanzas }) => {
      const ids: number[] = [];
      for (const el of stanzas) {
        const id = delivered.get(el) ?? storedAs.get(el);
        if (id === undefined) continue;
        ids.push(id);
        delivered.delete(el);
        storedAs.delete(el);
        if (session) release(session, id);
      }
      if (ids.length > 0) await storage.offline.remove(host.name, user.local, ids);
      const held = session?.get(HELD);
      if (session && held && held.ids.size === 0 && held.more) {
        // A delivery still finishing picks this up when it ends.
        if (draining.has(user.bareString)) held.again = true;
        else await deliverMore(session);
      }
    });

    // Never acknowledged: the row is still stored, so the next login gets it (stream management moves nothing).
    ctx.hook('c2s/unacked', ({ session, stanza }) => {
      const id = delivered.get(stanza);
      if (id === undefined) return false;
      release(session, id);
      return true;
    }, { priority: PRIORITY.FEATURE });

    ctx.hook('session/closed', ({ session }) => {
      const held = session.get(HELD);
      if (!held) return;
      for (const id of [...held.ids]) release(session, id);
    });

    function heldOf(session: C2sSession): { ids: Set<number>; more: boolean; again: boolean } {
      let held = session.get(HELD);
      if (!held) {
        held = { ids: new Set(), more: false, again: false };
        session.set(HELD, held);
      }
      return held;
    }

    async function deliverMore(session: C2sSession): Promise<void> {
      const held = session.get(HELD);
      if (!held) return;
      held.more = false;
      held.again = false;
      if (session.active && session.available && session.priority >= 0) await deliver(session);
    }

    function hold(session: C2sSession, id: number): void {
      const bare = (session.jid as Jid).bareString;
      heldOf(session).ids.add(id);
      let account = heldByAccount.get(bare);
      if (!account) heldByAccount.set(bare, account = new Set());
      account.add(id);
    }

    function release(session: C2sSession, id: number): void {
      const jid = session.jid;
      if (!jid) return;
      session.get(HELD)?.ids.delete(id);
      const account = heldByAccount.get(jid.bareString);
      if (!account) return;
      account.delete(id);
      if (account.size === 0) heldByAccount.delete(jid.bareString);
    }

    // Initial presence with a non-negative priority: the stored messages follow, oldest first, once.
    ctx.hook('user/available', async ({ session }) => {
      if (session.priority < 0) return;
      await deliver(session);
    });

    async function deliver(session: C2sSession): Promise<void> {
      const jid = session.jid;
      if (!jid || draining.has(jid.bareString)) return;
      draining.add(jid.bareString);
      try {
        for (;;) {
          // A session that confirms delivery (stream management) keeps rows until acknowledged, a batch at a time.
          const tracked = session.tracker !== undefined;
          const limit = tracked ? TRACKED_BATCH : BATCH;
          const held = heldByAccount.get(jid.bareString);
          const skip = held?.size ?? 0;
          const rows = await storage.offline.list(host.name, jid.local, limit + skip);
          const batch = held ? rows.filter((m) => !held.has(m.id)).slice(0, limit) : rows;
          if (batch.length === 0) return;
          const more = rows.length === limit + skip;
          if (tracked) heldOf(session).more = more;
          const done: number[] = [];
          let written = 0;
          for (const m of batch) {
            const el = parseElement(m.stanza);
            if (!el) {
              ctx.log.error({ id: m.id }, 'unreadable offline message dropped');
              done.push(m.id);
              continue;
            }
            if (!session.active) break;
            if (tracked) {
              // Held before sending: a full queue may end the session inside send().
              delivered.set(el, m.id);
              fromStorage.add(el);
              hold(session, m.id);
            } else done.push(m.id);
            session.send(el);
            written++;
          }
          // What could not be written to a live stream stays stored for the next login.
          if (done.length > 0) await storage.offline.remove(host.name, jid.local, done);
          if (tracked && written > 0) {
            // The next batch follows the acknowledgement of this one (see c2s/acked).
            session.tracker?.requestAck(session);
            return;
          }
          if (!session.active || !more) return;
        }
      } finally {
        draining.delete(jid.bareString);
        const held = session.get(HELD);
        if (held?.again && held.ids.size === 0) void deliverMore(session).catch((err) => ctx.log.error({ err }, 'offline delivery failed'));
      }
    }
  },
});
