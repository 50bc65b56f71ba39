// The client stream state machine (RFC 6120 §4-§7), the same above every transport:
// connected -> (TLS) -> authenticated -> bound -> closed. It owns stream errors and closing.
import { randomBytes } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { Element, openTag, serialize, xml, type Attrs } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { Jid } from '../xmpp/jid.ts';
import { StreamError, SaslFailure } from '../core/errors.ts';
import type { Host, ServerServices } from '../core/host.ts';
import type { C2sSession, SessionKey, StanzaTracker } from '../core/session.ts';
import type { StarttlsPolicy } from '../config/schema.ts';
import type { z } from 'zod';
import { isStanza } from '../xmpp/stanza.ts';
import type { Transport, TransportHandler } from './transports/transport.ts';
import { SaslNegotiation } from './sasl-negotiation.ts';
import { bindResource } from './bind.ts';
import { SASL2_NS, Sasl2Negotiation, type Sasl2Stream } from './sasl2.ts';
import type { ConnectionGuard, ConnectionTicket } from './limits/connection-guard.ts';
import { admitResource } from './limits/session-cap.ts';
import { StalledOutput, type StallOwner } from './limits/stalled-output.ts';
import { TokenBucket } from './limits/token-bucket.ts';
import { errorReply } from '../xmpp/stanza.ts';

export type C2sOptions = {
  starttls: z.infer<typeof StarttlsPolicy>;
  secureContext: SecureContext;
  /** Per-address connection caps: told when this connection authenticates (src/c2s/limits/connection-guard.ts). */
  guard?: ConnectionGuard;
  ticket?: ConnectionTicket;
};


/** Handles what an abandoned connection still reports (a resumed session left it): nothing. */
const ABANDONED: TransportHandler = {
  streamStart: () => undefined,
  element: () => undefined,
  streamEnd: () => undefined,
  error: () => undefined,
  closed: () => undefined,
};

export class ClientSession implements C2sSession, TransportHandler, Sasl2Stream, StallOwner {
  readonly id = randomBytes(9).toString('base64url');
  readonly startedAt = Date.now();
  host: Host | undefined;
  jid: Jid | undefined;
  available = false;
  priority = 0;
  presence: Element | undefined;
  rosterRequested = false;
  /** Authenticated localpart, set at SASL success. */
  user: string | undefined;
  /** Stream management, when a module enabled it (see StanzaTracker). */
  tracker: StanzaTracker | undefined;

  // The connection and its listener's options change when another connection resumes this session.
  private conn: Transport;
  private readonly server: ServerServices;
  private options: C2sOptions;
  private readonly logXml: boolean;
  private headerSent = false;
  private ended = false;
  /** Ended by a dropped connection, kept for resumption: sent stanzas still reach the tracker. */
  private isDetached = false;
  private sasl: SaslNegotiation | undefined;
  private sasl2: Sasl2Negotiation | undefined;
  /** SASL2 success being built: writes wait, nonzas are collected for <success/> (see sasl2Hold). */
  private held: { nonzas: Element[]; writes: string[]; onResumed: (jid: Jid, preamble: Element[]) => Element[] } | undefined;
  private negotiationTimer: NodeJS.Timeout | undefined;
  private state: Map<string, unknown> | undefined;
  /** Stanzas are processed one at a time, in order (RFC 6120 §10.1). */
  private readonly inbox: Element[] = [];
  private draining = false;
  private cleaned = false;
  /** A stream header was received on this connection; the first one of a direct-TLS connection is being answered. */
  private anyStream = false;
  private opening = false;
  /** Stanzas per second after authentication (limits.stanza_rate); undefined before, or when off. */
  private stanzaBucket: TokenBucket | undefined;
  /** Output waiting for a client that does not read (limits.send_queue). */
  private stall: StalledOutput | undefined;

  constructor(transport: Transport, server: ServerServices, options: C2sOptions) {
    this.conn = transport;
    this.server = server;
    this.options = options;
    this.logXml = server.config.log.xml;
    // The session is the transport's handler itself: no closures per connection.
    transport.setHandler(this);
    this.negotiationTimer = setTimeout(() => {
      if (!this.jid) this.streamError(new StreamError('connection-timeout', 'Negotiation took too long'));
    }, server.config.limits.negotiation_timeout * 1000);
    this.negotiationTimer.unref();
    this.log.debug({ transport: transport.kind, ip: transport.remoteAddress }, 'connection opened');
  }

