// Local stand-ins for APNs (HTTP/2 over TLS), FCM with its OAuth token endpoint, and a Web Push service, plus
// helpers to drive the push service module. Keys and certificates are made at test time.
import { createECDH, createDecipheriv, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSigned } from '../../../src/tls/certificates.ts';
import type { TestServer } from '../../helpers/server.ts';
import type { ParleyServer } from '../../../src/server.ts';
import { Jid } from '../../../src/xmpp/jid.ts';
import { xml, type Element } from '../../../src/xml/element.ts';
import type { OutboxJob } from '../../../src/storage/types.ts';
import { wakeOutbox } from '../../../src/outbox/sender.ts';

export type Recorded = { method: string; path: string; headers: IncomingHttpHeaders; body: string; raw: Buffer };
export type Reply = { status: number; body?: string; headers?: Record<string, string> };

/** A temporary directory for key files, removed when the process exits. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-push-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The mock providers' certificate. Not named "localhost": the test server helper trusts its own "localhost"
 * certificate process-wide, and OpenSSL finds issuers by subject name.
 */
export async function mockCertificate(dir: string): Promise<{ cert: string; key: string; caFile: string }> {
  const { cert, key } = await createSelfSigned(['push-mock.test']);
  const caFile = join(dir, 'mock-ca.pem');
  writeFileSync(caFile, cert);
  return { cert, key, caFile };
}

/** Scripted replies, then `fallback` for every further request. */
class Script {
  readonly requests: Recorded[] = [];
  private queue: Reply[] = [];
  fallback: Reply = { status: 200 };
  push(...r: Reply[]): void {
    this.queue.push(...r);
  }
  next(): Reply {
    return this.queue.shift() ?? this.fallback;
  }
}

export class MockApns extends Script {
  readonly server: Http2SecureServer;
  port = 0;
  constructor(tls: { cert: string; key: string }) {
    super();
    this.server = createSecureServer({ cert: tls.cert, key: tls.key });
    this.server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => { chunks.push(c); });
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        this.requests.push({ method: String(headers[':method']), path: String(headers[':path']), headers, body: raw.toString('utf8'), raw });
        const r = this.next();
        stream.respond({ ':status': r.status, 'content-type': 'application/json', ...r.headers });
        stream.end(r.body ?? '');
      });
    });
  }
  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }
  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** An HTTPS/1.1 endpoint: POST /token plays Google's OAuth token URL; every other request (FCM sends, Web Push
 * deliveries) is recorded and answered from the script. */
export class MockHttps extends Script {
  readonly server: HttpsServer;
  readonly tokenRequests: Recorded[] = [];
  tokenReplies: Reply[] = [];
  issued = 0;
  port = 0;
  constructor(tls: { cert: string; key: string }) {
    super();
    this.server = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => { chunks.push(c); });
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const rec = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: raw.toString('utf8'), raw };
        let r: Reply;
        if (req.url === '/token') {
          this.tokenRequests.push(rec);
          r = this.tokenReplies.shift() ?? { status: 200, body: JSON.stringify({ access_token: `access-${++this.issued}`, expires_in: 3599, token_type: 'Bearer' }) };
        } else {
          this.requests.push(rec);
          r = this.next();
        }
        res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers });
        res.end(r.body ?? (r.status === 200 ? JSON.stringify({ name: 'projects/p/messages/1' }) : ''));
      });
    });
  }
  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }
  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}


/** An APNs .p8-style key (PKCS#8 P-256) written to a file, with the public half for verifying. */
export function apnsKey(dir: string): { file: string; publicKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const file = join(dir, `AuthKey_${randomBytes(4).toString('hex')}.p8`);
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  return { file, publicKey };
}

