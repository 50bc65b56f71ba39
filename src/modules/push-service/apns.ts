// Apple Push Notification service: the HTTP/2 provider API with token-based authentication
// <https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns>.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { PermanentSendError } from '../../outbox/sender.ts';
import { trustedCa } from './http.ts';
import { loadPrivateKey, signJwt } from './jwt.ts';
import { TokenGoneError, alertText, type PushJob } from './types.ts';

export const APNS_PRODUCTION = 'https://api.push.apple.com';
export const APNS_SANDBOX = 'https://api.sandbox.push.apple.com';

// APNs rejects a provider token older than an hour and refuses new ones more often than every 20 minutes.
const TOKEN_REFRESH_MS = 50 * 60_000;
const TOKEN_MIN_AGE_MS = 20 * 60_000;
const IDLE_CLOSE_MS = 10 * 60_000;
const MAX_BODY = 16 * 1024;

export type ApnsOptions = {
  /** The team's .p8 key (PEM, PKCS#8, P-256). */
  key: string;
  keyId: string;
  teamId: string;
  /** Bundle id used when a publish names no topic. */
  topic?: string | undefined;
  host: string;
  sandboxHost: string;
  /** An extra trusted CA (PEM). */
  ca?: string | undefined;
  timeoutMs: number;
  /** Alert text when neither sender nor body may be shown. */
  text: string;
  now?: () => number;
  log?: Logger;
};

type Response = { status: number; headers: IncomingHttpHeaders; body: string };

export class ApnsClient {
  private readonly opts: ApnsOptions;
  private readonly key: KeyObject;
  private readonly ca: string[] | undefined;
  private readonly now: () => number;
  private jwt: { value: string; issuedAt: number } | undefined;
  private readonly sessions = new Map<string, ClientHttp2Session>();
  private closed = false;

  constructor(opts: ApnsOptions) {
    this.opts = opts;
    this.key = loadPrivateKey(opts.key, 'ES256', 'apns.key_file');
    this.ca = trustedCa(opts.ca);
    this.now = opts.now ?? Date.now;
  }

  /** The provider token (ES256 JWT: kid, iss = team id, iat), reused until it nears APNs' one-hour limit. */
  providerToken(): string {
    const now = this.now();
    if (!this.jwt || now - this.jwt.issuedAt >= TOKEN_REFRESH_MS) {
      const value = signJwt('ES256', this.key, { kid: this.opts.keyId }, { iss: this.opts.teamId, iat: Math.floor(now / 1000) });
      this.jwt = { value, issuedAt: now };
    }
    return this.jwt.value;
  }

  async send(job: PushJob, signal?: AbortSignal): Promise<void> {
    const topic = job.topic ?? this.opts.topic;
    if (!topic) throw new PermanentSendError('APNs: no topic (bundle id) in the publish and none configured');
    const now = this.now();
    if (job.expiresAt <= now) throw new PermanentSendError('APNs: the notification expired before it could be sent');
    const background = job.pushType === 'background';
    const headers: OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': `/3/device/${encodeURIComponent(job.token)}`,
      authorization: `bearer ${this.providerToken()}`,
      // VoIP pushes go to the app's ".voip" topic.
      'apns-topic': job.pushType === 'voip' && !topic.endsWith('.voip') ? `${topic}.voip` : topic,
      'apns-push-type': job.pushType,
      // Apple requires priority 5 for background pushes.
      'apns-priority': background || job.priority === 'normal' ? '5' : '10',
      'apns-expiration': String(Math.floor(job.expiresAt / 1000)),
      'content-type': 'application/json',
    };
    if (job.collapseId !== undefined) headers['apns-collapse-id'] = job.collapseId;
    const origin = job.sandbox ? this.opts.sandboxHost : this.opts.host;
    const res = await this.request(origin, headers, JSON.stringify(this.payload(job)), signal);
    if (res.status === 200) return;
    const reason = readReason(res.body);
    const what = `APNs ${res.status}${reason ? ` ${reason}` : ''}`;
    if (res.status === 410 || (res.status === 400 && reason === 'BadDeviceToken')) throw new TokenGoneError(what);
    if (res.status === 403 && (reason === 'ExpiredProviderToken' || reason === 'InvalidProviderToken')) {
      // A fresh token may help, but APNs refuses tokens renewed more often than every 20 minutes.
      if (this.jwt && this.now() - this.jwt.issuedAt >= TOKEN_MIN_AGE_MS) this.jwt = undefined;
      throw new Error(what);
    }
    if (res.status === 429 || res.status >= 500) throw new Error(what);
    throw new PermanentSendError(what);
  }

  /** The JSON body: an alert with badge, a silent content-available push, or a VoIP payload for PushKit. */
  payload(job: PushJob): Record<string, unknown> {
    const xmpp: Record<string, unknown> = { count: job.count };
    if (job.sender !== undefined) xmpp.sender = job.sender;
    if (job.body !== undefined) xmpp.body = job.body;
    if (job.pushType === 'background') return { aps: { 'content-available': 1 }, xmpp };
    if (job.pushType === 'voip') return { xmpp };
    const aps: Record<string, unknown> = { alert: alertText(job, this.opts.text), badge: job.count, sound: 'default' };
    if (job.mutableContent) aps['mutable-content'] = 1;
    return { aps, xmpp };
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
  }

  /** One HTTP/2 connection per gateway, kept open between pushes as Apple asks. */
  private session(origin: string): ClientHttp2Session {
    const existing = this.sessions.get(origin);
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const s = connect(origin, this.ca ? { ca: this.ca } : {});
    const drop = (): void => {
      if (this.sessions.get(origin) === s) this.sessions.delete(origin);
    };
    // Connection errors reach the requests on it; the session is dropped so the next push reconnects.
    s.on('error', (err) => {
      drop();
      this.opts.log?.debug({ err: err.message, origin }, 'APNs connection failed');
    });
    s.on('goaway', drop);
    s.on('close', drop);
    s.setTimeout(IDLE_CLOSE_MS, () => s.close());
    s.unref();
    this.sessions.set(origin, s);
    return s;
  }

  private request(origin: string, headers: OutgoingHttpHeaders, body: string, signal?: AbortSignal): Promise<Response> {
    if (this.closed) return Promise.reject(new Error('APNs client closed'));
    return new Promise((resolve, reject) => {
      let req;
      try {
        req = this.session(origin).request(headers, signal ? { signal } : {});
      } catch (err) {
        reject(err as Error);
        return;
      }
      let status = 0;
      let resHeaders: IncomingHttpHeaders = {};
      let text = '';
      req.setEncoding('utf8');
      req.on('response', (h) => {
        status = Number(h[':status']);
        resHeaders = h;
      });
      req.on('data', (chunk: string) => {
        if (text.length < MAX_BODY) text += chunk;
      });
      req.on('end', () => resolve({ status, headers: resHeaders, body: text }));
      req.on('error', reject);
      req.setTimeout(this.opts.timeoutMs, () => req.destroy(new Error(`APNs request timed out after ${this.opts.timeoutMs} ms`)));
      req.end(body);
    });
  }
}

function readReason(body: string): string {
  try {
    const r = (JSON.parse(body) as { reason?: unknown }).reason;
    return typeof r === 'string' ? r : '';
  } catch {
    return '';
  }
}
