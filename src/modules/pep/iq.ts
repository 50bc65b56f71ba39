// XEP-0060: Publish-Subscribe <https://xmpp.org/extensions/xep-0060.html> 1.24.1 — the requests a PEP service
// answers (§6.5 items, §7.1 publish with §7.1.5 publish-options, §7.2 retract, §8.1 create, §8.2 configure,
// §8.3 default, §8.4 delete, §8.5 purge, §8.9 affiliations); anything else is feature-not-implemented.
import { StanzaError } from '../../core/errors.ts';
import type { StanzaEvent } from '../../core/hook-map.ts';
import { Element, xml } from '../../xml/element.ts';
import { parseElement } from '../../xml/parse.ts';
import { Jid } from '../../xmpp/jid.ts';
import {
  DEFAULT_CONFIG, NODE_CONFIG, PUBLISH_OPTIONS, PUBSUB, PUBSUB_OWNER,
  configForm, formOf, pubsubError, readForm, unsupported, type Settings,
} from './config.ts';
import type { PepService } from './service.ts';

/** Only the account itself may change its nodes (XEP-0163 'One Publisher Per Node'). */
function ownerOnly(e: StanzaEvent): Jid {
  if (!e.from.bare.equals(e.to.bare)) throw StanzaError.forbidden('Only the account owner may do this');
  return e.to.bare;
}

function nodeOf(el: Element, condition: 'bad-request' | 'not-acceptable' = 'bad-request'): string {
  const node = el.attrs.node;
  if (node === undefined || node === '') throw pubsubError(condition, 'nodeid-required');
  return node;
}

function flag(v: string | undefined): boolean | undefined {
  return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : undefined;
}

function itemElement(item: { id: string; payload: string }): Element {
  return xml('item', { id: item.id }, parseElement(item.payload));
}

/** <pubsub/> gets: items retrieval, by anyone the access model admits. */
export async function pubsubGet(svc: PepService, e: StanzaEvent, pubsub: Element): Promise<Element> {
  const items = pubsub.getChild('items');
  if (!items) {
    const op = pubsub.firstElement()?.name;
    throw unsupported(op === 'affiliations' ? 'retrieve-affiliations' : op === 'subscriptions' ? 'retrieve-subscriptions' : 'retrieve-default-sub');
  }
  const owner = e.to.bare;
  const node = nodeOf(items);
  const config = await svc.config(owner, node);
  if (!config) throw StanzaError.itemNotFound('No such node');
  const denied = await svc.denied(owner, config, e.from);
  if (denied) throw denied;
  const ids = items.getChildren('item').map((i) => i.attrs.id).filter((id): id is string => id !== undefined && id !== '');
  let max: number | undefined;
  if (items.attrs.max_items !== undefined) {
    max = Number(items.attrs.max_items);
    if (!Number.isInteger(max) || max < 1) throw StanzaError.badRequest('max_items must be a positive integer');
  }
  const list = await svc.items(owner, node, ids.length > 0 ? { ids } : max !== undefined ? { max } : {});
  return xml('pubsub', { xmlns: PUBSUB }, xml('items', { node }, list.map(itemElement)));
}

/** <pubsub/> sets: publish, retract and create, by the owner. */
export async function pubsubSet(svc: PepService, e: StanzaEvent, pubsub: Element): Promise<Element | undefined> {
  const publish = pubsub.getChild('publish');
  if (publish) return doPublish(svc, ownerOnly(e), publish, pubsub.getChild('publish-options'), e.from);
  const retract = pubsub.getChild('retract');
  if (retract) {
    const owner = ownerOnly(e);
    const node = nodeOf(retract);
    const id = retract.getChild('item')?.attrs.id;
    if (!id) throw pubsubError('bad-request', 'item-required');
    await svc.retract(owner, node, id, flag(retract.attrs.notify));
    return undefined;
  }
  const create = pubsub.getChild('create');
  if (create) {
    const owner = ownerOnly(e);
    // PEP has no instant nodes: the node must be named.
    const node = nodeOf(create, 'not-acceptable');
    if (await svc.config(owner, node)) throw new StanzaError('conflict', 'The node exists');
    const form = formOf(pubsub.getChild('configure'));
    await svc.create(owner, node, form ? settingsFrom(form, NODE_CONFIG, svc) : {});
    return undefined;
  }
  const op = pubsub.firstElement()?.name;
  throw unsupported(op === 'subscribe' || op === 'unsubscribe' ? 'subscribe' : op === 'options' ? 'subscription-options' : 'publish');
}