export function generateRsa(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/** A Firebase service-account key file pointing its token_uri at the mock. */
export function serviceAccount(dir: string, tokenUri: string): { file: string; publicKey: KeyObject; email: string; project: string } {
  const { privateKey, publicKey } = generateRsa();
  const email = 'parley-test@example-project.iam.gserviceaccount.com';
  const project = 'example-project';
  const file = join(dir, `service-account-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify({
    type: 'service_account',
    project_id: project,
    private_key_id: 'key-1',
    private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    client_email: email,
    token_uri: tokenUri,
  }));
  return { file, publicKey, email, project };
}

/** A browser's push subscription: the keys the browser keeps, and the JSON it hands the app. */
export function browserSubscription(endpoint: string): { json: string; decrypt(body: Buffer): string } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  const uaPublic = ecdh.getPublicKey();
  return {
    json: JSON.stringify({ endpoint, expirationTime: null, keys: { p256dh: uaPublic.toString('base64url'), auth: auth.toString('base64url') } }),
    // RFC 8291 §3.3-3.4 and RFC 8188 §2: the user agent's side of aes128gcm, one record.
    decrypt(body: Buffer): string {
      const salt = body.subarray(0, 16);
      const idlen = body.readUInt8(20);
      const asPublic = body.subarray(21, 21 + idlen);
      const ciphertext = body.subarray(21 + idlen);
      const secret = ecdh.computeSecret(asPublic);
      const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
      const ikm = Buffer.from(hkdfSync('sha256', secret, auth, keyInfo, 32));
      const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
      const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
      const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
      const plain = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
      // The last record ends with the delimiter 0x02 followed by zero padding.
      let end = plain.length - 1;
      while (end >= 0 && plain[end] === 0) end--;
      if (plain[end] !== 2) throw new Error('no last-record delimiter');
      return plain.subarray(0, end).toString('utf8');
    },
  };
}

/** A port nothing listens on. */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export type Summary = { count?: number; sender?: string; body?: string };

/** The publish a XEP-0357 user's server sends: node = token, summary form, publish-options form. */
export function publishIq(id: string, node: string, options: Record<string, string>, summary: Summary = { count: 1 }): Element {
  const field = (v: string, value: string, type?: string): Element => xml('field', { var: v, type }, xml('value', null, value));
  return xml('iq', { type: 'set', id },
    xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' },
      xml('publish', { node },
        xml('item', null,
          xml('notification', { xmlns: 'urn:xmpp:push:0' },
            xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
              field('FORM_TYPE', 'urn:xmpp:push:summary', 'hidden'),
              summary.count !== undefined ? field('message-count', String(summary.count)) : undefined,
              summary.sender !== undefined ? field('last-message-sender', summary.sender) : undefined,
              summary.body !== undefined ? field('last-message-body', summary.body) : undefined)))),
      xml('publish-options', null,
        xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
          field('FORM_TYPE', 'http://jabber.org/protocol/pubsub#publish-options', 'hidden'),
          Object.entries(options).map(([k, v]) => field(k, v))))));
}

/**
 * Sends a stanza to the push service as the user's server does (router.route from the account's bare JID) and
 * resolves with the reply (same kind and id) the service routes back.
 */
export async function ask(t: TestServer, iq: Element, from: string, to = 'push.localhost'): Promise<Element> {
  const host = t.server.hosts.get('localhost');
  if (!host) throw new Error('no host');
  const id = iq.attrs.id as string;
  const fromJid = Jid.parse(from);
  iq.attrs.from = fromJid.toString();
  iq.attrs.to = to;
  return new Promise<Element>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${id}`)), 5000);
    let off = (): void => undefined;
    const take = (e: { stanza: Element }): boolean => {
      if (e.stanza.name !== iq.name || e.stanza.attrs.id !== id) return false;
      clearTimeout(timer);
      off();
      resolve(e.stanza);
      return true;
    };
    const kind = iq.name as 'iq' | 'message';
    const offs = (['bare', 'host', 'full'] as const).map((target) => host.bus.on(`${kind}/${target}`, take, { priority: 10_000 }));
    off = () => { for (const o of offs) o(); };
    void t.server.router.route(iq, fromJid, Jid.parse(to));
  });
}

/**
 * Waits until the outbox holds jobs of a kind satisfying `done`, then returns them. After `nudgeAfterMs` it also
 * wakes the kind's sender on each look, as `parley outbox retry` does: a retry that comes due while the sender is
 * in the middle of a pass can otherwise wait for the next poll (30 s), which is the sender's business, not the
 * push service's. Tests of the module's own wake-up pass Infinity.
 */
export async function waitForJobs(
  t: { server: ParleyServer }, kind: string, done: (jobs: OutboxJob[]) => boolean, opts: { nudgeAfterMs?: number } = {},
): Promise<OutboxJob[]> {
  const started = Date.now();
  const deadline = started + 10_000;
  const nudgeAt = started + (opts.nudgeAfterMs ?? 1000);
  for (;;) {
    const jobs = await t.server.storage.outbox.list({ kind, limit: 100 });
    if (done(jobs)) return jobs;
    if (Date.now() > deadline) throw new Error(`outbox ${kind} never got there: ${JSON.stringify(jobs.map((j) => ({ state: j.state, attempts: j.attempts, lastError: j.lastError })))}`);
    if (Date.now() > nudgeAt) wakeOutbox(kind);
    await new Promise((r) => setTimeout(r, 20));
  }
}
