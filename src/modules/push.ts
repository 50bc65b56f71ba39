// XEP-0357: Push Notifications <https://xmpp.org/extensions/xep-0357.html> 0.4.1 — the user's server: accounts
// enable and disable app servers' push services, and each gets a pubsub publish with a summary when a message
// waits for an account that has no available session.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { StanzaError } from '../core/errors.ts';
import type { StanzaEvent } from '../core/hook-map.ts';
import type { Host } from '../core/host.ts';
import type { PushRegistration } from '../storage/types.ts';
import { Element, serialize, xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { parseElement } from '../xml/parse.ts';
import { Jid } from '../xmpp/jid.ts';
import type {} from './muc/away.ts';

export const PUSH_NS = 'urn:xmpp:push:0';
const PUBSUB_NS = 'http://jabber.org/protocol/pubsub';
const DATA_NS = 'jabber:x:data';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const SUMMARY = 'urn:xmpp:push:summary';

/** A reason to notify an account's push services. */
export type PushTrigger = {
  host: Host;
  /** The account (bare JID) to notify about. */
  user: Jid;
  /**
   * 'offline': a message was stored; 'no-active-session': a session is detached (stream management) and got one;
   * 'groupchat': a message in a members-only room the member is not in (muc module).
   */
  reason: 'offline' | 'no-active-session' | 'groupchat';
  /** The message that caused it, for the sender and body fields. */
  stanza?: Element;
  /** Its sender; taken from the stanza's 'from' when absent. */
  from?: Jid;
  /** Messages waiting (message-count); left out of the summary when unknown. */
  count?: number;
};

declare module '../core/hook-map.ts' {
  interface HookMap {
    /**
     * Notify the account's registered push services (XEP-0357) now. The push module fires it itself for every
     * message stored offline; stream management fires it for a message queued on a detached session.
     */
    'push/notify': PushTrigger;
  }
}

/** Asks the push module (when loaded on the host) to publish a notification; resolves once the publishes are sent. */
export async function requestPush(trigger: PushTrigger): Promise<void> {
  await trigger.host.bus.run('push/notify', trigger);
}

/** Errors that say "not now" rather than "never": the registration survives them, up to a limit in a row. */
const TRANSIENT_CONDITIONS = new Set(['internal-server-error', 'remote-server-not-found', 'remote-server-timeout', 'resource-constraint', 'recipient-unavailable']);

type Pending = { user: Jid; service: string; node: string; publisher: string; timer: NodeJS.Timeout };

export default defineModule({
  id: 'push',
  xeps: [{ xep: 357, version: '0.4.1', status: 'complete' }],
  options: z.strictObject({
    include_sender: z.boolean().default(false).describe('send last-message-sender (the sender\'s JID) to push services'),
    include_body: z.boolean().default(false).describe('send last-message-body: message text then passes through the app server and its push provider'),
    publish_from: z.enum(['account', 'host']).default('account')
      .describe("the publish's 'from': the user's bare JID, or the server's domain (XEP-0357 0.3+ examples); both are allowed publishers"),
    max_registrations: z.number().int().min(1).default(10).describe('push services (JID and node pairs) one account may enable'),
    reply_timeout: z.number().positive().default(30).describe('seconds to wait for a push service to answer a publish'),
    max_transient_errors: z.number().int().min(1).default(10)
      .describe('transient publish errors (wait-type, unreachable service, timeout) in a row before a registration is dropped'),
  }),
  setup(ctx) {
    const { host, storage, router, options } = ctx;
    const pending = new Map<string, Pending>();
    /** Transient failures in a row per registration; success or removal forgets them. */
    const failures = new Map<string, number>();
    const regKey = (user: Jid, service: string, node: string): string => `${user.bareString}\u0000${service}\u0000${node}`;

    ctx.disco.feature(PUSH_NS, { account: true });

    // §5: enable, owner only; the same JID and node again replaces the publish options.
    ctx.iq.set(PUSH_NS, 'enable', async (e, enable) => {
      const user = owner(e);
      const service = serviceJid(enable);
      const node = enable.attrs.node;
      if (node === undefined || node === '') throw StanzaError.badRequest("'node' is required");
      const form = publishOptions(enable);
      const current = await storage.push.list(host.name, user.local);
      if (!current.some((r) => r.service === service && r.node === node) && current.length >= options.max_registrations) {
        throw new StanzaError('policy-violation', `At most ${options.max_registrations} push services per account`);
      }
      await storage.push.enable(host.name, user.local, { service, node, options: form });
      failures.delete(regKey(user, service, node));
      ctx.log.debug({ user: user.toString(), service, node }, 'push enabled');
    }, { to: ['account'] });

    // §6: disable one node of a service, or all of them.
    ctx.iq.set(PUSH_NS, 'disable', async (e, disable) => {
      const user = owner(e);
      const service = serviceJid(disable);
      const node = disable.attrs.node === '' ? undefined : disable.attrs.node;
      await storage.push.disable(host.name, user.local, service, node);
      if (node !== undefined) failures.delete(regKey(user, service, node));
      else for (const k of failures.keys()) if (k.startsWith(regKey(user, service, ''))) failures.delete(k);
      ctx.log.debug({ user: user.toString(), service, node }, 'push disabled');
    }, { to: ['account'] });

    // A push that cannot be sent must not turn into an error for the sender: the message is stored either way.
    ctx.hook('message/stored-offline', async (e) => {
      await notify({ host, user: e.user, reason: 'offline', stanza: e.stanza, from: e.from, count: e.count })
        .catch((err) => ctx.log.error({ err, user: e.user.toString() }, 'push notification failed'));
      return false;
    });

    // A message of a members-only room for a member who is not in it (see muc/away.ts); the count is the room's unread.
    ctx.hook('muc/member-away', async (e) => {
      await notify({ host, user: e.user, reason: 'groupchat', stanza: e.stanza, from: e.from, count: e.count })
        .catch((err) => ctx.log.error({ err, user: e.user.toString() }, 'push notification failed'));
      return false;
    });

    ctx.hook('push/notify', async (t) => {
      await notify(t).catch((err) => ctx.log.error({ err, user: t.user.toString() }, 'push notification failed'));
      return false;
    });

    // Answers to our publishes come to the publisher address: the account's bare JID or the host.
    const onReply = (e: StanzaEvent): boolean => {
      const type = e.stanza.attrs.type;
      const id = e.stanza.attrs.id;
      if ((type !== 'result' && type !== 'error') || id === undefined) return false;
      const p = pending.get(id);
      if (!p || (e.from.toString() !== p.service && e.from.bareString !== p.service) || e.to.toString() !== p.publisher) return false;
      pending.delete(id);
      clearTimeout(p.timer);
      if (type === 'result') failures.delete(regKey(p.user, p.service, p.node));
      else void onPublishError(p, e.stanza).catch((err) => ctx.log.error({ err }, 'push error handling failed'));
      return true;
    };
    ctx.hook('iq/bare', onReply, { priority: PRIORITY.FEATURE });
    ctx.hook('iq/host', onReply, { priority: PRIORITY.FEATURE });

    // §8: a push service may withdraw the account's publish right; the registration goes with it.
    ctx.hook('message/bare', async (e) => {
      const ps = e.stanza.getChild('pubsub', PUBSUB_NS);
      const aff = ps?.getChild('affiliation');
      const node = ps?.attrs.node;
      if (!ps || !aff || node === undefined || aff.attrs.affiliation !== 'none') return false;
      if (aff.attrs.jid === undefined || Jid.tryParse(aff.attrs.jid)?.bareString !== e.to.bareString) return false;
      const regs = await storage.push.list(host.name, e.to.local);
      const reg = regs.find((r) => r.node === node && (r.service === e.from.toString() || r.service === e.from.bareString));
      if (!reg) return false;
      await remove(e.to.bare, reg.service, reg.node, 'the push service withdrew the affiliation');
      return true;
    }, { priority: PRIORITY.FEATURE });

    ctx.onStop(() => {
      for (const p of pending.values()) clearTimeout(p.timer);
      pending.clear();
    });

    /** Publishes to every registration of the account; waits for neither the services nor their answers. */
    async function notify(t: PushTrigger): Promise<void> {
      if (t.host !== host) return;
      const user = t.user.bare;
      const regs = await storage.push.list(host.name, user.local);
      if (regs.length === 0) return;
      const summary = summaryForm(t);
      for (const reg of regs) await publish(user, reg, summary);
    }

    async function publish(user: Jid, reg: PushRegistration, summary: Element): Promise<void> {
      const service = Jid.tryParse(reg.service);
      if (!service) {
        await remove(user, reg.service, reg.node, 'unusable service address');
        return;
      }
      const publisher = options.publish_from === 'host' ? host.jid : user;
      const id = `push-${randomBytes(9).toString('base64url')}`;
      const form = reg.options !== null ? parseElement(reg.options) : undefined;
      const iq = xml('iq', { type: 'set', id, from: publisher.toString(), to: service.toString() },
        xml('pubsub', { xmlns: PUBSUB_NS },
          xml('publish', { node: reg.node },
            xml('item', null, xml('notification', { xmlns: PUSH_NS }, summary.clone()))),
          form && xml('publish-options', null, form)));
      const timer = setTimeout(() => {
        const p = pending.get(id);
        if (!p) return;
        pending.delete(id);
        void transient(p, 'no answer').catch((err) => ctx.log.error({ err }, 'push error handling failed'));
      }, options.reply_timeout * 1000);
      timer.unref();
      // Registered before sending: an unreachable service is answered at once, by the router.
      pending.set(id, { user, service: reg.service, node: reg.node, publisher: publisher.toString(), timer });
      // Not awaited: a route that writes to a component does so at once, in call order, while a service that
      // works asynchronously (a built-in one calling a provider) must not hold up the message being stored.
      void router.route(iq, publisher, service);
    }

    /** §7.1: an error disables the pair, except errors deemed transient, which may recur a few times in a row. */
    async function onPublishError(p: Pending, reply: Element): Promise<void> {
      const err = reply.getChild('error');
      const condition = err?.getElements().find((c) => c.attrs.xmlns === NS.STANZAS)?.name ?? 'undefined-condition';
      if (err?.attrs.type === 'wait' || TRANSIENT_CONDITIONS.has(condition)) await transient(p, condition);
      else await remove(p.user, p.service, p.node, condition);
    }

    async function transient(p: Pending, why: string): Promise<void> {
      const k = regKey(p.user, p.service, p.node);
      const n = (failures.get(k) ?? 0) + 1;
      if (n >= options.max_transient_errors) {
        await remove(p.user, p.service, p.node, `${n} failures in a row, the last: ${why}`);
        return;
      }
      failures.set(k, n);
      ctx.log.debug({ user: p.user.toString(), service: p.service, node: p.node, failures: n, why }, 'push publish failed; registration kept');
    }

    async function remove(user: Jid, service: string, node: string, why: string): Promise<void> {
      failures.delete(regKey(user, service, node));
      const n = await storage.push.disable(host.name, user.local, service, node);
      if (n > 0) ctx.log.info({ user: user.toString(), service, node, why }, 'push registration removed');
    }

    /** The urn:xmpp:push:summary form, with only the fields the privacy options allow. */
    function summaryForm(t: PushTrigger): Element {
      const form = xml('x', { xmlns: DATA_NS, type: 'submit' }, field('FORM_TYPE', SUMMARY, 'hidden'));
      if (t.count !== undefined) form.append(field('message-count', String(t.count)));
      const sender = t.from?.toString() ?? t.stanza?.attrs.from;
      if (options.include_sender && sender !== undefined) form.append(field('last-message-sender', sender));
      const body = t.stanza ? messageBody(t.stanza) : undefined;
      if (options.include_body && body !== undefined) form.append(field('last-message-body', body));
      return form;
    }
  },
});

/** Only the account itself manages its push registrations. */
function owner(e: StanzaEvent): Jid {
  if (e.from.bareString !== e.to.bareString) throw StanzaError.forbidden('Only the account owner may change push settings');
  return e.to.bare;
}

function serviceJid(el: Element): string {
  const raw = el.attrs.jid;
  if (raw === undefined || raw === '') throw StanzaError.badRequest("'jid' is required");
  return Jid.parse(raw).toString();
}

/** §5: an optional data form of FORM_TYPE pubsub#publish-options, kept as a submitted form for every publish. */
function publishOptions(enable: Element): string | null {
  const forms = enable.getChildren('x', DATA_NS);
  if (forms.length === 0) return null;
  if (forms.length > 1) throw StanzaError.badRequest('At most one publish-options form');
  const form = (forms[0] as Element).clone();
  const formType = form.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value');
  if (formType !== PUBLISH_OPTIONS) throw StanzaError.badRequest(`The form's FORM_TYPE must be ${PUBLISH_OPTIONS}`);
  const type = form.attrs.type;
  if (type !== undefined && type !== 'submit') throw StanzaError.badRequest("The form must be of type 'submit'");
  form.attrs.type = 'submit';
  return serialize(form);
}

function field(name: string, value: string, type?: string): Element {
  return xml('field', { var: name, type }, xml('value', null, value));
}

/** The message's body in the default language (no xml:lang), else the first one. */
function messageBody(stanza: Element): string | undefined {
  const bodies = stanza.getChildren('body').filter((b) => b.attrs.xmlns === undefined || b.attrs.xmlns === NS.CLIENT);
  const body = bodies.find((b) => b.attrs['xml:lang'] === undefined) ?? bodies[0];
  return body?.text();
}