  get transport(): string {
    return this.conn.kind;
  }
  get secure(): boolean {
    return this.conn.secure;
  }
  get remoteAddress(): string {
    return this.conn.remoteAddress;
  }
  get lastActivity(): number {
    return this.conn.lastActivity;
  }
  get active(): boolean {
    return !this.ended || this.isDetached;
  }
  get detached(): boolean {
    return this.isDetached;
  }
  get authenticated(): boolean {
    return this.user !== undefined;
  }

  /** A child logger made on demand: idle sessions keep none. */
  private get log(): Logger {
    return this.server.log.child({ conn: this.id });
  }

  get<T>(key: SessionKey<T>): T | undefined {
    return this.state?.get(key.name) as T | undefined;
  }
  set<T>(key: SessionKey<T>, value: T | undefined): void {
    if (value === undefined) this.state?.delete(key.name);
    else (this.state ??= new Map()).set(key.name, value);
  }

  /** Delivers a stanza; modules may suppress it through c2s/outgoing. */
  send(stanza: Element): void {
    if (this.ended && !this.isDetached) return;
    const host = this.host;
    if (host && host.bus.has('c2s/outgoing')) {
      void host.bus.run('c2s/outgoing', { host, session: this, stanza }).then((suppressed) => {
        if (!suppressed) this.deliver(stanza);
      }, (err) => this.log.error({ err }, 'c2s/outgoing failed'));
      return;
    }
    this.deliver(stanza);
  }

  /** Writes the stanza (unless detached), then lets the tracker count it: the tracker may follow it with <r/>. */
  private deliver(stanza: Element): void {
    if (!this.ended) {
      if (this.stall !== undefined || this.outputBacklogged()) this.hold(stanza);
      else this.write(serialize(stanza));
      this.server.metrics.stanzasSent.count(stanza.name);
    } else if (!this.isDetached) return;
    this.tracker?.sent(this, stanza);
    const q = this.server.config.limits.send_queue;
    if (this.stall && this.stall.stanzas.length > q.max_stanzas && !this.ended) {
      this.close(new StreamError('resource-constraint', `More than ${q.max_stanzas} stanzas wait for the client to read`));
    }
  }

  // --- Back-pressure: output held for a client that does not read (src/c2s/limits/stalled-output.ts) ---

  private outputBacklogged(): boolean {
    const queued = this.conn.queuedBytes;
    return queued !== undefined && queued > this.server.config.limits.send_queue.max_bytes;
  }

  private hold(stanza: Element): void {
    this.stall ??= new StalledOutput(this, this.server.config.limits.send_queue.stall_timeout * 1000, Date.now());
    this.stall.stanzas.push(stanza);
    if (!this.tracker) this.stall.untracked++;
  }

  /** The client took what was written: held stanzas follow, in order, as long as it keeps up. */
  drained(): void {
    const stall = this.stall;
    if (!stall || this.ended) return;
    let i = 0;
    while (i < stall.stanzas.length && !this.outputBacklogged()) this.write(serialize(stall.stanzas[i++] as Element));
    stall.stanzas.splice(0, i);
    stall.untracked = Math.max(0, stall.untracked - i);
    if (stall.stanzas.length === 0) {
      stall.end();
      this.stall = undefined;
    }
  }

  stallTimedOut(): void {
    const timeout = this.server.config.limits.send_queue.stall_timeout;
    this.close(new StreamError('connection-timeout', `The client has not read what it was sent for ${timeout} seconds`));
  }

  /** Ends the stall; returns the held stanzas no tracker knows of. */
  private takeStalled(): Element[] {
    const stall = this.stall;
    if (!stall) return [];
    this.stall = undefined;
    return stall.end();
  }

  /** Held stanzas that never reached the client are routed again (stored offline, or bounced), as CSI does. */
  private async rerouteStalled(stanzas: Element[]): Promise<void> {
    for (const stanza of stanzas) {
      if (stanza.name === 'presence') continue; // a snapshot, gone with the session
      if (stanza.name === 'iq' && stanza.attrs.type !== 'get' && stanza.attrs.type !== 'set') continue;
      const from = Jid.tryParse(stanza.attrs.from ?? '') ?? this.host?.jid;
      const to = Jid.tryParse(stanza.attrs.to ?? '') ?? this.jid;
      if (from && to) await this.server.router.route(stanza, from, to);
    }
  }

