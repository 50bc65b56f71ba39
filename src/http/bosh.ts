// XEP-0124: Bidirectional-streams Over Synchronous HTTP (BOSH) <https://xmpp.org/extensions/xep-0124.html> 1.11.2
// XEP-0206: XMPP Over BOSH <https://xmpp.org/extensions/xep-0206.html> 1.4
// The /bosh endpoint on both HTTP listeners: POSTed <body/> wrappers are parsed here and handed to their session
// (src/c2s/transports/bosh.ts), session creation requests start a client session, and browsers get CORS headers.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { ParleyServer } from '../server.ts';
import { ClientSession } from '../c2s/session.ts';
import { BOSH_VERSION, BoshTransport, parseRid, parseSeconds, type BoshExchange, type BoshOwner } from '../c2s/transports/bosh.ts';
import { parseBody, terminateBody, type BoshBody, type BoshCondition } from '../c2s/transports/bosh-body.ts';
import { escapeText, serialize } from '../xml/element.ts';
import { StreamError } from '../core/errors.ts';
import { ConnectionTicket } from '../c2s/limits/connection-guard.ts';
import type { ParserLimits } from '../xml/parser.ts';
import { Jid } from '../xmpp/jid.ts';
import type { BoshOptions } from './bosh-options.ts';
import { HttpError, readBody } from './respond.ts';
import type { HttpRequest, HttpRoutes } from './routes.ts';

export const BOSH_PATH = '/bosh';
const DEFAULT_CONTENT_TYPE = 'text/xml; charset=utf-8';
/** Content types a client may ask for with 'content' (§7.1); others could let a page render chat text as HTML. */
const CONTENT_TYPES = new Set(['text/xml', 'application/xml', 'text/plain']);

/** Mounts POST and OPTIONS at /bosh; returns what stops it (open sessions end with system-shutdown). */
export function mountBosh(server: ParleyServer, routes: HttpRoutes): (() => void) | undefined {
  const opts = server.config.http.bosh;
  if (!opts.enabled) return undefined;
  const service = new BoshService(server, opts);
  const offPost = routes.route('POST', BOSH_PATH, (r) => service.post(r));
  const offOptions = routes.route('OPTIONS', BOSH_PATH, (r) => service.preflight(r));
  return () => {
    offPost();
    offOptions();
    service.stop();
  };
}

class BoshService implements BoshOwner {
  private readonly server: ParleyServer;
  private readonly opts: BoshOptions;
  private readonly log: Logger;
  private readonly sessions = new Map<string, BoshTransport>();
  /** Each session holds a connection ticket (limits.connections), as a TCP connection does. */
  private readonly tickets = new Map<BoshTransport, ConnectionTicket>();
  private readonly preauth: ParserLimits;
  /** SASL never reaches STARTTLS here (canStartTls is false), but the session's options carry a context. */
  private readonly secureContext: SecureContext = createSecureContext();
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;

  constructor(server: ParleyServer, opts: BoshOptions) {
    this.server = server;
    this.opts = opts;
    this.log = server.log.child({ component: 'bosh' });
    const l = server.config.limits;
    this.preauth = { maxStanzaBytes: l.stanza_size_preauth, maxDepth: l.max_depth, maxAttrs: l.max_attrs };
    this.anyOrigin = opts.cors_origins.includes('*');
    this.origins = new Set(opts.cors_origins);
  }

  ended(t: BoshTransport): void {
    if (this.sessions.get(t.sid) === t) this.sessions.delete(t.sid);
    const ticket = this.tickets.get(t);
    this.tickets.delete(t);
    if (ticket) this.server.connectionGuard.release(ticket);
    this.log.debug({ sid: t.sid }, 'BOSH session ended');
  }

  stop(): void {
    for (const t of [...this.sessions.values()]) t.shutdown();
  }

