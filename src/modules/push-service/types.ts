// What the push service queues for one notification, and how providers report a dead device token.

export const PROVIDERS = ['apns', 'fcm', 'webpush'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export const PUSH_TYPES = ['alert', 'background', 'voip'] as const;
export type PushType = (typeof PUSH_TYPES)[number];

export const PRIVACY = ['none', 'sender', 'sender_and_body'] as const;
export type Privacy = (typeof PRIVACY)[number];

export type WebPushSubscription = { endpoint: string; keys: { p256dh: string; auth: string } };

/** One queued notification (the outbox payload, as JSON). Only what the privacy setting allows is kept. */
export type PushJob = {
  /** The push service JID that accepted the publish; the token is removed under it when it turns out dead. */
  service: string;
  provider: ProviderName;
  /** The pubsub node: the device token (APNs, FCM) or the subscription's id (Web Push). */
  token: string;
  /** Badge: the recipient's stored offline messages. */
  count: number;
  /** The last message's sender (bare JID), when the privacy setting shows it. */
  sender?: string | undefined;
  /** The last message's body (shortened), when the privacy setting shows it and the publish carried it. */
  body?: string | undefined;
  pushType: PushType;
  /** High priority wakes the device now; normal lets the provider save power. */
  priority: 'high' | 'normal';
  /** The provider discards the notification after this time (ms since the epoch). */
  expiresAt: number;
  collapseId?: string | undefined;
  /** APNs: the bundle id (apns-topic); sandbox selects Apple's development gateway. */
  topic?: string | undefined;
  sandbox?: boolean | undefined;
  mutableContent?: boolean | undefined;
  /** Web Push: the browser's PushSubscription. */
  subscription?: WebPushSubscription | undefined;
};

/** The provider says the device token or subscription no longer exists: drop the registration. */
export class TokenGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenGoneError';
  }
}

/** The text a notification shows, from the privacy-filtered job. */
export function alertText(job: PushJob, defaultText: string): { title?: string; body: string } {
  if (job.sender !== undefined) return { title: job.sender, body: job.body ?? defaultText };
  return { body: job.body ?? defaultText };
}

/** Shortens a preview at a code point boundary; providers cap payloads at about 4 KB. */
export function shorten(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : chars.slice(0, max - 1).join('') + '…';
}
