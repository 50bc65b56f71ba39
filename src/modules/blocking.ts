// XEP-0191: Blocking Command <https://xmpp.org/extensions/xep-0191.html> 1.3
import { randomBytes } from 'node:crypto';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import type { StanzaEvent } from '../core/hook-map.ts';
import { SessionKey } from '../core/session.ts';
import type { KeyValueStore } from '../storage/types.ts';
import { Element, xml } from '../xml/element.ts';
import { Jid } from '../xmpp/jid.ts';
import { errorReply } from '../xmpp/stanza.ts';

export const BLOCKING_NS = {
  BLOCKING: 'urn:xmpp:blocking',
  ERRORS: 'urn:xmpp:blocking:errors',
} as const;

/** The resource asked for the block list: block and unblock pushes go to it (§3.3). */
const REQUESTED = new SessionKey<true>('blocking.requested');

type List = Set<string>;

/** §6 (JID Matching): the full JID, the bare JID, the domain, or a domain it is a subdomain of. */
export function isBlockedBy(list: ReadonlySet<string>, jid: Jid): boolean {
  if (list.size === 0) return false;
  if (list.has(jid.toString()) || list.has(jid.bareString)) return true;
  let domain = jid.domain;
  for (;;) {
    if (list.has(domain)) return true;
    const dot = domain.indexOf('.');
    if (dot < 0) return false;
    domain = domain.slice(dot + 1);
  }
}

/** §3.3: what the user's server answers when the user writes to a blocked JID. */
export function blockedError(): StanzaError {
  return new StanzaError('not-acceptable', undefined, { type: 'cancel', app: xml('blocked', { xmlns: BLOCKING_NS.ERRORS }) });
}

/**
 * Block lists in memory, read from storage.kv once (one key per blocked JID, so a block or unblock is one write).
 * Online accounts' lists are pinned, so checks on the hot path never wait; others sit in a bounded cache.
 */
class Blocklists {
  private readonly host: string;
  private readonly kv: KeyValueStore;
  private readonly max: number;
  private readonly cache = new Map<string, List | Promise<List>>();
  private readonly pinned = new Map<string, { list: List; sessions: number }>();

  constructor(host: string, kv: KeyValueStore, max: number) {
    this.host = host;
    this.kv = kv;
    this.max = max;
  }

  /** The list, synchronously when it is in memory. */
  lookup(user: Jid): List | Promise<List> {
    const key = user.bareString;
    const pinned = this.pinned.get(key);
    if (pinned) return pinned.list;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const loading = this.kv.entries(this.host, user.local, BLOCKING_NS.BLOCKING).then((rows) => {
      const list: List = new Set(rows.map(([jid]) => jid));
      if (this.cache.get(key) === loading) this.cache.set(key, list);
      return list;
    }, (err: unknown) => {
      // A failed read is retried next time rather than remembered.
      if (this.cache.get(key) === loading) this.cache.delete(key);
      throw err;
    });
    this.cache.set(key, loading);
    if (this.cache.size > this.max) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    return loading;
  }

  /** Keeps the list in memory while one of the account's sessions is online (`online` rechecked after loading). */
  async pin(user: Jid, online: () => boolean): Promise<void> {
    const list = await this.lookup(user);
    if (!online()) return;
    const key = user.bareString;
    const entry = this.pinned.get(key);
    if (entry) entry.sessions++;
    else this.pinned.set(key, { list, sessions: 1 });
  }

  unpin(user: Jid): void {
    const key = user.bareString;
    const entry = this.pinned.get(key);
    if (!entry) return;
    if (--entry.sessions > 0) return;
    this.pinned.delete(key);
    // Kept warm in the cache: the account's contacts still write to it.
    this.cache.set(key, entry.list);
  }

  /** Stores the JIDs first, then updates the list in memory; returns those that were not blocked yet. */
  async add(user: Jid, jids: string[]): Promise<string[]> {
    const list = await this.lookup(user);
    const added = [...new Set(jids)].filter((j) => !list.has(j));
    for (const jid of added) await this.kv.set(this.host, user.local, BLOCKING_NS.BLOCKING, jid, '1');
    for (const jid of added) list.add(jid);
    this.settle(user, list);
    return added;
  }

  /** Removes the JIDs (all of them when undefined); returns those that were blocked. */
  async remove(user: Jid, jids: string[] | undefined): Promise<string[]> {
    const list = await this.lookup(user);
    const removed = jids === undefined ? [...list] : [...new Set(jids)].filter((j) => list.has(j));
    for (const jid of removed) await this.kv.set(this.host, user.local, BLOCKING_NS.BLOCKING, jid, undefined);
    for (const jid of removed) list.delete(jid);
    this.settle(user, list);
    return removed;
  }

  forget(user: Jid): void {
    this.cache.delete(user.bareString);
    this.pinned.delete(user.bareString);
  }

  /** If the list was evicted and reloaded while it was being written, the reload may predate the write. */
  private settle(user: Jid, list: List): void {
    const key = user.bareString;
    if (this.pinned.get(key)?.list !== list && this.cache.get(key) !== list) this.cache.delete(key);
  }
}