  async post(r: HttpRequest): Promise<void> {
    const cors = this.cors(r);
    const data = await readBody(r.req, this.server.config.http.max_body);
    const parsed = parseBody(data, (a) => (a.sid !== undefined ? this.sessions.get(a.sid)?.limits : undefined) ?? this.preauth, this.preauth);
    if (!parsed.ok) {
      const sid = parsed.attrs?.sid;
      const t = sid !== undefined ? this.sessions.get(sid) : undefined;
      this.log.debug({ ip: r.remoteAddress, err: parsed.error.message }, 'unreadable BOSH request');
      if (t && this.sameSecurity(t, r)) t.inputError(parsed.error, new HttpExchange(r.res, cors, t.contentType));
      else if (!t) new HttpExchange(r.res, cors).respond(terminateBody('bad-request'));
      return;
    }
    const sid = parsed.body.attrs.sid;
    if (sid === undefined) return this.create(parsed.body, r, cors);
    const t = this.sessions.get(sid);
    if (!t) {
      new HttpExchange(r.res, cors).respond(terminateBody('item-not-found'));
      return;
    }
    if (!this.sameSecurity(t, r)) return;
    t.request(parsed.body, new HttpExchange(r.res, cors, t.contentType));
  }

  /**
   * §19.1: every request of a session created over HTTPS must come over HTTPS; one that does not is dropped
   * without an answer, and without ending the session (which would hand anyone a way to end it).
   */
  private sameSecurity(t: BoshTransport, r: HttpRequest): boolean {
    if (!t.secure || r.secure) return true;
    r.req.socket.destroy();
    return false;
  }

  /** §7: the session creation request. */
  private create(body: BoshBody, r: HttpRequest, cors: Record<string, string>): void {
    const a = body.attrs;
    const opts = this.opts;
    const refuse = (condition: BoshCondition, payload = ''): void =>
      new HttpExchange(r.res, cors).respond(terminateBody(condition, {}, payload));
    const rid = parseRid(a.rid);
    if (rid === undefined) return refuse('bad-request');
    if (!r.secure && !opts.plain_http) {
      // §17.2 see-other-uri: this endpoint only serves HTTPS; send the client there.
      const https = this.server.httpUrls.https;
      return https ? refuse('see-other-uri', `<uri>${escapeText(https + BOSH_PATH)}</uri>`) : refuse('policy-violation');
    }
    if (a.to === undefined || a.to === '') return refuse('improper-addressing');
    const domain = Jid.tryParse(a.to);
    const host = domain && domain.local === '' && domain.resource === '' ? this.server.hosts.get(domain.domain) : undefined;
    if (!host) return refuse('host-unknown');
    const wait = a.wait === undefined ? opts.max_wait : parseSeconds(a.wait);
    const hold = a.hold === undefined ? 1 : parseSeconds(a.hold);
    if (wait === undefined || hold === undefined) return refuse('bad-request');
    if (this.sessions.size >= opts.max_sessions) {
      this.log.warn({ ip: r.remoteAddress, max: opts.max_sessions }, 'BOSH session limit reached');
      return refuse('policy-violation');
    }
    // The connection caps of port 5222 apply (limits.connections); a refusal is the stream error TCP gets.
    const ticket = this.server.connectionGuard.admit(r.remoteAddress);
    if (!(ticket instanceof ConnectionTicket)) {
      this.log.info({ ip: r.remoteAddress, condition: ticket.condition }, 'BOSH session refused: too many connections');
      new HttpExchange(r.res, cors).respond(terminateBody('remote-stream-error', {}, serialize(new StreamError(ticket.condition, ticket.text).toElement()), true));
      return;
    }
    const negotiatedHold = Math.min(hold, opts.max_hold);
    const sid = randomBytes(18).toString('base64url');
    const t = new BoshTransport({
      sid,
      secure: r.secure,
      remoteAddress: r.remoteAddress,
      wait: Math.min(wait, opts.max_wait),
      hold: negotiatedHold,
      // §7.2 recommends hold + 1: one request can always be sent while the others are held.
      requests: Math.max(opts.max_requests, negotiatedHold + 1),
      inactivity: opts.inactivity,
      polling: opts.polling,
      maxPause: opts.max_pause,
      ver: lowerVersion(a.ver, BOSH_VERSION),
      limits: this.preauth,
      owner: this,
      contentType: contentType(a.content),
    });
    this.sessions.set(sid, t);
    this.tickets.set(t, ticket);
    this.log.debug({ sid, ip: r.remoteAddress, secure: r.secure }, 'BOSH session created');
    new ClientSession(t, this.server, { starttls: 'off', secureContext: this.secureContext, guard: this.server.connectionGuard, ticket });
    t.start(body, rid, new HttpExchange(r.res, cors, t.contentType));
  }

