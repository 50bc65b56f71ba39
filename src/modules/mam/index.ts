// XEP-0313: Message Archive Management <https://xmpp.org/extensions/xep-0313.html> 1.1.3, with XEP-0359 stanza
// ids, XEP-0059 paging, XEP-0441 preferences and XEP-0431 full-text search.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { StanzaError, StorageError } from '../../core/errors.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import { PRIORITY } from '../../core/hooks.ts';
import { defineModule } from '../../core/module.ts';
import { ARCHIVE_DEFAULTS, type ArchivePrefs } from '../../storage/types.ts';
import { serialize, xml, type Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import type { Jid } from '../../xmpp/jid.ts';
import { messageType } from '../../xmpp/stanza.ts';
import { parseQueryForm, queryForm } from './form.ts';
import { MAM_NS } from './ns.ts';
import { archiveDecision, compilePrefs, parsePrefs, prefsElement, type CompiledPrefs } from './prefs.ts';
import { parseRsm, rsmResult } from './rsm.ts';
import { parseStored } from './stored.ts';

/** Preferences of this many accounts stay in memory; they are read for every archived message. */
const PREFS_CACHE = 10_000;
/** Rows removed per purge step; the event loop gets a turn between steps. */
const PURGE_STEP = 1000;

/** Where an outgoing message went in its sender's archive, for modules that copy it (sent carbons). */
const sentIds = new WeakMap<Element, { by: string; id: string }>();

/** The sender's archive id of a message a local client sent, once the archive has taken it. */
export function archivedAs(stanza: Element): { by: string; id: string } | undefined {
  return sentIds.get(stanza);
}

/** §6.1.1: chat and normal messages with a body, unless XEP-0334 hints say otherwise. */
export function archivable(stanza: Element): boolean {
  const type = messageType(stanza);
  if (type !== 'chat' && type !== 'normal') return false;
  let body = false;
  let store = false;
  for (const c of stanza.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns;
    if (c.name === 'body' && (ns === undefined || ns === NS.CLIENT)) body = true;
    else if (ns === NS.HINTS) {
      if (c.name === 'no-store' || c.name === 'no-permanent-store') return false;
      if (c.name === 'store') store = true;
    }
  }
  return body || store;
}

/** XEP-0359 business rules: only the archive says what it stored; stanza-ids claiming to be by `by` go. */
export function stripStanzaIds(stanza: Element, by: string): void {
  for (const c of stanza.children) {
    if (typeof c !== 'string' && c.name === 'stanza-id' && c.attrs.xmlns === MAM_NS.SID && c.attrs.by === by) {
      stanza.removeChildren((el) => el.name === 'stanza-id' && el.attrs.xmlns === MAM_NS.SID && el.attrs.by === by);
      return;
    }
  }
}

/** The text indexed for search: the bodies, in every language sent. */
function bodyText(stanza: Element): string {
  let text = '';
  for (const c of stanza.children) {
    if (typeof c !== 'string' && c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS.CLIENT)) {
      text = text === '' ? c.text() : `${text}\n${c.text()}`;
    }
  }
  return text;
}