/** Every host's lists: a stanza between two hosts is checked against the sender's list on its own host. */
const registry = new Map<string, Blocklists>();
/** What the module itself sends across a block: unavailable presence to a JID just blocked, the <blocked/> error. */
const exempt = new WeakSet<Element>();

const withList = <T>(l: List | Promise<List>, f: (list: List) => T): T | Promise<T> => (l instanceof Promise ? l.then(f) : f(l));

export default defineModule({
  id: 'blocking',
  xeps: [{ xep: 191, version: '1.3', status: 'complete' }],
  setup(ctx) {
    const { host, sessions, router, storage } = ctx;
    const lists = new Blocklists(host.name, storage.kv, 10_000);
    registry.set(host.name, lists);
    ctx.onStop(() => { registry.delete(host.name); });
    ctx.disco.feature(BLOCKING_NS.BLOCKING);

    const isServer = (j: Jid): boolean => j.local === '' && j.resource === '' && host.server.hosts.has(j.domain);
    const ownAccount = (e: StanzaEvent): boolean => e.from.bareString === e.to.bareString;

    // §3.2-§3.5: the commands are the user's own, sent without 'to'.
    const self = (e: StanzaEvent): Jid => {
      if (!ownAccount(e)) throw StanzaError.serviceUnavailable();
      return e.to.bare;
    };

    ctx.iq.get(BLOCKING_NS.BLOCKING, 'blocklist', async (e) => {
      const user = self(e);
      e.origin?.set(REQUESTED, true);
      const list = await lists.lookup(user);
      return xml('blocklist', { xmlns: BLOCKING_NS.BLOCKING }, [...list].sort().map((jid) => xml('item', { jid })));
    }, { to: ['account'] });

    ctx.iq.set(BLOCKING_NS.BLOCKING, 'block', async (e, payload) => {
      const user = self(e);
      const jids = itemJids(payload);
      if (jids.length === 0) throw StanzaError.badRequest('A block command names at least one JID');
      const added = await lists.add(user, jids);
      await presenceOnBlock(user, added);
      push(user, 'block', jids);
      return undefined;
    }, { to: ['account'] });

    ctx.iq.set(BLOCKING_NS.BLOCKING, 'unblock', async (e, payload) => {
      const user = self(e);
      const jids = itemJids(payload);
      // §3.5: an empty unblock lifts every block.
      const removed = await lists.remove(user, jids.length === 0 ? undefined : jids);
      await presenceOnUnblock(user, removed);
      push(user, 'unblock', jids);
      return undefined;
    }, { to: ['account'] });

    /** The items' JIDs, prepared (so the list holds canonical forms); a bad one fails the whole command. */
    function itemJids(payload: Element): string[] {
      return payload.getChildren('item').map((item) => {
        const jid = item.attrs.jid;
        if (jid === undefined) throw StanzaError.badRequest('An item needs a jid');
        return Jid.parse(jid).toString();
      });
    }

    /** §3.3/§3.4: the change goes to every resource that asked for the list. */
    function push(user: Jid, name: 'block' | 'unblock', jids: string[]): void {
      for (const s of sessions.resources(user)) {
        if (!s.get(REQUESTED) || !s.jid) continue;
        s.send(xml('iq', { type: 'set', id: `push-${randomBytes(6).toString('base64url')}`, to: s.jid.toString() },
          xml(name, { xmlns: BLOCKING_NS.BLOCKING }, jids.map((jid) => xml('item', { jid })))));
      }
    }

    /** Contacts allowed to see the user's presence (subscription from or both) that the JIDs match. */
    async function presenceTargets(user: Jid, jids: string[]): Promise<Jid[]> {
      if (jids.length === 0) return [];
      const matching = new Set(jids);
      const { items } = await storage.roster.get(host.name, user.local);
      const subscribed = new Set(items.filter((i) => i.subscription === 'from' || i.subscription === 'both').map((i) => i.jid));
      const out: Jid[] = [];
      for (const contact of subscribed) {
        const j = Jid.tryParse(contact);
        if (j && isBlockedBy(matching, j)) out.push(j);
      }
      // A blocked resource of a subscribed contact is told itself.
      for (const jid of matching) {
        const j = Jid.parse(jid);
        if (j.local !== '' && j.resource !== '' && subscribed.has(j.bareString) && !matching.has(j.bareString)) out.push(j);
      }
      return out;
    }

    /** §3.3: the newly blocked contacts see the user go offline. */
    async function presenceOnBlock(user: Jid, added: string[]): Promise<void> {
      const available = sessions.available(user);
      if (available.length === 0) return;
      for (const to of await presenceTargets(user, added)) {
        for (const s of available) {
          if (!s.jid) continue;
          const unavailable = xml('presence', { type: 'unavailable', from: s.jid.toString(), to: to.toString() });
          exempt.add(unavailable);
          void router.route(unavailable, s.jid, to);
        }
      }
    }

    /**
     * §3.4: unblocked contacts get the user's current presence. The user's presence from them was dropped
     * meanwhile, so the user's server also probes them (RFC 6121 §4.3) to bring the user's view up to date.
     */
    async function presenceOnUnblock(user: Jid, removed: string[]): Promise<void> {
      const available = sessions.available(user);
      if (available.length === 0 || removed.length === 0) return;
      const list = await lists.lookup(user);
      for (const to of await presenceTargets(user, removed)) {
        if (isBlockedBy(list, to)) continue; // still blocked by another item (its domain, say)
        for (const s of available) {
          if (!s.jid || !s.presence) continue;
          const presence = xml('presence', { ...s.presence.attrs, from: s.jid.toString(), to: to.toString() });
          presence.children = s.presence.children;
          void router.route(presence, s.jid, to);
        }
      }
      const matching = new Set(removed);
      const { items } = await storage.roster.get(host.name, user.local);
      for (const item of items) {
        if (item.subscription !== 'to' && item.subscription !== 'both') continue;
        const contact = Jid.tryParse(item.jid);
        if (!contact || !isBlockedBy(matching, contact) || isBlockedBy(list, contact)) continue;
        void router.route(xml('presence', { type: 'probe', from: user.toString(), to: contact.toString() }), user, contact);
      }
    }

    // §3.3: the user writes to a blocked JID: not routed, answered with not-acceptable + <blocked/>. The answer
    // comes from the blocked JID, so it is handed to the session directly, past the filters below.
    const outbound = (e: StanzaEvent): boolean | Promise<boolean> => {
      const origin = e.origin;
      if (!origin || ownAccount(e) || isServer(e.to)) return false;
      return withList(lists.lookup(e.from.bare), (list) => {
        if (!isBlockedBy(list, e.to)) return false;
        if (e.stanza.attrs.type === 'error') return true; // never an error to an error
        const reply = errorReply(e.stanza, blockedError());
        reply.attrs.from = e.to.toString();
        reply.attrs.to = e.from.toString();
        exempt.add(reply);
        origin.send(reply);
        return true;
      });
    };
    ctx.hook('pre-message', outbound, { priority: PRIORITY.FILTER });
    ctx.hook('pre-presence', outbound, { priority: PRIORITY.FILTER });
    ctx.hook('pre-iq', outbound, { priority: PRIORITY.FILTER });

    // §3.3: a blocked JID writes to the user. Presence is dropped without a word; messages and IQ requests get
    // service-unavailable, so the user looks offline; IQ results and errors are dropped.
    const refuse = (stanza: Element): true => {
      const type = stanza.attrs.type;
      if (stanza.name === 'message' && type !== 'error') throw StanzaError.serviceUnavailable();
      if (stanza.name === 'iq' && (type === 'get' || type === 'set')) throw StanzaError.serviceUnavailable();
      return true;
    };

    // What the server sends for a local user (presence broadcasts and probes, notifications) is not routed to a
    // JID that user blocked; the user's own stanzas were checked in pre-*. Errors still go: they answer the
    // blocked JID's own requests.
    const fromBlocker = (e: StanzaEvent): boolean | Promise<boolean> => {
      if (e.origin || e.from.local === '' || e.stanza.attrs.type === 'error' || exempt.has(e.stanza)) return false;
      const senderLists = registry.get(e.from.domain);
      if (!senderLists) return false;
      return withList(senderLists.lookup(e.from.bare), (list) => isBlockedBy(list, e.to));
    };

    const inbound = (e: StanzaEvent): boolean | Promise<boolean> => {
      if (ownAccount(e) || isServer(e.from)) return false;
      const check = (list: List): boolean | Promise<boolean> => (isBlockedBy(list, e.from) ? refuse(e.stanza) : fromBlocker(e));
      const list = lists.lookup(e.to.bare);
      return list instanceof Promise ? list.then(check) : check(list);
    };
    for (const hook of ['message/bare', 'message/full', 'presence/bare', 'presence/full', 'iq/bare', 'iq/full'] as const) {
      ctx.hook(hook, inbound, { priority: PRIORITY.FILTER });
    }

    // The last line: stanzas written to a session without being routed (offline messages, subscription requests
    // redelivered at login) from a JID its user blocked are not written.
    ctx.hook('c2s/outgoing', ({ session, stanza }) => {
      const user = session.jid;
      const rawFrom = stanza.attrs.from;
      if (!user || rawFrom === undefined || exempt.has(stanza)) return false;
      const from = Jid.tryParse(rawFrom);
      if (!from || from.bareString === user.bareString || isServer(from)) return false;
      return withList(lists.lookup(user.bare), (list) => isBlockedBy(list, from));
    }, { priority: PRIORITY.FILTER });

    ctx.hook('session/bound', async ({ session }) => {
      if (!session.jid) return;
      try {
        await lists.pin(session.jid.bare, () => session.active);
      } catch (err) {
        ctx.log.error({ err }, 'could not load the block list');
      }
    });
    ctx.hook('session/closed', ({ session }) => {
      if (session.jid) lists.unpin(session.jid.bare);
    });
    ctx.hook('account/removed', ({ user }) => {
      lists.forget(user);
    });
  },
});
