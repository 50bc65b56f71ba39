// XEP-0357 §7 as the app server sees it: a XEP-0060 publish whose node is the device token, carrying the
// urn:xmpp:push:summary form, with publish-options (XEP-0060 §7.1.5) that say how to reach the device.
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { parseSubscription } from './webpush.ts';
import { PROVIDERS, PUSH_TYPES, shorten, type Privacy, type ProviderName, type PushJob, type PushType } from './types.ts';

export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const NS_PUSH = 'urn:xmpp:push:0';
export const NS_DATA = 'jabber:x:data';
export const FORM_SUMMARY = 'urn:xmpp:push:summary';
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

/** Longest preview kept: providers cap payloads near 4 KB, and a lock screen shows far less. */
export const PREVIEW_CHARS = 256;

export type Publish = {
  node: string;
  summary: Map<string, string>;
  options: Map<string, string>;
};

/** The first value of each field of a XEP-0004 form, FORM_TYPE included. */
export function readFormValues(x: Element): Map<string, string> {
  const values = new Map<string, string>();
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var;
    if (name === undefined || values.has(name)) continue;
    values.set(name, field.getChild('value')?.text() ?? '');
  }
  return values;
}

/** XEP-0060 §7.1.5: publish-options that cannot be met. */
export function preconditionNotMet(text: string): StanzaError {
  return new StanzaError('conflict', text, { app: xml('precondition-not-met', { xmlns: NS_PUBSUB_ERRORS }) });
}

/** Reads the publish out of `<pubsub>`; throws the XEP-0060 errors for malformed requests. */
export function readPublish(pubsub: Element): Publish {
  const publish = pubsub.getChild('publish');
  if (!publish) {
    throw new StanzaError('feature-not-implemented', 'This push service accepts publish requests only', {
      app: xml('unsupported', { xmlns: NS_PUBSUB_ERRORS, feature: 'publish' }),
    });
  }
  const node = publish.attrs.node;
  if (node === undefined || node === '') {
    throw new StanzaError('bad-request', 'The node (device token) is missing', { app: xml('nodeid-required', { xmlns: NS_PUBSUB_ERRORS }) });
  }
  const notification = publish.getChild('item')?.getChild('notification', NS_PUSH);
  if (!notification) throw StanzaError.badRequest('The item carries no urn:xmpp:push:0 notification');
  // XEP-0357 §7: the summary form is optional; without it the notification says only "something happened".
  const sx = notification.getChild('x', NS_DATA);
  const summary = sx ? readFormValues(sx) : new Map<string, string>();
  if (sx && summary.get('FORM_TYPE') !== FORM_SUMMARY) throw StanzaError.badRequest(`The notification form is not ${FORM_SUMMARY}`);
  const ox = pubsub.getChild('publish-options')?.getChild('x', NS_DATA);
  const options = ox ? readFormValues(ox) : new Map<string, string>();
  if (ox && options.get('FORM_TYPE') !== FORM_PUBLISH_OPTIONS) throw StanzaError.badRequest(`The publish-options form is not ${FORM_PUBLISH_OPTIONS}`);
  return { node, summary, options };
}

export type JobContext = {
  service: string;
  configured: ProviderName[];
  privacy: Privacy;
  ttlMs: number;
  now: number;
  /** The APNs topic configured for the host, used when a registration names none. */
  apnsTopic?: string | undefined;
  /** Stored offline messages of the publishing account, when the summary has no message-count. */
  offlineCount: () => Promise<number>;
};

const truthy = (v: string | undefined): boolean => v === '1' || v === 'true';

/** Turns a publish into the job to queue, keeping only what the privacy setting lets leave the server. */
export async function buildJob(p: Publish, c: JobContext): Promise<PushJob> {
  const o = p.options;
  const named = o.get('provider');
  let provider: ProviderName;
  if (named === undefined || named === '') {
    // With one provider configured, the field may be left out.
    if (c.configured.length !== 1) throw preconditionNotMet(`publish-options must name the provider (${c.configured.join(', ')})`);
    provider = c.configured[0] as ProviderName;
  } else {
    if (!(PROVIDERS as readonly string[]).includes(named)) throw preconditionNotMet(`Unknown provider ${named} (apns, fcm, webpush)`);
    provider = named as ProviderName;
    if (!c.configured.includes(provider)) throw preconditionNotMet(`The ${provider} provider is not configured on this server`);
  }

  const pushTypeRaw = o.get('push-type') || 'alert';
  if (!(PUSH_TYPES as readonly string[]).includes(pushTypeRaw)) throw preconditionNotMet(`push-type must be alert, background or voip`);
  const pushType = pushTypeRaw as PushType;
  if (pushType === 'voip' && provider === 'webpush') throw preconditionNotMet('Web Push has no voip push-type');
  const priorityRaw = o.get('priority') || (pushType === 'background' ? 'normal' : 'high');
  if (priorityRaw !== 'high' && priorityRaw !== 'normal') throw preconditionNotMet('priority must be high or normal');
  const collapseId = o.get('collapse-id') || undefined;
  // APNs caps apns-collapse-id at 64 bytes.
  if (collapseId !== undefined && Buffer.byteLength(collapseId) > 64) throw preconditionNotMet('collapse-id is longer than 64 bytes');

  const job: PushJob = {
    service: c.service,
    provider,
    token: p.node,
    count: 0,
    pushType,
    priority: priorityRaw,
    expiresAt: c.now + c.ttlMs,
    collapseId,
  };

  if (provider === 'apns') {
    if (!/^[0-9a-fA-F]{32,400}$/.test(p.node)) throw preconditionNotMet('The node must be the APNs device token in hexadecimal');
    job.topic = o.get('topic') || c.apnsTopic;
    if (!job.topic) throw preconditionNotMet('publish-options must name the topic (the app bundle id)');
    const env = o.get('environment') || 'production';
    if (env !== 'production' && env !== 'sandbox') throw preconditionNotMet('environment must be production or sandbox');
    job.sandbox = env === 'sandbox';
    job.mutableContent = truthy(o.get('mutable-content'));
  } else if (provider === 'fcm') {
    if (p.node.length > 4096 || /\s/.test(p.node)) throw preconditionNotMet('The node must be the FCM registration token');
  } else {
    try {
      job.subscription = parseSubscription(o.get('subscription') ?? '');
    } catch (err) {
      throw preconditionNotMet(`publish-options subscription: ${(err as Error).message}`);
    }
  }

  const countRaw = p.summary.get('message-count');
  job.count = countRaw !== undefined && /^\d{1,9}$/.test(countRaw) ? Number(countRaw) : await c.offlineCount();
  if (c.privacy !== 'none') {
    const sender = p.summary.get('last-message-sender');
    const jid = sender ? Jid.tryParse(sender) : undefined;
    if (jid) job.sender = jid.bareString;
    const body = p.summary.get('last-message-body');
    if (c.privacy === 'sender_and_body' && body) job.body = shorten(body, PREVIEW_CHARS);
  }
  return job;
}
