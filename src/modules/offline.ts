// XEP-0160: Best Practices for Handling Offline Messages <https://xmpp.org/extensions/xep-0160.html> 1.0.1,
// with XEP-0203 delay stamps and XEP-0334 storage hints.
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import type { Host } from '../core/host.ts';
import type { C2sSession } from '../core/session.ts';
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

/** Whether a message carries something a user would miss: chat states alone are not worth storing. */
export function worthStoring(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type === 'error' || type === 'groupchat') return false;
  const hints = (name: string): boolean => stanza.getChild(name, NS.HINTS) !== undefined;
  if (hints('no-store') || hints('no-permanent-store')) return false;
  if (hints('store')) return true;
  if (type === 'headline') return false;
  return stanza.getElements().some((c) => c.attrs.xmlns !== NS.CHATSTATES && c.attrs.xmlns !== NS.HINTS);
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
    ctx.disco.feature(NS.OFFLINE);

    ctx.hook('message/offline', async (e) => {
      if (!worthStoring(e.stanza)) return false;
      const stored = e.stanza.clone();
      stored.attrs.to = e.to.bareString;
      stored.children.push(xml('delay', { xmlns: NS.DELAY, from: host.name, stamp: new Date().toISOString() }, 'Offline storage'));
      const result = await storage.offline.store(host.name, e.to.local, e.from.toString(), serialize(stored), ctx.options.quota);
      if (!result) throw new StanzaError('resource-constraint', 'The recipient\'s offline storage is full');
      await host.bus.run('message/stored-offline', { host, user: e.to.bare, from: e.from, stanza: stored, id: result.id, count: result.count });
      return true;
    }, { priority: PRIORITY.FEATURE });

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
          const batch = await storage.offline.list(host.name, jid.local, 500);
          if (batch.length === 0) return;
          const sent: number[] = [];
          for (const m of batch) {
            const el = parseElement(m.stanza);
            if (!el) {
              ctx.log.error({ id: m.id }, 'unreadable offline message dropped');
              sent.push(m.id);
              continue;
            }
            if (!session.active) break;
            session.send(el);
            sent.push(m.id);
          }
          // What could not be written to a live stream stays stored for the next login.
          await storage.offline.remove(host.name, jid.local, sent);
          if (!session.active || batch.length < 500) return;
        }
      } finally {
        draining.delete(jid.bareString);
      }
    }
  },
});
