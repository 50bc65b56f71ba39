// Firebase Cloud Messaging HTTP v1 <https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send>,
// authorised by an OAuth 2.0 access token obtained with a service account's signed JWT (RFC 7523 §2.1).
import type { Agent } from 'node:https';
import type { KeyObject } from 'node:crypto';
import { PermanentSendError } from '../../outbox/sender.ts';
import { createAgent, httpCall } from './http.ts';
import { loadPrivateKey, signJwt } from './jwt.ts';
import { TokenGoneError, alertText, type PushJob } from './types.ts';

export const FCM_ENDPOINT = 'https://fcm.googleapis.com';
export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// Renew the access token this long before Google says it expires, so no request races its expiry.
const EXPIRY_MARGIN_MS = 5 * 60_000;

/** The fields of a Google service-account key file that the FCM client uses. */
export type ServiceAccount = {
  client_email: string;
  private_key: string;
  project_id: string;
  private_key_id?: string | undefined;
  token_uri?: string | undefined;
};

export function parseServiceAccount(json: string, where: string): ServiceAccount {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(json) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${where}: not JSON (${(err as Error).message})`);
  }
  const str = (k: string): string | undefined => (typeof v[k] === 'string' && v[k] !== '' ? v[k] : undefined);
  const missing = ['client_email', 'private_key', 'project_id'].filter((k) => str(k) === undefined);
  if (missing.length > 0) throw new Error(`${where}: missing ${missing.join(', ')}`);
  return {
    client_email: str('client_email') as string,
    private_key: str('private_key') as string,
    project_id: str('project_id') as string,
    private_key_id: str('private_key_id'),
    token_uri: str('token_uri'),
  };
}

export type FcmOptions = {
  account: ServiceAccount;
  endpoint: string;
  tokenUrl: string;
  ca?: string | undefined;
  timeoutMs: number;
  text: string;
  now?: () => number;
};

type FcmErrorBody = { error?: { code?: number; status?: string; message?: string; details?: Array<{ errorCode?: unknown }> } };

export class FcmClient {
  private readonly opts: FcmOptions;
  private readonly key: KeyObject;
  private readonly agent: Agent;
  private readonly now: () => number;
  private access: { token: string; expiresAt: number } | undefined;
  private exchanging: Promise<string> | undefined;

  constructor(opts: FcmOptions) {
    this.opts = opts;
    this.key = loadPrivateKey(opts.account.private_key, 'RS256', 'fcm service account private_key');
    this.agent = createAgent(opts.ca);
    this.now = opts.now ?? Date.now;
  }

  /** A cached access token, or one fresh from the token URL (concurrent sends share one exchange). */
  accessToken(): Promise<string> {
    if (this.access && this.now() < this.access.expiresAt) return Promise.resolve(this.access.token);
    this.exchanging ??= this.exchange().finally(() => {
      this.exchanging = undefined;
    });
    return this.exchanging;
  }

  private async exchange(): Promise<string> {
    const { account, tokenUrl } = this.opts;
    const iat = Math.floor(this.now() / 1000);
    const header: Record<string, string> = account.private_key_id ? { kid: account.private_key_id } : {};
    const assertion = signJwt('RS256', this.key, header, { iss: account.client_email, scope: SCOPE, aud: tokenUrl, iat, exp: iat + 3600 });
    const res = await httpCall(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
      agent: this.agent,
      timeoutMs: this.opts.timeoutMs,
    });
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      body = JSON.parse(res.body) as typeof body;
    } catch {
      // reported below with the status
    }
    if (res.status !== 200 || typeof body.access_token !== 'string') {
      const why = typeof body.error === 'string' ? ` ${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}` : '';
      throw new Error(`FCM token exchange failed: HTTP ${res.status}${why}`);
    }
    const lifetimeMs = (typeof body.expires_in === 'number' ? body.expires_in : 3600) * 1000;
    this.access = { token: body.access_token, expiresAt: this.now() + Math.max(0, lifetimeMs - EXPIRY_MARGIN_MS) };
    return body.access_token;
  }

  async send(job: PushJob, signal?: AbortSignal): Promise<void> {
    const now = this.now();
    if (job.expiresAt <= now) throw new PermanentSendError('FCM: the notification expired before it could be sent');
    const token = await this.accessToken();
    const url = `${this.opts.endpoint}/v1/projects/${encodeURIComponent(this.opts.account.project_id)}/messages:send`;
    const res = await httpCall(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ message: this.message(job, now) }),
      agent: this.agent,
      timeoutMs: this.opts.timeoutMs,
      signal,
    });
    if (res.status === 200) return;
    let err: FcmErrorBody['error'] = {};
    try {
      err = (JSON.parse(res.body) as FcmErrorBody).error ?? {};
    } catch {
      // an error without a JSON body is judged by its status alone
    }
    const code = err.details?.map((d) => d.errorCode).find((c): c is string => typeof c === 'string');
    const what = `FCM ${res.status} ${code ?? err.status ?? ''}${err.message ? `: ${err.message}` : ''}`.trim();
    if (code === 'UNREGISTERED' || (code === undefined && err.status === 'NOT_FOUND')) throw new TokenGoneError(what);
    if (res.status === 401) {
      this.access = undefined;
      throw new Error(what);
    }
    if (res.status === 429 || res.status >= 500) throw new Error(what);
    throw new PermanentSendError(what);
  }

  /** A notification message with data for alerts; a data-only message for background and VoIP pushes. */
  message(job: PushJob, now: number): Record<string, unknown> {
    const data: Record<string, string> = { count: String(job.count) };
    if (job.sender !== undefined) data.sender = job.sender;
    if (job.body !== undefined) data.body = job.body;
    const alert = job.pushType === 'alert';
    const ttl = Math.max(0, Math.floor((job.expiresAt - now) / 1000));
    const android: Record<string, unknown> = { priority: job.priority === 'high' ? 'HIGH' : 'NORMAL', ttl: `${ttl}s` };
    if (job.collapseId !== undefined) android.collapse_key = job.collapseId;
    const message: Record<string, unknown> = { token: job.token, data, android };
    if (alert) {
      message.notification = alertText(job, this.opts.text);
      android.notification = { notification_count: job.count };
    }
    // The same push reaching an iOS app through FCM.
    message.apns = {
      headers: { 'apns-priority': alert && job.priority === 'high' ? '10' : '5', 'apns-push-type': alert ? 'alert' : 'background' },
      payload: { aps: alert ? { badge: job.count, sound: 'default' } : { 'content-available': 1 } },
    };
    return message;
  }

  close(): void {
    this.agent.destroy();
  }
}
