// XEP-0163: Personal Eventing Protocol <https://xmpp.org/extensions/xep-0163.html> 1.2.2 — one account's virtual
// pubsub service: its nodes and items, who may read them, and who is notified (implicit +notify subscriptions).
import { randomUUID, randomBytes } from 'node:crypto';
import type { Host } from '../../core/host.ts';
import type { C2sSession } from '../../core/session.ts';
import { SessionKey } from '../../core/session.ts';
import { StanzaError } from '../../core/errors.ts';
import type { PepItem } from '../../storage/types.ts';
import { Element, serialize, xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { parseElement } from '../../xml/parse.ts';
import { Jid } from '../../xmpp/jid.ts';
import { sessionFeatures } from '../caps.ts';
import {
  DEFAULT_CONFIG, PUBSUB_EVENT, meetsPreconditions, parseConfig, pubsubError,
  type NodeConfig, type Settings,
} from './config.ts';

const ADDRESS = 'http://jabber.org/protocol/address';

export type PepLimits = { maxItems: number; maxNodes: number };

/** Nodes (owner and node) whose last item this resource already got since it became available. */
const SERVED = new SessionKey<Set<string>>('pep.served');

const hasFrom = (s: string): boolean => s === 'from' || s === 'both';

export class PepService {
  readonly host: Host;
  readonly limits: PepLimits;

  constructor(host: Host, limits: PepLimits) {
    this.host = host;
    this.limits = limits;
  }

  private get store() {
    return this.host.server.storage.pep;
  }
  private get sessions() {
    return this.host.server.sessions;
  }

  async config(owner: Jid, node: string): Promise<NodeConfig | undefined> {
    const n = await this.store.getNode(this.host.name, owner.local, node);
    return n ? parseConfig(n.config) : undefined;
  }

  async nodes(owner: Jid): Promise<Array<{ node: string; config: NodeConfig }>> {
    return (await this.store.listNodes(this.host.name, owner.local)).map((n) => ({ node: n.node, config: parseConfig(n.config) }));
  }

  maxItemsOf(config: NodeConfig): number {
    return config.maxItems === 'max' ? this.limits.maxItems : Math.min(config.maxItems, this.limits.maxItems);
  }

  async create(owner: Jid, node: string, settings: Partial<Settings>): Promise<NodeConfig> {
    if ((await this.store.listNodes(this.host.name, owner.local)).length >= this.limits.maxNodes) {
      throw new StanzaError('policy-violation', `At most ${this.limits.maxNodes} nodes per account`);
    }
    const config: NodeConfig = { ...DEFAULT_CONFIG, ...settings, members: [] };
    await this.store.putNode(this.host.name, owner.local, node, JSON.stringify(config));
    return config;
  }

  /** Stores new settings, dropping items the node may no longer keep. */
  async reconfigure(owner: Jid, node: string, config: NodeConfig): Promise<void> {
    await this.store.putNode(this.host.name, owner.local, node, JSON.stringify(config));
    if (!config.persistItems) {
      await this.store.purge(this.host.name, owner.local, node);
      return;
    }
    const keep = this.maxItemsOf(config);
    const items = await this.store.items(this.host.name, owner.local, node);
    for (const old of items.slice(keep)) await this.store.retract(this.host.name, owner.local, node, old.id);
  }

  /**
   * XEP-0060 §7.1: publishes one item, creating the node with the publish-options when it does not exist and
   * checking them as preconditions when it does. Returns the item id.
   */
  async publish(owner: Jid, node: string, item: { id: string | undefined; payload: Element }, options: Partial<Settings> | undefined, publisher?: Jid): Promise<string> {
    let config = await this.config(owner, node);
    if (!config) config = await this.create(owner, node, options ?? {});
    else if (options && !meetsPreconditions(config, options, this.limits.maxItems)) {
      throw pubsubError('conflict', 'precondition-not-met', undefined, 'The node\'s configuration does not match the publish-options');
    }
    const id = item.id ?? randomUUID();
    if (config.persistItems) {
      await this.store.publish(this.host.name, owner.local, node,
        { id, payload: serialize(item.payload), publisher: owner.bareString }, this.maxItemsOf(config));
    }
    if (config.deliverNotifications) {
      const el = xml('item', { id }, config.deliverPayloads ? item.payload : undefined);
      // XEP-0163 'Addressing': a XEP-0033 replyto names the publishing resource for those who share presence.
      const replyTo = publisher && xml('addresses', { xmlns: ADDRESS }, xml('address', { type: 'replyto', jid: publisher.toString() }));
      this.send(owner, await this.recipients(owner, node, config), xml('items', { node }, el), { extra: replyTo });
    }
    return id;
  }

  async retract(owner: Jid, node: string, id: string, notify: boolean | undefined): Promise<void> {
    const config = await this.config(owner, node);
    if (!config) throw StanzaError.itemNotFound('No such node');
    if (!(await this.store.retract(this.host.name, owner.local, node, id))) throw StanzaError.itemNotFound('No such item');
    if ((notify ?? config.notifyRetract) && config.deliverNotifications) {
      await this.notify(owner, node, config, xml('items', { node }, xml('retract', { id })));
    }
  }

  async delete(owner: Jid, node: string): Promise<void> {
    const config = await this.config(owner, node);
    if (!config) throw StanzaError.itemNotFound('No such node');
    // Who to tell is decided while the node (and its whitelist) still exists.
    const recipients = config.notifyDelete && config.deliverNotifications ? await this.recipients(owner, node, config) : [];
    await this.store.deleteNode(this.host.name, owner.local, node);
    this.send(owner, recipients, xml('delete', { node }));
  }

  async purge(owner: Jid, node: string): Promise<void> {
    const config = await this.config(owner, node);
    if (!config) throw StanzaError.itemNotFound('No such node');
    await this.store.purge(this.host.name, owner.local, node);
    // XEP-0060 §8.5: one purge notification, not a retraction per item.
    if (config.notifyRetract && config.deliverNotifications) await this.notify(owner, node, config, xml('purge', { node }));
  }

  /** Items oldest first (the N most recent when `max` is given), or those with the given ids. */
  async items(owner: Jid, node: string, opts: { ids?: string[]; max?: number }): Promise<PepItem[]> {
    const items = await this.store.items(this.host.name, owner.local, node, opts);
    return items.reverse();
  }

  /** Whether the requester sees the owner's presence (the owner's roster item has subscription from or both). */
  async subscribed(owner: Jid, requester: Jid): Promise<boolean> {
    const item = await this.host.server.storage.roster.getItem(this.host.name, owner.local, requester.bareString);
    return item !== undefined && hasFrom(item.subscription);
  }

  /** Access check for a requester (any JID) on the owner's node: the error to answer with, or undefined. */
  async denied(owner: Jid, config: NodeConfig, requester: Jid): Promise<StanzaError | undefined> {
    const own = requester.bare.equals(owner.bare);
    const subscribed = !own && config.accessModel === 'presence' && (await this.subscribed(owner, requester));
    return accessError(owner, config, requester, subscribed);
  }

  /**
   * The available resources implicitly subscribed to a node (XEP-0163 'Receiving Event Notifications'): the owner's
   * and those of contacts subscribed to the owner's presence who may read the node, each only if its caps carry
   * `node+notify`; a contact's resource also needs a non-negative priority ('Number of Notifications').
   */
  async recipients(owner: Jid, node: string, config: NodeConfig): Promise<C2sSession[]> {
    const notify = `${node}+notify`;
    const wants = (s: C2sSession): boolean => sessionFeatures(s)?.has(notify) === true;
    const out = this.sessions.available(owner.bare).filter(wants);
    if (config.accessModel === 'whitelist' && config.members.length === 0) return out;
    const { items } = await this.host.server.storage.roster.get(this.host.name, owner.local);
    for (const item of items) {
      if (!hasFrom(item.subscription)) continue;
      if (config.accessModel === 'whitelist' && !config.members.includes(item.jid)) continue;
      const contact = Jid.tryParse(item.jid);
      if (contact) for (const s of this.sessions.available(contact)) if (s.priority >= 0 && wants(s)) out.push(s);
    }
    return out;
  }

  private async notify(owner: Jid, node: string, config: NodeConfig, payload: Element): Promise<void> {
    this.send(owner, await this.recipients(owner, node, config), payload);
  }

  /** One headline message per resource, from the owner's bare JID (XEP-0163 'Addressing'), all sharing the event. */
  private send(owner: Jid, to: C2sSession[], payload: Element, opts: { delay?: number; extra?: Element | undefined } = {}): void {
    if (to.length === 0) return;
    const event = xml('event', { xmlns: PUBSUB_EVENT }, payload);
    const stamp = opts.delay !== undefined ? xml('delay', { xmlns: NS.DELAY, stamp: new Date(opts.delay).toISOString() }) : undefined;
    const from = owner.bare;
    for (const s of to) {
      const jid = s.jid;
      if (!jid) continue;
      const msg = xml('message', { from: from.toString(), to: jid.toString(), type: 'headline', id: randomBytes(9).toString('base64url') }, event, opts.extra, stamp);
      void this.host.server.router.route(msg, from, jid);
    }
  }

  /**
   * Sends the last item of each of the owner's nodes the resource wants (+notify), may read and has not had yet
   * (XEP-0163 'Sending the Last Published Item', by pubsub#send_last_published_item: on presence or subscription).
   */
  async sendLastItems(owner: Jid, session: C2sSession, trigger: 'presence' | 'subscription'): Promise<void> {
    const features = sessionFeatures(session);
    const jid = session.jid;
    if (!features || !jid) return;
    // A contact only hears of nodes through its presence subscription ('Use Presence'), with a non-negative priority.
    const own = jid.bare.equals(owner.bare);
    if (!own && (session.priority < 0 || !(await this.subscribed(owner, jid)))) return;
    const nodes = await this.nodes(owner);
    // Shared by concurrent calls (presence and caps events can overlap): check and mark with no await between.
    const served = session.get(SERVED) ?? new Set<string>();
    session.set(SERVED, served);
    for (const { node, config } of nodes) {
      const key = `${owner.bareString}\u0000${node}`;
      if (trigger === 'presence' && served.has(key)) continue;
      if (!features.has(`${node}+notify`) || !config.deliverNotifications || !config.persistItems) continue;
      const when = config.sendLastPublishedItem;
      if (when === 'never' || (trigger === 'presence' && when !== 'on_sub_and_presence')) continue;
      if (accessError(owner, config, jid, true)) continue;
      served.add(key);
      const [last] = await this.store.items(this.host.name, owner.local, node, { max: 1 });
      if (!last) continue;
      const payload = config.deliverPayloads ? parseElement(last.payload) : undefined;
      this.send(owner, [session], xml('items', { node }, xml('item', { id: last.id }, payload)), { delay: last.publishedAt });
    }
  }

  static forget(session: C2sSession): void {
    session.set(SERVED, undefined);
  }
}

/** The access model's verdict (XEP-0060 §6.5.9 errors), given whether the requester sees the owner's presence. */
function accessError(owner: Jid, config: NodeConfig, requester: Jid, subscribed: boolean): StanzaError | undefined {
  const bare = requester.bare;
  if (bare.equals(owner.bare)) return undefined;
  switch (config.accessModel) {
    case 'open':
      return undefined;
    case 'whitelist':
      return config.members.includes(bare.toString()) ? undefined : pubsubError('not-allowed', 'closed-node');
    case 'presence':
      return subscribed ? undefined : pubsubError('not-authorized', 'presence-subscription-required');
  }
}