export default defineModule({
  id: 'mam',
  xeps: [
    { xep: 313, version: '1.1.3', status: 'complete' },
    { xep: 359, version: '0.7.0', status: 'complete' },
    { xep: 59, version: '1.0', status: 'complete' },
    { xep: 441, version: '0.2.0', status: 'complete' },
    { xep: 431, version: '0.2.0', status: 'complete' },
  ],
  options: z.strictObject({
    default: z.enum(ARCHIVE_DEFAULTS).default('always')
      .describe('what is archived for accounts that set no preferences: always, never, or roster (contacts only)'),
    retention_days: z.number().min(0).default(0).describe('days a message stays in the archive; 0 keeps messages forever'),
    purge_interval: z.number().int().min(1).default(3600).describe('seconds between two removals of expired messages'),
    page_size: z.number().int().min(1).default(50).describe('messages per page when a query does not say'),
    max_page_size: z.number().int().min(1).default(250).describe('messages per page at most, whatever a query asks'),
    fulltext: z.boolean().default(false)
      .describe('index message bodies for full-text search (XEP-0431), when the storage can; about doubles the cost of archiving'),
  }),
  setup(ctx) {
    const { host, storage, sessions, options } = ctx;
    const archive = storage.archive;
    const fullText = options.fulltext && archive.fullText;
    const priority = { priority: PRIORITY.FEATURE };

    // §7: archives live on the accounts' bare JIDs, so only accounts advertise them (the host has none).
    // ctx.disco.feature would add the host too, hence the account set directly, undone on stop.
    for (const ns of [MAM_NS.MAM, MAM_NS.MAM_EXTENDED, MAM_NS.SID, ...(fullText ? [MAM_NS.FULLTEXT] : [])]) {
      if (host.accountFeatures.has(ns)) continue;
      host.accountFeatures.add(ns);
      ctx.onStop(() => { host.accountFeatures.delete(ns); });
    }

    // ---------------------------------------------------------------------------------------- preferences

    const prefsCache = new Map<string, CompiledPrefs>();
    const defaults: ArchivePrefs = { default: options.default, always: [], never: [] };

    async function prefsOf(user: Jid): Promise<CompiledPrefs> {
      const key = user.bareString;
      const hit = prefsCache.get(key);
      if (hit) return hit;
      const prefs = compilePrefs((await archive.getPrefs(host.name, user.local)) ?? defaults);
      if (prefsCache.size >= PREFS_CACHE) prefsCache.delete(prefsCache.keys().next().value as string);
      prefsCache.set(key, prefs);
      return prefs;
    }

    async function wanted(owner: Jid, target: Jid): Promise<boolean> {
      const decision = archiveDecision(await prefsOf(owner), target);
      if (decision !== 'roster') return decision;
      return (await storage.roster.getItem(host.name, owner.local, target.bareString)) !== undefined;
    }

    // ------------------------------------------------------------------------------------------ archiving

    /** Stores a message in `owner`'s archive; a failing archive is logged and never holds a message back. */
    async function store(owner: Jid, peer: Jid, direction: 'in' | 'out', stanza: Element): Promise<string | undefined> {
      try {
        if (!(await wanted(owner, peer))) return undefined;
        const { id } = await archive.append(host.name, owner.local, {
          with: peer.toString(),
          direction,
          stanza: serialize(stanza),
          text: fullText ? bodyText(stanza) : undefined,
        });
        return id;
      } catch (err) {
        ctx.log.error({ err, user: owner.bareString }, 'archiving a message failed');
        return undefined;
      }
    }

    // Outgoing: the sender's archive, before any routing. A message to one's own account is archived once, on
    // arrival; the server itself takes no messages. Ids claiming to come from the sender's archive are dropped
    // first, and so are those claiming a local recipient's, which its arrival would drop anyway: the sender's
    // archive then keeps the message as delivered. Other entities' ids pass (XEP-0359's first business rule).
    ctx.hook('pre-message', async (e) => {
      const owner = e.from.bare;
      stripStanzaIds(e.stanza, owner.bareString);
      if (e.to.local !== '' && host.server.hosts.has(e.to.domain)) stripStanzaIds(e.stanza, e.to.bareString);
      if (!e.origin || !archivable(e.stanza)) return false;
      if (e.to.bareString === owner.bareString || (e.to.local === '' && e.to.domain === host.name)) return false;
      const id = await store(owner, e.to, 'out', e.stanza);
      if (id !== undefined) sentIds.set(e.stanza, { by: owner.bareString, id });
      return false;
    }, priority);

    // Incoming: the recipient's archive, once per account however many resources get it (or offline storage
    // keeps it), above the delivery rules and carbons so every copy carries the stanza-id.
    const incoming = async (e: StanzaEvent): Promise<boolean> => {
      const owner = e.to.bare;
      stripStanzaIds(e.stanza, owner.bareString);
      if (!archivable(e.stanza)) return false;
      if (sessions.resources(owner).length === 0 && !(await host.auth.userExists(owner.local))) return false;
      const id = await store(owner, e.from, 'in', e.stanza);
      if (id !== undefined) e.stanza.children.push(xml('stanza-id', { xmlns: MAM_NS.SID, by: owner.bareString, id }));
      return false;
    };
    ctx.hook('message/bare', incoming, priority);
    ctx.hook('message/full', incoming, priority);

    ctx.hook('account/removed', async ({ user }) => {
      prefsCache.delete(user.bareString);
      await archive.removeAll(host.name, user.local);
    });

    // ------------------------------------------------------------------------------------------- queries

    /** §8.1: a user's archive is the user's alone. */
    const ownArchive = (e: StanzaEvent): Jid => {
      if (e.from.bareString !== e.to.bareString) throw StanzaError.forbidden('Only the owner may use an archive');
      return e.to.bare;
    };

    ctx.iq.get(MAM_NS.MAM, 'query', (e) => {
      ownArchive(e);
      return xml('query', { xmlns: MAM_NS.MAM }, queryForm({ fullText }));
    }, { to: ['account'] });

    ctx.iq.set(MAM_NS.MAM, 'query', async (e, query) => {
      const owner = ownArchive(e);
      const filter = parseQueryForm(query.getChild('x', MAM_NS.DATA), { fullText });
      const rsm = parseRsm(query.getChild('set', MAM_NS.RSM));
      const max = Math.min(rsm.max ?? options.page_size, options.max_page_size);
      let page;
      try {
        page = await archive.query(host.name, owner.local, filter, { max, after: rsm.after, before: rsm.before, index: rsm.index });
      } catch (err) {
        if (err instanceof StorageError && err.code === 'NOT_FOUND') throw StanzaError.itemNotFound('No such message in the archive');
        throw err;
      }
      const session = sessions.get(e.from);
      if (session && page.messages.length > 0) {
        const queryid = query.attrs.queryid;
        const to = e.from.toString();
        const prefix = randomBytes(6).toString('base64url');
        const stanzas = parseStored(page.messages.map((m) => m.stanza));
        // §4.3.4 (extended): flip-page changes the order of sending only, never the page.
        const order = query.getChild('flip-page', MAM_NS.MAM) ? [...page.messages.keys()].reverse() : page.messages.keys();
        for (const i of order) {
          const m = page.messages[i];
          if (!m) continue;
          const original = stanzas[i];
          if (!original) ctx.log.error({ user: owner.bareString, id: m.id }, 'unreadable archived message sent without its content');
          session.send(xml('message', { to, from: owner.bareString, id: `${prefix}-${i}` },
            xml('result', { xmlns: MAM_NS.MAM, queryid, id: m.id },
              xml('forwarded', { xmlns: MAM_NS.FORWARD },
                xml('delay', { xmlns: NS.DELAY, stamp: new Date(m.at).toISOString() }),
                original))));
        }
      }
      // The <fin/> goes after the last result: the IQ reply is routed once this handler returns.
      const first = page.messages[0];
      const last = page.messages.at(-1);
      return xml('fin', { xmlns: MAM_NS.MAM, complete: page.complete ? 'true' : undefined },
        rsmResult({ first: first?.id, firstIndex: first ? page.firstIndex : undefined, last: last?.id, count: page.count }));
    }, { to: ['account'] });

    // §5 (extended): the first and last message of the archive.
    ctx.iq.get(MAM_NS.MAM, 'metadata', async (e) => {
      const owner = ownArchive(e);
      const b = await archive.bounds(host.name, owner.local);
      const edge = (name: string, m: { id: string; at: number }): Element => xml(name, { id: m.id, timestamp: new Date(m.at).toISOString() });
      return xml('metadata', { xmlns: MAM_NS.MAM }, b ? [edge('start', b.first), edge('end', b.last)] : undefined);
    }, { to: ['account'] });

    ctx.iq.get(MAM_NS.MAM, 'prefs', async (e) => {
      const owner = ownArchive(e);
      return prefsElement((await archive.getPrefs(host.name, owner.local)) ?? defaults);
    }, { to: ['account'] });

    ctx.iq.set(MAM_NS.MAM, 'prefs', async (e, el) => {
      const owner = ownArchive(e);
      const prefs = parsePrefs(el);
      await archive.setPrefs(host.name, owner.local, prefs);
      prefsCache.delete(owner.bareString);
      return prefsElement(prefs);
    }, { to: ['account'] });

    // --------------------------------------------------------------------------------------- retention

    if (options.retention_days > 0) {
      let running = false;
      let stopped = false;
      const purge = async (): Promise<void> => {
        if (running) return;
        running = true;
        let removed = 0;
        try {
          const before = Date.now() - options.retention_days * 86_400_000;
          for (;;) {
            const n = await archive.purge(host.name, before, PURGE_STEP);
            removed += n;
            if (n < PURGE_STEP || stopped) break;
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        } catch (err) {
          ctx.log.error({ err }, 'removing expired archive messages failed');
        } finally {
          running = false;
          if (removed > 0) ctx.log.info({ removed }, 'expired archive messages removed');
        }
      };
      ctx.timer(options.purge_interval * 1000, () => void purge());
      const first = setTimeout(() => void purge(), 0);
      ctx.onStop(() => {
        stopped = true;
        clearTimeout(first);
      });
    }
  },
});
