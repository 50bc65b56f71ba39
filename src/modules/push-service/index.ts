// XEP-0357: Push Notifications <https://xmpp.org/extensions/xep-0357.html> 0.4.1, the app server's side: a
// built-in push service that takes the user's server's publishes and sends them through APNs, FCM or Web Push.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, StanzaError } from '../../core/errors.ts';
import { defineModule } from '../../core/module.ts';
import { OutboxSender, PermanentSendError, backoffOrder, outboxKind, outboxOptions, outboxTiming } from '../../outbox/sender.ts';
import type { OutboxJob } from '../../storage/types.ts';
import { xml, type Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { Jid } from '../../xmpp/jid.ts';
import { errorReply } from '../../xmpp/stanza.ts';
import { APNS_PRODUCTION, APNS_SANDBOX, ApnsClient } from './apns.ts';
import { FCM_ENDPOINT, FcmClient, GOOGLE_TOKEN_URL, parseServiceAccount } from './fcm.ts';
import { NS_PUBSUB, NS_PUSH, buildJob, readPublish } from './publish.ts';
import { PRIVACY, TokenGoneError, type ProviderName, type PushJob } from './types.ts';
import { WebPushClient } from './webpush.ts';

const ApnsOptions = z.strictObject({
  key_file: z.string().min(1).describe('the .p8 signing key from the Apple developer account (token authentication)'),
  key_id: z.string().min(1).describe('the key id of that key (10 characters)'),
  team_id: z.string().min(1).describe('the Apple developer team id'),
  topic: z.string().min(1).optional().describe('bundle id used when a registration names no topic'),
  host: z.url({ protocol: /^https$/ }).default(APNS_PRODUCTION).describe('APNs production gateway'),
  sandbox_host: z.url({ protocol: /^https$/ }).default(APNS_SANDBOX).describe('APNs development gateway (environment=sandbox)'),
});

const FcmOptions = z.strictObject({
  service_account_file: z.string().min(1).describe('the Firebase service-account key (JSON: client_email, private_key, project_id)'),
  endpoint: z.url({ protocol: /^https$/ }).default(FCM_ENDPOINT).describe('FCM API origin'),
  token_url: z.url({ protocol: /^https$/ }).optional().describe('OAuth 2.0 token URL; default the key file\'s token_uri, else Google\'s'),
});

const WebPushOptions = z.strictObject({
  vapid_public_key: z.string().regex(/^[A-Za-z0-9_-]{87}$/, 'must be an uncompressed P-256 public key, base64url (87 characters)')
    .describe('VAPID public key, the applicationServerKey web apps subscribe with'),
  vapid_private_key: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a P-256 private key, base64url (43 characters)')
    .describe('VAPID private key'),
  subject: z.string().regex(/^(mailto:|https:\/\/)\S+$/, 'must be a mailto: or https: URL').describe('contact for push services (RFC 8292 §2.1)'),
});

export const PushServiceOptions = z.strictObject({
  jid: z.string().min(1).optional().describe('the push service JID (a domain that is not a host); default push.<host>'),
  privacy: z.enum(PRIVACY).default('none')
    .describe('what a notification shows: none ("New message"), sender (the sender\'s JID) or sender_and_body (and a preview)'),
  text: z.string().min(1).max(200).default('New message').describe('alert text when the sender and body are not shown'),
  ttl: z.number().int().min(1).max(28 * 86_400).default(86_400).describe('seconds a notification may wait in the provider for an offline device'),
  ca_file: z.string().min(1).optional().describe('extra trusted CA certificate (PEM) for the provider endpoints: testing and private deployments'),
  ...outboxOptions({ item: 'notification', concurrency: 8, keepDeliveredDays: 1, keepWhy: 'they may hold a preview' }),
  apns: ApnsOptions.optional().describe('Apple Push Notification service'),
  fcm: FcmOptions.optional().describe('Firebase Cloud Messaging (HTTP v1)'),
  webpush: WebPushOptions.optional().describe('Web Push with VAPID, for browsers'),
})
  .refine((o) => o.apns !== undefined || o.fcm !== undefined || o.webpush !== undefined, { message: 'configure at least one provider: apns, fcm or webpush' })
  .refine(...backoffOrder);

type Client = { send(job: PushJob, signal: AbortSignal): Promise<void>; close(): void };

function readConfigFile(path: string, key: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`modules.push_service.${key}: ${(err as Error).message}`]);
  }
}

