// Offline message webhook, after ejabberd's mod_offline_post: every message stored for an offline account is
// POSTed to the app (form fields to/from/body as mod_offline_post sends them, or JSON), signed with HMAC-SHA256,
// through the durable outbox with retries. The stored message itself is untouched: the user still gets it at login.
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import type { OutboxJob } from '../storage/types.ts';
import { OutboxSender, PermanentSendError, backoffOrder, outboxKind, outboxOptions, outboxTiming } from '../outbox/sender.ts';
import type { Element } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { messageType } from '../xmpp/stanza.ts';
import { Jid } from '../xmpp/jid.ts';
import type {} from './offline.ts';
import type {} from './muc/away.ts';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers Parley sets itself; letting configuration override them would break the format or the signature. */
const RESERVED = /^(content-type|content-length|host|connection|transfer-encoding|x-parley-.*)$/i;

export const OfflineWebhookOptions = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).describe('the app endpoint; each offline message is POSTed to it'),
  format: z.enum(['form', 'json']).default('json')
    .describe('form: application/x-www-form-urlencoded to, from, body as mod_offline_post sends them; json: a JSON object'),
  secret: z.string().min(16).optional()
    .describe('shared secret: requests carry X-Parley-Signature, an HMAC-SHA256 over timestamp, delivery id and body'),
  access_token: z.string().optional()
    .describe('sent as the access_token field (mod_offline_post auth_token), for receivers written for it'),
  types: z.array(z.enum(['chat', 'normal', 'headline'])).min(1).default(['chat', 'normal'])
    .describe('message types posted; mod_offline_post posted chat only'),
  groupchat: z.boolean().default(true)
    .describe('also post messages of members-only rooms to members who are not in the room (muc module; docs/muc.md)'),
  ...outboxOptions({ item: 'request', concurrency: 4, keepDeliveredDays: 7, keepWhy: 'for `parley outbox list`' }),
  headers: z.record(
    z.string().regex(HEADER_NAME, 'not a valid header name').refine((h) => !RESERVED.test(h), 'set by Parley, cannot be overridden'),
    z.string().regex(/^[^\r\n]*$/, 'header values cannot contain line breaks'),
  ).default({}).describe('extra request headers, e.g. Authorization'),
}).refine(...backoffOrder);

export type OfflineWebhookConfig = z.output<typeof OfflineWebhookOptions>;

/** What is kept in the outbox for one message; rendered in the configured format when sent. */
export type WebhookPayload = {
  /** The sender's full JID, as the recipient will see it. */
  from: string;
  /** The recipient's bare JID. */
  to: string;
  body: string;
  /** The stanza's id attribute, if it had one. */
  id: string | null;
  type: string;
  /** When the message was stored (its XEP-0203 delay stamp). */
  time: string;
  /** Messages waiting for the recipient, this one included (for a room: messages missed there). */
  offline_count: number;
  /** For a message of a members-only room the member is not in: the room's bare JID ('from' is the occupant JID). */
  room?: string;
};

/** The first body, preferring one in the stanza's own language, as a client would show it. */
export function messageBody(stanza: Element): string | undefined {
  const bodies = stanza.getChildren('body').filter((b) => b.attrs.xmlns === undefined || b.attrs.xmlns === NS.CLIENT);
  const lang = stanza.attrs['xml:lang'];
  const chosen = bodies.find((b) => b.attrs['xml:lang'] === undefined || b.attrs['xml:lang'] === lang) ?? bodies[0];
  return chosen?.text();
}

/** The request body and its content type, exactly as sent. */
export function renderWebhook(p: WebhookPayload, format: 'form' | 'json', accessToken?: string): { body: string; contentType: string } {
  if (format === 'form') {
    // mod_offline_post's fields in its order: to and from are localparts (To#jid.luser, From#jid.luser).
    const fields: Array<[string, string]> = [['to', Jid.parse(p.to).local], ['from', Jid.parse(p.from).local], ['body', p.body]];
    if (accessToken !== undefined) fields.push(['access_token', accessToken]);
    return { body: new URLSearchParams(fields).toString(), contentType: 'application/x-www-form-urlencoded' };
  }
  const json: Record<string, unknown> = { ...p };
  if (accessToken !== undefined) json.access_token = accessToken;
  return { body: JSON.stringify(json), contentType: 'application/json' };
}