  /** The CORS preflight of a browser's POST with Content-Type text/xml. */
  preflight(r: HttpRequest): void {
    const headers: Record<string, string | number> = {
      ...this.cors(r),
      'Access-Control-Allow-Methods': 'POST, OPTIONS',
      'Access-Control-Allow-Headers': allowedHeaders(r.req.headers['access-control-request-headers']),
      'Access-Control-Max-Age': 86400,
      'Content-Length': 0,
    };
    r.res.writeHead(204, headers);
    r.res.end();
  }

  /** CORS response headers for this request's Origin; a browser origin that is not allowed gets 403. */
  private cors(r: HttpRequest): Record<string, string> {
    if (this.anyOrigin) return { 'Access-Control-Allow-Origin': '*' };
    const origin = r.req.headers.origin;
    // Requests without an Origin do not come from a web page of another site (native clients).
    if (origin === undefined) return {};
    const o = origin.replace(/\/$/, '').toLowerCase();
    if (this.origins.has(o) || o === ownOrigin(r.req, r.secure)) return { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
    r.req.resume();
    throw new HttpError(403, 'Origin not allowed');
  }
}

/** One HTTP request, answered once with status 200 (BOSH errors are terminate bodies, §17.2). */
class HttpExchange implements BoshExchange {
  private readonly res: ServerResponse;
  private readonly headers: Record<string, string>;
  private readonly type: string;

  constructor(res: ServerResponse, headers: Record<string, string>, type = DEFAULT_CONTENT_TYPE) {
    this.res = res;
    this.headers = headers;
    this.type = type;
  }

  respond(body: string): void {
    const res = this.res;
    if (res.headersSent || res.destroyed) return;
    const data = Buffer.from(body, 'utf8');
    res.writeHead(200, {
      ...this.headers,
      'Content-Type': this.type,
      'Content-Length': data.length,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(data);
  }
}

/** The lower of two "major.minor" versions (§7.2 'ver'); a missing or malformed client version means ours. */
function lowerVersion(client: string | undefined, ours: string): string {
  const m = client === undefined ? null : /^(\d{1,6})\.(\d{1,6})$/.exec(client);
  if (!m) return ours;
  const [maj, min] = ours.split('.').map(Number) as [number, number];
  const cmaj = Number(m[1]);
  const cmin = Number(m[2]);
  return cmaj < maj || (cmaj === maj && cmin < min) ? `${cmaj}.${cmin}` : ours;
}

function contentType(requested: string | undefined): string {
  if (requested === undefined) return DEFAULT_CONTENT_TYPE;
  const base = requested.split(';')[0]?.trim().toLowerCase() ?? '';
  return CONTENT_TYPES.has(base) ? `${base}; charset=utf-8` : DEFAULT_CONTENT_TYPE;
}

/** Content-Type plus the header names the browser asked for (sent without credentials, so harmless). */
function allowedHeaders(requested: string | undefined): string {
  const names = new Set(['Content-Type']);
  for (const h of requested?.split(',') ?? []) {
    const name = h.trim();
    if (/^[A-Za-z0-9-]{1,64}$/.test(name)) names.add(name);
  }
  return [...names].join(', ');
}

function ownOrigin(req: IncomingMessage, secure: boolean): string | undefined {
  const host = req.headers.host;
  return host === undefined ? undefined : `${secure ? 'https' : 'http'}://${host.toLowerCase()}`;
}
