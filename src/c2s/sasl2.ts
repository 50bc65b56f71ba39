// XEP-0388: Extensible SASL Profile <https://xmpp.org/extensions/xep-0388.html> 0.4.0 — SASL2 on a client stream:
// the same mechanisms and failure accounting as RFC 6120 SASL, a user agent per session, inline Bind2 (XEP-0386),
// stream resumption (XEP-0198) and FAST tokens (XEP-0484), with no stream restart after success.
import { Element, xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { SaslFailure } from '../core/errors.ts';
import type { Host, ServerServices } from '../core/host.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import { Jid } from '../xmpp/jid.ts';
import { prepareLocalpart } from '../xmpp/precis.ts';
import { FAST_MECHANISMS, FAST_NS, FAST_TOKEN_TTL_MS, FastTokens, type FastMechanism } from '../auth/fast-tokens.ts';
import { decodeSaslPayload, encodeSaslPayload } from './sasl/base64.ts';
import { createHtMechanism, isHtMechanismName } from './sasl/ht.ts';
import { SaslNegotiation, type SaslOutcome } from './sasl-negotiation.ts';
import { BIND2_NS, bind2Feature, bind2Requests, bind2Resource } from './bind2.ts';
import { admitResource } from './limits/session-cap.ts';
import { LoginBackoff } from '../auth/login-failures.ts';
import type { Transport } from './transports/transport.ts';

export const SASL2_NS = 'urn:xmpp:sasl:2';
const SM_NS = 'urn:xmpp:sm:3';
const MAX_FAILURES = 5;

/** The client software, as <user-agent/> named it (§2.3); its id keys FAST tokens and the Bind2 resource. */
export type UserAgent = { id: string | undefined; software: string | undefined; device: string | undefined };
export const USER_AGENT = new SessionKey<UserAgent>('sasl2.user-agent');

/** What SASL2 needs from the stream it runs on (the ClientSession implements it). */
export interface Sasl2Stream {
  readonly session: C2sSession;
  /** Authentication succeeded: limits of an authenticated stream apply; there is no restart (§2.5). */
  sasl2Authenticated(user: string, mechanism: string): void;
  /** Registers the session under a full JID (Bind2). */
  sasl2Bind(jid: Jid): void;
  /**
   * Holds every write until sasl2Release: nonzas sent meanwhile are collected (sasl2TakeNonzas) to go inside
   * <success/> or <bound/>. If another session adopts this connection (inline resumption), `onResumed` turns
   * its preamble into what is written first.
   */
  sasl2Hold(onResumed: (jid: Jid, preamble: Element[]) => Element[]): void;
  sasl2TakeNonzas(): Element[];
  /** Writes `first`, then what was held. */
  sasl2Release(first: Element): void;
  /** After <success/> with Bind2: session/bound runs, as after an RFC 6120 bind. */
  sasl2Bound(): Promise<void>;
  /** After <success/> without Bind2 or resumption: the post-authentication features (§2.5). */
  sasl2SendFeatures(): Promise<void>;
}

type Request = {
  agent: UserAgent | undefined;
  bind: Element | undefined;
  resume: Element | undefined;
  /** <request-token/>'s mechanism, when the client wants a FAST token. */
  requestToken: string | undefined;
  /** The client authenticates with a FAST token (<fast/>), and whether it wants it invalidated. */
  fast: { invalidate: boolean } | undefined;
};

function localpartOf(username: string): string | undefined {
  try {
    return prepareLocalpart(username);
  } catch {
    return undefined;
  }
}

/** Which FAST mechanisms a host can issue here: token login needs TLS and an account-based backend. */
function fastOffered(host: Host, transport: Transport): readonly FastMechanism[] {
  if (!transport.secure) return [];
  return host.auth.offered(true, false).some((m) => m !== 'ANONYMOUS') ? FAST_MECHANISMS : [];
}

export class Sasl2Negotiation {
  private readonly stream: Sasl2Stream;
  private readonly host: Host;
  private readonly transport: Transport;
  private readonly server: ServerServices;
  /** The RFC 6120 negotiation drives password mechanisms: same mechanisms, failures and brute-force accounting. */
  private readonly sasl: SaslNegotiation;
  private readonly tokens: FastTokens;
  private request: Request | undefined;
  private htFailures = 0;

  constructor(stream: Sasl2Stream, host: Host, transport: Transport, server: ServerServices) {
    this.stream = stream;
    this.host = host;
    this.transport = transport;
    this.server = server;
    this.sasl = new SaslNegotiation(stream.session, host, transport, server);
    this.tokens = host.auth.fastTokens ?? new FastTokens(server.storage.kv, host.name);
  }

  /** <authentication/> (§2.1): the mechanisms, and what can be done inline with them. */
  static async feature(host: Host, session: C2sSession, transport: Transport): Promise<Element | undefined> {
    if (!transport.secure) return undefined;
    const mechs = SaslNegotiation.offered(host, transport);
    if (mechs.length === 0) return undefined;
    const post = await host.bus.fold('c2s/features', { host, session }, []);
    const inline = xml('inline', null, bind2Feature(host, post));
    if (post.some((f) => f.attrs.xmlns === SM_NS)) inline.append(xml('sm', { xmlns: SM_NS }));
    const fast = fastOffered(host, transport);
    if (fast.length > 0) inline.append(xml('fast', { xmlns: FAST_NS }, fast.map((m) => xml('mechanism', null, m))));
    return xml('authentication', { xmlns: SASL2_NS }, mechs.map((m) => xml('mechanism', null, m)), inline);
  }

  /** Handles <authenticate/>, <response/> or <abort/>; true when the client failed too often (close the stream). */
  async handle(el: Element): Promise<boolean> {
    switch (el.name) {
      case 'authenticate': {
        const req = parseRequest(el);
        this.request = req;
        const mechanism = el.attrs.mechanism ?? '';
        const ir = el.getChild('initial-response');
        if (req.fast && isHtMechanismName(mechanism) && (fastOffered(this.host, this.transport) as string[]).includes(mechanism)) {
          return this.tokenLogin(mechanism, ir?.text() ?? '');
        }
        // RFC 6120's <auth/> tells an empty initial response ('=') from none (no text).
        const text = ir === undefined ? '' : ir.text() === '' ? '=' : ir.text();
        return this.outcome(await this.sasl.handle(xml('auth', { xmlns: NS.SASL, mechanism }, text)));
      }
      case 'response':
        return this.outcome(await this.sasl.handle(xml('response', { xmlns: NS.SASL }, el.text())));
      case 'abort':
        this.request = undefined;
        return this.outcome(await this.sasl.handle(xml('abort', { xmlns: NS.SASL })));
      default:
        return this.outcome(await this.sasl.handle(xml(el.name, { xmlns: NS.SASL })));
    }
  }

  /** Translates an RFC 6120 outcome into SASL2 (§2.4-2.6). */
  private async outcome(o: SaslOutcome): Promise<boolean> {
    const reply = o.reply;
    if (o.username !== undefined && reply) {
      const data = reply.text();
      await this.succeed(o.username, o.mechanism ?? '', data === '' ? undefined : data, undefined);
      return false;
    }
    if (reply?.name === 'challenge') this.stream.session.sendRaw(xml('challenge', { xmlns: SASL2_NS }, reply.text()));
    else if (reply) this.stream.session.sendRaw(toSasl2Failure(reply));
    if (reply?.name === 'failure') this.request = undefined;
    return o.tooManyFailures === true;
  }

  /** XEP-0484 §4.2: authentication with a token, held to the same failure and brute-force rules as passwords. */
  private async tokenLogin(mechanism: 'HT-SHA-256-NONE', text: string): Promise<boolean> {
    const failures = this.host.auth.failures;
    const ip = this.stream.session.remoteAddress;
    const agentId = this.request?.agent?.id;
    let used: { current: boolean; expiry: number } | undefined;
    let account: string | undefined;
    try {
      if (failures.isBanned(ip)) throw new SaslFailure('not-authorized', 'Too many failed logins from your address; try again later');
      if (text.length > this.server.config.limits.sasl_payload) throw new SaslFailure('malformed-request', 'SASL payload too large');
      const mech = createHtMechanism(mechanism, {
        findKey: async (username, check) => {
          const local = localpartOf(username);
          if (local === undefined || agentId === undefined) return undefined;
          account = local;
          failures.checkBackoff(ip, local);
          const found = await this.tokens.verify(local, agentId, mechanism, check);
          used = found;
          return found?.key;
        },
      });
      const result = await mech.step(text === '' ? undefined : decodeSaslPayload(text));
      if (result.kind !== 'success') throw new SaslFailure('malformed-request');
      const local = localpartOf(result.username) as string;
      if (!this.server.access.allowed('c2s', { jid: Jid.of(local, this.host.name), ip, host: this.host.name })) {
        throw new SaslFailure('not-authorized', 'Login not allowed by service policy');
      }
      failures.recordSuccess(ip, local);
      await this.succeed(local, mechanism, result.data ? encodeSaslPayload(result.data) : undefined, used);
      return false;
    } catch (caught) {
      let err = caught;
      if (!(err instanceof SaslFailure)) {
        this.host.log.error({ err }, 'FAST token check failed');
        err = new SaslFailure('temporary-auth-failure');
      }
      const failure = err as SaslFailure;
      this.htFailures++;
      if (failure.condition === 'not-authorized' && !(failure instanceof LoginBackoff) && failures.recordFailure(ip, account)) {
        this.host.log.warn({ ip }, 'address refused after repeated failed logins');
      }
      this.server.metrics.authFailures.inc(failure.condition);
      this.host.log.info({ conn: this.stream.session.id, ip, condition: failure.condition }, 'token authentication failed');
      this.request = undefined;
      this.stream.session.sendRaw(toSasl2Failure(failure.toElement()));
      return this.htFailures >= MAX_FAILURES;
    }
  }

  /** §2.6 <success/>: the identity, FAST token, then inline resumption or Bind2, all before anything else is written. */
  private async succeed(user: string, mechanism: string, additionalData: string | undefined,
    token: { current: boolean; expiry: number } | undefined): Promise<void> {
    const req = this.request ?? emptyRequest();
    this.request = undefined;
    const session = this.stream.session;
    if (req.agent) session.set(USER_AGENT, req.agent);
    this.stream.sasl2Authenticated(user, mechanism);
    this.host.log.info({ conn: session.id, user: `${user}@${this.host.name}`, mechanism, agent: req.agent?.software }, 'authenticated (SASL2)');

    const success = xml('success', { xmlns: SASL2_NS }, additionalData !== undefined ? xml('additional-data', null, additionalData) : undefined);
    const aid = xml('authorization-identifier', null, Jid.of(user, this.host.name).toString());
    success.append(aid);
    success.append(await this.fastToken(user, req, token));

    this.stream.sasl2Hold((jid, preamble) => {
      // Resumed: the old session now owns the connection, and its <resumed/> goes inside our <success/>.
      aid.children = [jid.toString()];
      const rest: Element[] = [];
      for (const el of preamble) {
        if (el.is('resumed', SM_NS) && !success.getChild('resumed', SM_NS)) success.append(el);
        else rest.push(el);
      }
      return [success, ...rest];
    });

    if (req.resume) {
      await this.host.bus.run('c2s/inline', { host: this.host, session, element: req.resume, context: 'sasl2' });
      if (!session.active) return; // adopted by the resumed session, which wrote <success/>
      success.append(...this.stream.sasl2TakeNonzas());
    }

    let bound = false;
    const sessions = this.server.sessions;
    const jid = req.bind && bind2Resource(user, this.host.name, req.bind.getChildText('tag'), req.agent?.id, (full) => {
      const s = sessions.get(full);
      return s ? { agentId: s.get(USER_AGENT)?.id } : undefined;
    });
    // At limits.max_sessions_per_account with the 'refuse' policy, no inline bind: the client gets the stream
    // features, and an RFC 6120 bind then says why (resource-constraint).
    if (req.bind && jid && !admitResource(this.server, jid)) {
      this.stream.sasl2Bind(jid);
      bound = true;
      aid.children = [jid.toString()];
      const boundEl = xml('bound', { xmlns: BIND2_NS });
      for (const element of bind2Requests(req.bind)) {
        await this.host.bus.run('c2s/inline', { host: this.host, session, element, context: 'bind2' });
        boundEl.append(...this.stream.sasl2TakeNonzas());
      }
      success.append(boundEl);
    }
    this.stream.sasl2Release(success);
    if (bound) await this.stream.sasl2Bound();
    else await this.stream.sasl2SendFeatures();
  }

  /**
   * XEP-0484 §4: a token when the client asks for one, a fresh one when it logged in with the previous token or
   * one past half its life (rotation), none after <fast invalidate='true'/>.
   */
  private async fastToken(user: string, req: Request, used: { current: boolean; expiry: number } | undefined): Promise<Element | undefined> {
    const agentId = req.agent?.id;
    if (agentId === undefined) return undefined;
    if (used && req.fast?.invalidate) {
      await this.tokens.revoke(user, agentId);
      return undefined;
    }
    let mechanism: FastMechanism | undefined;
    if (req.requestToken !== undefined) {
      if (!(fastOffered(this.host, this.transport) as string[]).includes(req.requestToken)) return undefined;
      mechanism = req.requestToken as FastMechanism;
    } else if (used && (!used.current || used.expiry - Date.now() < FAST_TOKEN_TTL_MS / 2)) {
      mechanism = 'HT-SHA-256-NONE';
    }
    if (mechanism === undefined) return undefined;
    const issued = await this.tokens.issue(user, agentId, mechanism);
    return xml('token', { xmlns: FAST_NS, expiry: issued.expiry.toISOString(), token: issued.token });
  }
}

function emptyRequest(): Request {
  return { agent: undefined, bind: undefined, resume: undefined, requestToken: undefined, fast: undefined };
}

function parseRequest(el: Element): Request {
  const req = emptyRequest();
  for (const c of el.getElements()) {
    const ns = c.attrs.xmlns;
    if (c.name === 'user-agent' && (ns === undefined || ns === SASL2_NS)) {
      const id = c.attrs.id?.trim();
      req.agent = { id: id ? id.slice(0, 128) : undefined, software: c.getChildText('software')?.slice(0, 256), device: c.getChildText('device')?.slice(0, 256) };
    } else if (c.is('bind', BIND2_NS)) req.bind = c;
    else if (c.is('resume', SM_NS)) req.resume = c;
    else if (c.is('request-token', FAST_NS)) req.requestToken = c.attrs.mechanism ?? '';
    else if (c.is('fast', FAST_NS)) req.fast = { invalidate: c.attrs.invalidate === 'true' || c.attrs.invalidate === '1' };
  }
  return req;
}

/** §2.6: <failure/> in the SASL2 namespace, the condition still in RFC 6120's. */
function toSasl2Failure(rfc6120: Element): Element {
  const condition = rfc6120.getElements().find((c) => c.name !== 'text');
  const text = rfc6120.getChildText('text');
  return xml('failure', { xmlns: SASL2_NS },
    xml(condition?.name ?? 'not-authorized', { xmlns: NS.SASL }),
    text !== undefined ? xml('text', null, text) : undefined);
}