/** The X-Parley-Signature value: HMAC-SHA256 of "<timestamp>.<delivery id>.<raw body>". */
export function webhookSignature(secret: string, timestamp: string, deliveryId: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${deliveryId}.${body}`).digest('hex');
}

export default defineModule({
  id: 'offline_webhook',
  requires: ['offline'],
  enabledByDefault: false,
  options: OfflineWebhookOptions,
  setup(ctx) {
    const { host, storage, options: o } = ctx;
    const kind = outboxKind(ctx.id, host.name);

    async function post(job: OutboxJob, stop: AbortSignal): Promise<void> {
      let rendered: { body: string; contentType: string };
      let event = 'offline-message';
      try {
        const payload = JSON.parse(job.payload) as WebhookPayload;
        if (payload.room !== undefined) event = 'groupchat-message';
        rendered = renderWebhook(payload, o.format, o.access_token);
      } catch (err) {
        throw new PermanentSendError(`unreadable outbox payload: ${(err as Error).message}`);
      }
      const deliveryId = String(job.id);
      // A fresh timestamp per attempt, so receivers can refuse old (replayed) requests and still accept retries.
      const timestamp = String(Math.floor(Date.now() / 1000));
      const headers: Record<string, string> = {
        ...o.headers,
        'Content-Type': rendered.contentType,
        'User-Agent': 'Parley',
        'X-Parley-Event': event,
        'X-Parley-Delivery': deliveryId,
        'X-Parley-Timestamp': timestamp,
      };
      if (o.secret !== undefined) headers['X-Parley-Signature'] = webhookSignature(o.secret, timestamp, deliveryId, rendered.body);
      const res = await fetch(o.url, {
        method: 'POST',
        headers,
        body: rendered.body,
        // A redirect is a misconfigured URL: following it would resend a signed body somewhere else.
        redirect: 'manual',
        signal: AbortSignal.any([stop, AbortSignal.timeout(o.timeout * 1000)]),
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status < 200 || res.status > 299) throw new Error(`HTTP ${res.status}`);
    }

    const sender = new OutboxSender({
      store: storage.outbox,
      kind,
      send: post,
      ...outboxTiming(o),
      log: ctx.log,
    });

    ctx.hook('message/stored-offline', async (e) => {
      const type = messageType(e.stanza);
      if (!(o.types as string[]).includes(type)) return;
      // Like mod_offline_post, only messages with a body: receipts, markers and the like would be empty notifications.
      const body = messageBody(e.stanza);
      if (body === undefined || body === '') return;
      const stamp = e.stanza.getChildren('delay', NS.DELAY).findLast((d) => d.attrs.from === host.name)?.attrs.stamp;
      const payload: WebhookPayload = {
        from: e.from.toString(),
        to: e.user.bareString,
        body,
        id: e.stanza.attrs.id ?? null,
        type,
        time: stamp ?? new Date().toISOString(),
        offline_count: e.count,
      };
      await queue(payload);
    });

    // A message of a members-only room for a member who is not in it (see muc/away.ts).
    ctx.hook('muc/member-away', async (e) => {
      if (!o.groupchat) return;
      const body = messageBody(e.stanza);
      if (body === undefined || body === '') return;
      await queue({
        from: e.from.toString(),
        to: e.user.bareString,
        body,
        id: e.stanza.attrs.id ?? null,
        type: 'groupchat',
        time: new Date().toISOString(),
        offline_count: e.count,
        room: e.room.bareString,
      });
    });

    async function queue(payload: WebhookPayload): Promise<void> {
      try {
        // Durable before the hook returns; the request itself goes out in the background.
        await storage.outbox.add(host.name, kind, JSON.stringify(payload));
      } catch (err) {
        // The message is stored (or delivered to the room); a lost notification must not become an error for the sender.
        ctx.log.error({ err, user: payload.to }, 'could not queue the offline webhook');
        return;
      }
      sender.wake();
    }

    sender.start();
    ctx.onStop(() => sender.stop());
  },
});
