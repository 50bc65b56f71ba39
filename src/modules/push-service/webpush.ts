// Web Push for browsers: RFC 8030 delivery, RFC 8291 message encryption and RFC 8292 VAPID, through the
// web-push library.
import type { Agent } from 'node:https';
import webpush from 'web-push';
import { PermanentSendError } from '../../outbox/sender.ts';
import { createAgent } from './http.ts';
import { TokenGoneError, alertText, type PushJob, type WebPushSubscription } from './types.ts';

export type WebPushOptions = {
  publicKey: string;
  privateKey: string;
  /** RFC 8292 §2.1: a mailto: or https: contact for the push service's operator. */
  subject: string;
  ca?: string | undefined;
  timeoutMs: number;
  text: string;
  now?: () => number;
};

const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Checks a browser PushSubscription (its toJSON() form) before it is queued. */
export function parseSubscription(json: string): WebPushSubscription {
  let v: { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
  try {
    v = JSON.parse(json) as typeof v;
  } catch {
    throw new Error('subscription is not JSON');
  }
  if (typeof v?.endpoint !== 'string') throw new Error('subscription has no endpoint');
  let url: URL;
  try {
    url = new URL(v.endpoint);
  } catch {
    throw new Error('subscription endpoint is not a URL');
  }
  if (url.protocol !== 'https:') throw new Error('subscription endpoint must be https');
  const { p256dh, auth } = v.keys ?? {};
  // RFC 8291 §3.2: a P-256 public key (65 bytes, uncompressed) and a 16-byte authentication secret.
  if (typeof p256dh !== 'string' || !B64URL.test(p256dh) || Buffer.from(p256dh, 'base64url').length !== 65) {
    throw new Error('subscription keys.p256dh must be a base64url P-256 public key');
  }
  if (typeof auth !== 'string' || !B64URL.test(auth) || Buffer.from(auth, 'base64url').length !== 16) {
    throw new Error('subscription keys.auth must be a base64url 16-byte secret');
  }
  return { endpoint: v.endpoint, keys: { p256dh, auth } };
}

export class WebPushClient {
  private readonly opts: WebPushOptions;
  private readonly agent: Agent;
  private readonly now: () => number;

  constructor(opts: WebPushOptions) {
    this.opts = opts;
    this.agent = createAgent(opts.ca);
    this.now = opts.now ?? Date.now;
  }

  /** The JSON a service worker receives in its push event. */
  payload(job: PushJob): Record<string, unknown> {
    const alert = alertText(job, this.opts.text);
    const out: Record<string, unknown> = { type: job.pushType, count: job.count, title: alert.title, text: alert.body };
    if (job.sender !== undefined) out.sender = job.sender;
    if (job.body !== undefined) out.body = job.body;
    return out;
  }

  async send(job: PushJob, signal?: AbortSignal): Promise<void> {
    if (!job.subscription) throw new PermanentSendError('Web Push: no subscription in the job');
    const ttl = Math.floor((job.expiresAt - this.now()) / 1000);
    if (ttl <= 0) throw new PermanentSendError('Web Push: the notification expired before it could be sent');
    try {
      await abortable(webpush.sendNotification(job.subscription, JSON.stringify(this.payload(job)), {
        vapidDetails: { subject: this.opts.subject, publicKey: this.opts.publicKey, privateKey: this.opts.privateKey },
        TTL: ttl,
        urgency: job.priority === 'high' ? 'high' : 'normal',
        // RFC 8030 §5.4: a topic replaces an undelivered message with the same topic.
        ...(job.collapseId !== undefined && /^[A-Za-z0-9_-]{1,32}$/.test(job.collapseId) ? { topic: job.collapseId } : {}),
        contentEncoding: 'aes128gcm',
        agent: this.agent,
        timeout: this.opts.timeoutMs,
      }), signal);
    } catch (err) {
      if (!(err instanceof webpush.WebPushError)) throw err;
      const what = `Web Push ${err.statusCode}${err.body ? `: ${err.body.slice(0, 200)}` : ''}`;
      // RFC 8030 §7.3: a subscription that is gone (410) or unknown (404) will never work again.
      if (err.statusCode === 404 || err.statusCode === 410) throw new TokenGoneError(what);
      if (err.statusCode === 429 || err.statusCode >= 500) throw new Error(what);
      throw new PermanentSendError(what);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** web-push takes no AbortSignal: stopping stops waiting, and closing the agent ends the request. */
function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
