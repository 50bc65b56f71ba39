// The part of the web-push package's API the push service uses (the package ships no types).
declare module 'web-push' {
  import type { Agent } from 'node:https';
  import type { IncomingHttpHeaders } from 'node:http';

  export type PushSubscription = { endpoint: string; keys: { p256dh: string; auth: string } };
  export type RequestOptions = {
    vapidDetails?: { subject: string; publicKey: string; privateKey: string };
    TTL?: number;
    urgency?: 'very-low' | 'low' | 'normal' | 'high';
    topic?: string;
    contentEncoding?: 'aes128gcm' | 'aesgcm';
    agent?: Agent;
    timeout?: number;
    headers?: Record<string, string>;
  };
  export type SendResult = { statusCode: number; body: string; headers: IncomingHttpHeaders };
  export class WebPushError extends Error {
    statusCode: number;
    headers: IncomingHttpHeaders;
    body: string;
    endpoint: string;
  }
  const webpush: {
    WebPushError: typeof WebPushError;
    sendNotification(subscription: PushSubscription, payload?: string | Buffer | null, options?: RequestOptions): Promise<SendResult>;
    generateVAPIDKeys(): { publicKey: string; privateKey: string };
  };
  export default webpush;
}
