// RFC 6121 §8 delivery rules, registered on every host at the lowest priority so features can take stanzas first.
import { isSubscriptionType, iqResult, messageType } from '../xmpp/stanza.ts';
import { StanzaError } from './errors.ts';
import type { StanzaEvent } from './hook-map.ts';
import type { Host } from './host.ts';
import { PRIORITY } from './hooks.ts';
import type { IqTarget } from './iq.ts';
import { iqRequestsOf } from './iq-requests.ts';
import type { C2sSession } from './session.ts';

const opts = { priority: PRIORITY.DELIVERY, owner: 'delivery' };

export function registerDeliveryRules(host: Host): void {
  const { sessions, router } = host.server;
  const bus = host.bus;

  const accountExists = async (e: StanzaEvent): Promise<boolean> =>
    sessions.resources(e.to).length > 0 || (await host.auth.userExists(e.to.local));

  /** Message to a bare JID: the highest-priority available resources, else offline handling (§8.5.2). */
  const messageToBare = async (e: StanzaEvent): Promise<boolean> => {
    const type = messageType(e.stanza);
    if (!(await accountExists(e))) {
      throw StanzaError.serviceUnavailable();
    }
    if (type === 'groupchat') throw StanzaError.serviceUnavailable();
    const targets = messageTargets(sessions.available(e.to), type);
    if (targets.length > 0) {
      for (const s of targets) s.send(e.stanza);
      return true;
    }
    if (type === 'error') return true; // never answered, nowhere to go
    if (await bus.run('message/offline', e)) return true;
    if (type === 'headline') return true; // §8.5.2.2.1: headlines to an offline account are ignored
    throw StanzaError.serviceUnavailable();
  };

  bus.on('message/bare', messageToBare, opts);

  bus.on('message/full', async (e) => {
    const s = sessions.get(e.to);
    if (s) {
      s.send(e.stanza);
      return true;
    }
    const type = messageType(e.stanza);
    if (type === 'error') return true;
    if (type === 'groupchat') {
      if (!(await accountExists(e))) throw StanzaError.serviceUnavailable();
      throw StanzaError.serviceUnavailable();
    }
    // §8.5.3.2.1: chat, normal and headline to an offline resource are treated as if sent to the bare JID.
    return messageToBare({ ...e, to: e.to.bare });
  }, opts);

  bus.on('message/host', (e) => {
    // §8.5.1: the server itself has no use for messages; answer with an error, never an error to an error.
    if (e.stanza.attrs.type === 'error') return true;
    throw StanzaError.serviceUnavailable();
  }, opts);

  bus.on('presence/bare', async (e) => {
    for (const s of sessions.available(e.to)) s.send(e.stanza);
    return true;
  }, opts);

  bus.on('presence/full', async (e) => {
    const s = sessions.get(e.to);
    if (s) {
      s.send(e.stanza);
      return true;
    }
    if (isSubscriptionType(e.stanza.attrs.type)) return bus.run('presence/bare', { ...e, to: e.to.bare });
    return true; // §8.5.3.2.3: other presence to an offline resource is ignored
  }, opts);

  bus.on('presence/host', () => true, opts);

  const iqByTable = async (e: StanzaEvent, target: IqTarget): Promise<boolean> => {
    const type = e.stanza.attrs.type;
    if (type !== 'get' && type !== 'set') {
      // Results and errors end here: they answer a request the server made, or nothing.
      iqRequestsOf(host).settle(e);
      return true;
    }
    const payload = e.stanza.firstElement();
    const handler = payload && host.iq.find(target, type, payload.attrs.xmlns ?? '', payload.name);
    if (!payload || !handler) throw StanzaError.serviceUnavailable();
    if (target === 'account' && !(await accountExists(e))) throw StanzaError.serviceUnavailable();
    const result = await handler(e, payload);
    const reply = iqResult(e.stanza, result ?? undefined);
    reply.attrs.from = e.to.toString();
    reply.attrs.to = e.from.toString();
    await router.route(reply, e.to, e.from);
    return true;
  };

  bus.on('iq/host', (e) => iqByTable(e, 'host'), opts);
  bus.on('iq/bare', (e) => iqByTable(e, 'account'), opts);
  bus.on('iq/full', (e) => {
    const s = sessions.get(e.to);
    if (s) {
      s.send(e.stanza);
      return true;
    }
    const type = e.stanza.attrs.type;
    if (type === 'get' || type === 'set') throw StanzaError.serviceUnavailable();
    return true;
  }, opts);
}

/** §8.5.2.1.1: chat and normal go to the highest non-negative priority resources; headline to all non-negative. */
function messageTargets(available: C2sSession[], type: string): C2sSession[] {
  const eligible = available.filter((s) => s.priority >= 0);
  if (type === 'headline' || eligible.length === 0) return eligible;
  let top = -1;
  for (const s of eligible) if (s.priority > top) top = s.priority;
  return eligible.filter((s) => s.priority === top);
}