  /** Writes a nonza or a stanza that needs no hooks. */
  sendRaw(el: Element): void {
    if (this.held) this.held.nonzas.push(el);
    else this.write(serialize(el));
  }

  private write(data: string, logAs?: string): void {
    if (this.ended) return;
    if (this.held) {
      this.held.writes.push(data);
      return;
    }
    if (this.logXml) this.log.info({ dir: 'out', xml: logAs ?? data }, 'xml');
    this.conn.send(data);
  }

  close(error?: StreamError): void {
    if (this.isDetached) {
      // No connection to write to: the session just ends.
      this.isDetached = false;
      void this.cleanup(error ? `detached session ended: ${error.condition}` : 'detached session ended');
      return;
    }
    if (this.ended) return;
    this.held = undefined;
    const unsent = this.takeStalled();
    if (error) this.log.info({ condition: error.condition, text: error.text }, 'stream error');
    if (!this.headerSent) this.sendHeader(undefined);
    if (error) this.write(serialize(error.toElement()));
    this.write(this.conn.streamFooter());
    this.ended = true;
    this.conn.close();
    void this.cleanup(error ? `stream error: ${error.condition}` : 'closed by server', unsent);
  }

  /** Malformed or over-limit input from the transport. */
  error(err: StreamError): void {
    this.close(err);
  }

  private streamError(err: StreamError): void {
    this.close(err);
  }

  private sendHeader(clientFrom: string | undefined): void {
    this.write(this.conn.streamHeader({ id: randomBytes(9).toString('base64url'), from: this.host?.name, to: clientFrom }));
    this.headerSent = true;
  }

  streamStart(name: string, ns: string, attrs: Attrs, contentNs: string): void {
    if (this.logXml) this.log.info({ dir: 'in', xml: openTag(new Element(name, attrs)) }, 'xml');
    const toAttr = attrs.to;
    const domain = toAttr === undefined ? undefined : Jid.tryParse(toAttr);
    const host = domain && domain.local === '' && domain.resource === '' ? this.server.hosts.get(domain.domain) : undefined;
    if (host && (!this.host || this.host === host)) this.host = host;
    const clientFrom = attrs.from !== undefined && Jid.tryParse(attrs.from) ? attrs.from : undefined;
    if (this.conn.secure && !this.anyStream) {
      // The first stream of a direct-TLS connection is answered one macrotask later: xmpp.js listens for our
      // header only once its own header's TLS write has completed, and over loopback our answer can come first.
      // With SASL2 there is no later stream restart to recover from that; input meanwhile waits in the inbox.
      this.anyStream = true;
      this.opening = true;
      setImmediate(() => {
        this.opening = false;
        if (this.ended) return;
        this.openStream(name, ns, attrs, contentNs, host, clientFrom);
        if (this.inbox.length > 0 && !this.draining) void this.drain();
      });
      return;
    }
    this.anyStream = true;
    this.openStream(name, ns, attrs, contentNs, host, clientFrom);
  }

  private openStream(name: string, ns: string, attrs: Attrs, contentNs: string, host: Host | undefined, clientFrom: string | undefined): void {
    this.sendHeader(clientFrom);
    if (name !== 'stream' || ns !== NS.STREAM) return this.streamError(new StreamError('invalid-namespace', 'Expected a stream in the streams namespace'));
    if (contentNs !== NS.CLIENT) return this.streamError(new StreamError('invalid-namespace', 'Content namespace must be jabber:client'));
    if (!host || host !== this.host) return this.streamError(new StreamError('host-unknown', 'This server does not serve that domain'));
    const version = attrs.version;
    if (version === undefined || !/^1\.\d+$/.test(version)) return this.streamError(new StreamError('unsupported-version', 'XMPP 1.0 streams only'));
    void this.sendFeatures().catch((err) => {
      this.log.error({ err }, 'could not build stream features');
      this.streamError(new StreamError('internal-server-error'));
    });
  }

  private mustStartTls(): boolean {
    return !this.conn.secure && this.options.starttls === 'required';
  }