/** Builds a provider client, turning a bad key or key file into a ConfigError naming the option. */
function configured<T>(key: string, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([`modules.push_service.${key}: ${(err as Error).message}`]);
  }
}

export default defineModule({
  id: 'push_service',
  xeps: [{ xep: 357, version: '0.4.1', status: 'complete' }],
  enabledByDefault: false,
  options: PushServiceOptions,
  setup(ctx) {
    const { host, storage, options: o } = ctx;
    const service = Jid.tryParse(o.jid ?? `push.${host.name}`);
    if (!service || service.local !== '' || service.resource !== '') {
      throw new ConfigError([`modules.push_service.jid: must be a bare domain, got ${o.jid}`]);
    }
    const serviceJid = service.toString();
    const ca = o.ca_file ? readConfigFile(o.ca_file, 'ca_file') : undefined;
    const timeoutMs = Math.round(o.timeout * 1000);

    const clients = new Map<ProviderName, Client>();
    if (o.apns) {
      const a = o.apns;
      const key = readConfigFile(a.key_file, 'apns.key_file');
      clients.set('apns', configured('apns', () => new ApnsClient({
        key, keyId: a.key_id, teamId: a.team_id, topic: a.topic, host: a.host, sandboxHost: a.sandbox_host, ca, timeoutMs, text: o.text, log: ctx.log,
      })));
    }
    if (o.fcm) {
      const f = o.fcm;
      const account = configured('fcm.service_account_file', () => parseServiceAccount(readConfigFile(f.service_account_file, 'fcm.service_account_file'), f.service_account_file));
      clients.set('fcm', configured('fcm.service_account_file', () => new FcmClient({
        account, endpoint: f.endpoint.replace(/\/+$/, ''), tokenUrl: f.token_url ?? account.token_uri ?? GOOGLE_TOKEN_URL, ca, timeoutMs, text: o.text,
      })));
    }
    if (o.webpush) {
      const w = o.webpush;
      clients.set('webpush', new WebPushClient({ publicKey: w.vapid_public_key, privateKey: w.vapid_private_key, subject: w.subject, ca, timeoutMs, text: o.text }));
    }
    for (const c of clients.values()) ctx.onStop(() => c.close());

    const senders = new Map<ProviderName, OutboxSender>();
    for (const [provider, client] of clients) {
      const send = async (job: OutboxJob, signal: AbortSignal): Promise<void> => {
        let push: PushJob;
        try {
          push = JSON.parse(job.payload) as PushJob;
        } catch (err) {
          throw new PermanentSendError(`unreadable outbox payload: ${(err as Error).message}`);
        }
        try {
          await client.send(push, signal);
        } catch (err) {
          if (!(err instanceof TokenGoneError)) throw err;
          // The device or browser dropped the token: every account that registered it stops publishing to it.
          const removed = await storage.push.removeNode(push.service, push.token);
          ctx.log.info({ provider, job: job.id, registrations: removed, reason: err.message }, 'push token is gone; registration removed');
          throw new PermanentSendError(`${err.message}; registration removed`);
        }
      };
      const sender = new OutboxSender({
        store: storage.outbox,
        kind: `${outboxKind(ctx.id, host.name)}:${provider}`,
        send,
        ...outboxTiming(o),
        log: ctx.log,
      });
      senders.set(provider, sender);
    }

    /** Only the user's server publishes, from an account's bare JID (or the host's own), to a node that account enabled. */
    async function authorize(from: Jid, node: string): Promise<void> {
      if (from.resource !== '' || !ctx.server.hosts.has(from.domain)) {
        throw StanzaError.forbidden('Only accounts of this server may publish to its push service');
      }
      if (from.local === '') return;
      const regs = await storage.push.list(from.domain, from.local);
      const registered = regs.some((r) => r.node === node && Jid.tryParse(r.service)?.toString() === serviceJid);
      if (!registered) throw StanzaError.itemNotFound('No push registration of this account for that node');
    }

    async function publish(iq: Element, pubsub: Element, from: Jid): Promise<void> {
      const p = readPublish(pubsub);
      await authorize(from, p.node);
      const job = await buildJob(p, {
        service: serviceJid,
        configured: [...clients.keys()],
        privacy: o.privacy,
        ttlMs: o.ttl * 1000,
        now: Date.now(),
        apnsTopic: o.apns?.topic,
        offlineCount: () => (from.local === '' ? Promise.resolve(0) : storage.offline.count(from.domain, from.local)),
      });
      const sender = senders.get(job.provider) as OutboxSender;
      // XEP-0357 §7: the result means the notification is accepted; it is durable before we say so.
      try {
        await storage.outbox.add(host.name, sender.kind, JSON.stringify(job));
      } catch (err) {
        ctx.log.error({ err, id: iq.attrs.id }, 'could not queue a push notification');
        throw new StanzaError('internal-server-error', 'The notification could not be queued', { type: 'wait' });
      }
      sender.wake();
    }

    async function answer(iq: Element, from: Jid, to: Jid): Promise<Element | undefined> {
      if (to.local !== '' || to.resource !== '') throw StanzaError.serviceUnavailable();
      const payload = iq.firstElement();
      const type = iq.attrs.type;
      if (type === 'get' && payload?.is('query', NS.DISCO_INFO) && payload.attrs.node === undefined) {
        // XEP-0357: an app server identifies as a pubsub service of type push.
        return xml('query', { xmlns: NS.DISCO_INFO },
          xml('identity', { category: 'pubsub', type: 'push', name: 'Parley push service' }),
          [NS.DISCO_INFO, NS.DISCO_ITEMS, NS_PUBSUB, NS_PUSH].map((f) => xml('feature', { var: f })));
      }
      if (type === 'get' && payload?.is('query', NS.DISCO_ITEMS) && payload.attrs.node === undefined) {
        return xml('query', { xmlns: NS.DISCO_ITEMS });
      }
      if (type === 'set' && payload?.is('pubsub', NS_PUBSUB)) {
        await publish(iq, payload, from);
        return undefined;
      }
      throw StanzaError.serviceUnavailable();
    }

    async function deliver(stanza: Element, from: Jid, to: Jid): Promise<void> {
      const me = service as Jid;
      if (stanza.name === 'iq') {
        const type = stanza.attrs.type;
        if (type !== 'get' && type !== 'set') return;
        let reply: Element;
        try {
          reply = xml('iq', { type: 'result', id: stanza.attrs.id, from: to.toString(), to: from.toString() }, await answer(stanza, from, to));
        } catch (err) {
          if (!(err instanceof StanzaError)) ctx.log.error({ err, from: from.toString() }, 'push service request failed');
          reply = errorReply(stanza, err instanceof StanzaError ? err : StanzaError.internal());
          reply.attrs.from = to.toString();
          reply.attrs.to = from.toString();
        }
        await ctx.router.route(reply, me, from);
        return;
      }
      // Messages get the RFC 6120 §8.3 treatment of an address that takes none; presence is ignored.
      if (stanza.name === 'message' && stanza.attrs.type !== 'error') {
        const reply = errorReply(stanza, StanzaError.serviceUnavailable());
        reply.attrs.from = to.toString();
        reply.attrs.to = from.toString();
        await ctx.router.route(reply, me, from);
      }
    }

    try {
      ctx.onStop(ctx.router.addRoute(service.domain, deliver));
    } catch (err) {
      // A host's own name, or the same jid for two hosts (set jid per host then).
      throw new ConfigError([`modules.push_service.jid: ${(err as Error).message}`]);
    }
    for (const sender of senders.values()) {
      sender.start();
      ctx.onStop(() => sender.stop());
    }
    ctx.log.info({ jid: serviceJid, providers: [...clients.keys()] }, 'push service ready');
  },
});