async function doPublish(svc: PepService, owner: Jid, publish: Element, publishOptions: Element | undefined, publisher: Jid): Promise<Element> {
  const node = nodeOf(publish);
  const items = publish.getChildren('item');
  if (items.length === 0) throw pubsubError('bad-request', 'item-required');
  if (items.length > 1) throw pubsubError('bad-request', 'invalid-payload', undefined, 'One item per publish');
  const item = items[0] as Element;
  const payloads = item.getElements();
  if (payloads.length === 0) throw pubsubError('bad-request', 'payload-required');
  if (payloads.length > 1) throw pubsubError('bad-request', 'invalid-payload', undefined, 'One payload per item');
  let options: Partial<Settings> | undefined;
  const form = formOf(publishOptions);
  if (form) {
    const { settings, rejected } = readForm(form, PUBLISH_OPTIONS, svc.limits.maxItems);
    // An option we cannot check or apply fails the precondition rather than being ignored (§7.1.5).
    if (rejected.length > 0) throw pubsubError('conflict', 'precondition-not-met', undefined, `Unsupported publish-options: ${rejected.join(', ')}`);
    options = settings;
  }
  const id = await svc.publish(owner, node, { id: item.attrs.id || undefined, payload: payloads[0] as Element }, options, publisher);
  return xml('pubsub', { xmlns: PUBSUB }, xml('publish', { node }, xml('item', { id })));
}

function settingsFrom(form: Element, formType: string, svc: PepService): Partial<Settings> {
  const { settings, rejected } = readForm(form, formType, svc.limits.maxItems);
  if (rejected.length > 0) throw StanzaError.notAcceptable(`Unsupported or invalid fields: ${rejected.join(', ')}`);
  return settings;
}

/** <pubsub xmlns='…#owner'/> gets: configuration, default configuration, affiliations. */
export async function ownerGet(svc: PepService, e: StanzaEvent, pubsub: Element): Promise<Element> {
  const owner = ownerOnly(e);
  if (pubsub.getChild('default')) return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('default', null, configForm(DEFAULT_CONFIG)));
  const configure = pubsub.getChild('configure');
  const affiliations = pubsub.getChild('affiliations');
  const el = configure ?? affiliations;
  if (!el) throw unsupported('manage-subscriptions');
  const node = nodeOf(el);
  const config = await svc.config(owner, node);
  if (!config) throw StanzaError.itemNotFound('No such node');
  if (configure) return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('configure', { node }, configForm(config)));
  return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('affiliations', { node },
    xml('affiliation', { jid: owner.toString(), affiliation: 'owner' }),
    config.members.map((m) => xml('affiliation', { jid: m, affiliation: 'member' }))));
}

/** <pubsub xmlns='…#owner'/> sets: configure, delete, purge, affiliations. */
export async function ownerSet(svc: PepService, e: StanzaEvent, pubsub: Element): Promise<undefined> {
  const owner = ownerOnly(e);
  const el = pubsub.getChild('configure') ?? pubsub.getChild('delete') ?? pubsub.getChild('purge') ?? pubsub.getChild('affiliations');
  if (!el) throw unsupported('manage-subscriptions');
  const node = nodeOf(el);
  if (el.name === 'delete') return void (await svc.delete(owner, node));
  if (el.name === 'purge') return void (await svc.purge(owner, node));
  const config = await svc.config(owner, node);
  if (!config) throw StanzaError.itemNotFound('No such node');
  if (el.name === 'configure') {
    const form = formOf(el);
    if (!form) throw StanzaError.badRequest('A configuration form is required');
    if (form.attrs.type === 'cancel') return undefined;
    await svc.reconfigure(owner, node, { ...config, ...settingsFrom(form, NODE_CONFIG, svc) });
    return undefined;
  }
  // §8.9.2: the whitelist is the member affiliation; the owner's own affiliation cannot change.
  const members = new Set(config.members);
  for (const a of el.getChildren('affiliation')) {
    const jid = Jid.parse(a.attrs.jid ?? '').bare;
    const affiliation = a.attrs.affiliation;
    if (jid.equals(owner)) {
      if (affiliation !== 'owner') throw StanzaError.notAcceptable('The owner\'s affiliation cannot change');
    } else if (affiliation === 'member') members.add(jid.toString());
    else if (affiliation === 'none') members.delete(jid.toString());
    else throw StanzaError.notAcceptable(`Unsupported affiliation ${affiliation ?? ''}`);
  }
  await svc.reconfigure(owner, node, { ...config, members: [...members].sort() });
  return undefined;
}