  private async sendFeatures(): Promise<void> {
    const host = this.host as Host;
    const features = xml('stream:features');
    if (!this.conn.secure && this.options.starttls !== 'off' && this.conn.canStartTls) {
      features.append(xml('starttls', { xmlns: NS.TLS }, this.options.starttls === 'required' ? xml('required') : undefined));
    }
    if (!this.mustStartTls()) {
      if (!this.authenticated) {
        const mechs = SaslNegotiation.offered(host, this.conn);
        features.append(xml('mechanisms', { xmlns: NS.SASL }, mechs.map((m) => xml('mechanism', null, m))));
        features.append(await Sasl2Negotiation.feature(host, this, this.conn));
        features.append(...(await host.bus.fold('c2s/features-preauth', { host, session: this }, [])));
      } else if (!this.jid) {
        features.append(xml('bind', { xmlns: NS.BIND }));
        features.append(xml('session', { xmlns: NS.SESSION }, xml('optional')));
        features.append(...(await host.bus.fold('c2s/features', { host, session: this }, [])));
      }
    }
    this.sendRaw(features);
  }

  element(el: Element): void {
    if (this.ended) return;
    if (this.logXml) this.log.info({ dir: 'in', xml: redact(el) }, 'xml');
    if (this.stanzaBucket) {
      // limits.stanza_rate: past the burst reading pauses (the client's TCP window closes); a client a whole
      // further burst ahead broke the policy (RFC 6120 §4.9.3.14).
      const debt = this.stanzaBucket.take(1, Date.now());
      if (debt > 0) {
        if (debt > this.server.config.limits.stanza_rate.burst) {
          this.streamError(new StreamError('policy-violation', 'Too many stanzas: slow down'));
          return;
        }
        this.conn.pauseReading?.(this.stanzaBucket.waitMs());
      }
    }
    this.inbox.push(el);
    if (!this.draining && !this.opening) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.inbox.length > 0 && !this.ended) {
        const el = this.inbox.shift() as Element;
        try {
          await this.handle(el);
        } catch (err) {
          if (err instanceof StreamError) this.streamError(err);
          else {
            this.log.error({ err, element: el.name }, 'unexpected error handling an element');
            this.streamError(new StreamError('internal-server-error'));
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async handle(el: Element): Promise<void> {
    const ns = el.attrs.xmlns;
    if (el.name === 'starttls' && ns === NS.TLS) return this.onStartTls();
    if (ns === NS.SASL) return this.onSasl(el);
    if (ns === SASL2_NS) return this.onSasl2(el);
    if (isStanza(el)) {
      if (!this.authenticated) {
        // In-band registration answers some stanzas before authentication; anything else is refused.
        const host = this.host as Host;
        if (!this.mustStartTls() && (await host.bus.run('c2s/unauthenticated-stanza', { host, session: this, stanza: el }))) return;
        throw new StreamError('not-authorized', 'Authenticate first');
      }
      if (!this.jid) return this.beforeBind(el);
      // Counted for stream management once processed: an acknowledgement never covers a stanza still in flight.
      try {
        await this.server.router.fromClient(this, el);
      } finally {
        this.tracker?.received(this, el);
      }
      return;
    }
    if (this.mustStartTls() || !this.authenticated) throw new StreamError('not-authorized', 'Authenticate first');
    const host = this.host as Host;
    if (await host.bus.run('c2s/nonza', { host, session: this, element: el })) return;
    throw new StreamError('unsupported-stanza-type', `Unsupported element ${el.name}`);
  }

  private onStartTls(): void {
    if (this.conn.secure || this.options.starttls === 'off' || !this.conn.canStartTls || this.authenticated) {
      this.sendRaw(xml('failure', { xmlns: NS.TLS }));
      this.close();
      return;
    }
    this.sendRaw(xml('proceed', { xmlns: NS.TLS }));
    this.conn.startTls(this.options.secureContext, (err) => {
      if (err) {
        this.log.info({ err: err.message }, 'TLS handshake failed');
        this.ended = true;
        this.conn.close();
        void this.cleanup('tls handshake failed');
      } else {
        this.headerSent = false;
        this.log.debug('TLS established');
      }
    });
  }

  private async onSasl(el: Element): Promise<void> {
    const host = this.host as Host;
    if (this.authenticated) throw new StreamError('policy-violation', 'Already authenticated');
    if (this.mustStartTls()) {
      this.sendRaw(new SaslFailure('encryption-required', 'Start TLS first').toElement());
      return;
    }
    this.sasl ??= new SaslNegotiation(this, host, this.conn, this.server);
    const outcome = await this.sasl.handle(el);
    if (outcome.reply) this.sendRaw(outcome.reply);
    if (outcome.tooManyFailures) throw new StreamError('policy-violation', 'Too many failed authentication attempts');
    if (outcome.username !== undefined) {
      this.user = outcome.username;
      this.sasl = undefined;
      this.log.info({ user: `${outcome.username}@${host.name}`, mechanism: outcome.mechanism }, 'authenticated');
      this.applyAuthenticatedLimits();
      this.headerSent = false;
      this.conn.restart();
    }
  }

  // --- XEP-0388 SASL2 (src/c2s/sasl2.ts drives it; these are the stream operations it needs) ---

  private async onSasl2(el: Element): Promise<void> {
    const host = this.host as Host;
    if (this.authenticated) throw new StreamError('policy-violation', 'Already authenticated');
    if (this.mustStartTls() || !this.conn.secure) throw new StreamError('policy-violation', 'SASL2 is offered after TLS only');
    this.sasl2 ??= new Sasl2Negotiation(this, host, this.conn, this.server);
    if (await this.sasl2.handle(el)) throw new StreamError('policy-violation', 'Too many failed authentication attempts');
  }

  get session(): C2sSession {
    return this;
  }

  sasl2Authenticated(user: string): void {
    this.user = user;
    this.sasl = undefined;
    this.sasl2 = undefined;
    this.applyAuthenticatedLimits();
  }

  /** After authentication: larger stanzas, the post-authentication read rate, the stanza rate, and the
   * connection no longer counts against its address's unauthenticated cap. */
  private applyAuthenticatedLimits(): void {
    const l = this.server.config.limits;
    this.conn.setLimits({ maxStanzaBytes: l.stanza_size, maxDepth: l.max_depth, maxAttrs: l.max_attrs });
    this.conn.setReadRate?.(l.read_rate);
    if (l.stanza_rate.per_second > 0) this.stanzaBucket = new TokenBucket(l.stanza_rate.per_second, l.stanza_rate.burst, Date.now());
    if (this.options.guard && this.options.ticket) this.options.guard.authenticated(this.options.ticket);
  }

  sasl2Bind(jid: Jid): void {
    this.jid = jid;
    this.server.sessions.add(this, jid);
    if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    this.log.info({ jid: jid.toString() }, 'resource bound (Bind2)');
  }

  sasl2Hold(onResumed: (jid: Jid, preamble: Element[]) => Element[]): void {
    this.held = { nonzas: [], writes: [], onResumed };
  }

  sasl2TakeNonzas(): Element[] {
    return this.held ? this.held.nonzas.splice(0) : [];
  }

  sasl2Release(first: Element): void {
    const held = this.held;
    this.held = undefined;
    // A FAST token in <success/> is a credential: never logged.
    this.write(serialize(first), this.logXml ? serialize(first).replace(/ token="[^"]*"/g, ' token="[redacted]"') : undefined);
    if (!held) return;
    for (const el of held.nonzas) this.write(serialize(el));
    for (const data of held.writes) this.write(data);
  }

  async sasl2Bound(): Promise<void> {
    const host = this.host as Host;
    await host.bus.run('session/bound', { host, session: this });
  }

  sasl2SendFeatures(): Promise<void> {
    return this.sendFeatures();
  }

  private async beforeBind(el: Element): Promise<void> {
    const payload = el.firstElement();
    if (el.name === 'iq' && el.attrs.type === 'set' && payload?.is('bind', NS.BIND)) {
      const host = this.host as Host;
      const result = bindResource(this.user as string, host.name, el, payload);
      const refused = result.ok ? admitResource(this.server, result.jid) : undefined;
      if (refused) {
        this.log.info({ user: this.user }, 'bind refused: too many sessions');
        this.sendRaw(errorReply(el, refused));
        return;
      }
      if (result.ok) {
        this.jid = result.jid;
        this.server.sessions.add(this, result.jid);
        if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
        this.negotiationTimer = undefined;
        this.log.info({ jid: result.jid.toString() }, 'resource bound');
      }
      this.sendRaw(result.reply);
      if (result.ok) await host.bus.run('session/bound', { host, session: this });
      return;
    }
    throw new StreamError('not-authorized', 'Bind a resource first');
  }

  streamEnd(): void {
    if (this.ended) return;
    this.log.debug('client closed the stream');
    this.close();
  }

  closed(): void {
    if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    if (this.ended) return;
    this.ended = true;
    const unsent = this.takeStalled();
    if (this.jid && this.tracker?.connectionLost(this)) {
      // Input not yet processed is dropped: the client learns from the resumption's 'h' what to send again.
      this.isDetached = true;
      this.inbox.length = 0;
      // Held stanzas the tracker already counts are kept for replay; the others join them now.
      for (const stanza of unsent) this.tracker.sent(this, stanza);
      this.log.info({ jid: this.jid.toString() }, 'connection lost; session detached');
      return;
    }
    void this.cleanup('connection lost', unsent);
  }

  adoptConnection(fresh: C2sSession, preamble: Element[]): void {
    if (!(fresh instanceof ClientSession) || fresh === this || fresh.jid || fresh.ended || !this.jid) {
      throw new Error('adoptConnection needs a bound session and a live, unbound one');
    }
    if (this.ended && !this.isDetached) throw new Error('adoptConnection: the session has ended');
    if (!this.ended) {
      // The client came back before its old connection was seen to drop (RFC 6120 §4.9.3.3 conflict).
      this.write(serialize(new StreamError('conflict', 'The session was resumed on another connection').toElement()));
      this.write(this.conn.streamFooter());
      this.conn.setHandler(ABANDONED);
      this.conn.close();
    }
    this.conn = fresh.conn;
    this.options = fresh.options;
    this.conn.setHandler(this);
    // The fresh session ends without cleanup: it was never bound, so nothing knows of it.
    fresh.ended = true;
    fresh.cleaned = true;
    fresh.sasl = undefined;
    fresh.sasl2 = undefined;
    // Resumed inline in SASL2: <success/> (with <resumed/> in it) comes first.
    const held = fresh.held;
    fresh.held = undefined;
    if (held) preamble = held.onResumed(this.jid, preamble);
    if (fresh.negotiationTimer) clearTimeout(fresh.negotiationTimer);
    fresh.negotiationTimer = undefined;
    // Input from the old connection not yet processed is dropped (the client resends what 'h' does not cover);
    // what followed <resume/> on the new one comes next.
    this.inbox.length = 0;
    this.inbox.push(...fresh.inbox.splice(0));
    this.headerSent = true;
    this.ended = false;
    this.isDetached = false;
    this.log.info({ jid: this.jid.toString(), transport: this.conn.kind, ip: this.conn.remoteAddress }, 'session resumed');
    for (const el of preamble) this.write(serialize(el));
    // Output held for the old connection: what the tracker counts is in the replay; the rest is written now.
    for (const el of this.takeStalled()) this.write(serialize(el));
    if (this.inbox.length > 0 && !this.draining) void this.drain();
  }

  private async cleanup(reason: string, unsent: Element[] = []): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
    const host = this.host;
    if (!host || !this.jid) return;
    try {
      this.server.sessions.remove(this);
      // The presence module broadcasts unavailable (and fires user/unavailable) for a session that was available.
      await host.bus.run('session/closed', { host, session: this, reason });
      this.available = false;
    } catch (err) {
      this.log.error({ err }, 'session cleanup failed');
    } finally {
      this.server.sessions.remove(this);
      this.log.info({ jid: this.jid.toString(), reason }, 'session closed');
    }
    if (unsent.length > 0) {
      try {
        await this.rerouteStalled(unsent);
      } catch (err) {
        this.log.error({ err }, 'could not route held stanzas again');
      }
    }
  }
}


/** SASL payloads carry credentials: never log them. */
function redact(el: Element): string {
  if ((el.attrs.xmlns === NS.SASL || el.attrs.xmlns === SASL2_NS) && el.children.length > 0) return serialize(new Element(el.name, el.attrs, ['[redacted]']));
  return serialize(el);
}
