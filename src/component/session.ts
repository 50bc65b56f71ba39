// XEP-0114: Jabber Component Protocol <https://xmpp.org/extensions/xep-0114.html> 1.6 — one external component's
// stream (jabber:component:accept): header, <handshake/> with SHA-1(stream id + secret), then stanzas both ways.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { Element, openTag, serialize } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { Jid } from '../xmpp/jid.ts';
import { checkStanzaShape, errorReply, isStanza } from '../xmpp/stanza.ts';
import { StanzaError, StreamError } from '../core/errors.ts';
import type { ServerServices } from '../core/host.ts';
import type { Attrs } from '../xml/element.ts';
import type { Transport, TransportHandler } from '../c2s/transports/transport.ts';

/** The content namespace of a component stream accepted by the server. */
export const COMPONENT_ACCEPT_NS = 'jabber:component:accept';

/** What a session needs from its listener: the configured secrets and a registry of live sessions. */
export interface ComponentDirectory {
  /** The shared secret of a configured component domain (already prepared), or undefined. */
  secret(domain: string): string | undefined;
  opened(session: ComponentSession): void;
  closed(session: ComponentSession): void;
}

/** The handshake value a component sends: lowercase hex of SHA-1 over the stream id and the secret (UTF-8). */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1').update(streamId + secret, 'utf8').digest('hex');
}

/** Compares in constant time whatever the lengths: both sides are hashed to the same size first. */
function sameSecretProof(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

const STATE_HEADER = 0;
const STATE_HANDSHAKE = 1;
const STATE_READY = 2;

export class ComponentSession implements TransportHandler {
  /** Connection id, for logs. */
  readonly id = randomBytes(9).toString('base64url');
  /** The stream id the handshake is computed over. */
  readonly streamId = randomBytes(16).toString('hex');
  /** The component's domain, once the header names a configured one. */
  domain: string | undefined;

  private readonly conn: Transport;
  private readonly server: ServerServices;
  private readonly directory: ComponentDirectory;
  private readonly logXml: boolean;
  private state = STATE_HEADER;
  private headerSent = false;
  private ended = false;
  private cleaned = false;
  private unroute: (() => void) | undefined;
  private negotiationTimer: NodeJS.Timeout | undefined;
  /** Stanzas are routed one at a time, in order (RFC 6120 §10.1). */
  private readonly inbox: Element[] = [];
  private draining = false;
  /** The domain's route: XEP-0114 stanzas carry both addresses, as between servers. */
  private readonly deliver = (stanza: Element, from: Jid, to: Jid): void => {
    stanza.attrs.from ??= from.toString();
    stanza.attrs.to ??= to.toString();
    this.write(serialize(stanza));
  };

  constructor(transport: Transport, server: ServerServices, directory: ComponentDirectory) {
    this.conn = transport;
    this.server = server;
    this.directory = directory;
    this.logXml = server.config.log.xml;
    transport.setHandler(this);
    directory.opened(this);
    this.negotiationTimer = setTimeout(() => {
      if (this.state !== STATE_READY) this.close(new StreamError('connection-timeout', 'Handshake took too long'));
    }, server.config.limits.negotiation_timeout * 1000);
    this.negotiationTimer.unref();
    this.log.debug({ ip: transport.remoteAddress }, 'component connection opened');
  }

  /** True once the handshake succeeded and until the stream ends. */
  get ready(): boolean {
    return this.state === STATE_READY && !this.ended;
  }

  private get log(): Logger {
    return this.server.log.child({ conn: this.id, component: this.domain });
  }

  private write(data: string): void {
    if (this.ended) return;
    if (this.logXml) this.log.info({ dir: 'out', xml: data }, 'xml');
    this.conn.send(data);
  }

  private sendHeader(): void {
    // No version attribute: XEP-0114 streams predate stream features, so none are announced.
    const from = this.domain !== undefined ? ` from='${this.domain}'` : '';
    this.write(`<?xml version='1.0'?><stream:stream xmlns:stream='${NS.STREAM}' xmlns='${COMPONENT_ACCEPT_NS}' id='${this.streamId}'${from}>`);
    this.headerSent = true;
  }

  /** Ends the stream, with a stream error when given. */
  close(error?: StreamError): void {
    if (this.ended) return;
    if (error) this.log.info({ condition: error.condition, text: error.text }, 'component stream error');
    if (!this.headerSent) this.sendHeader();
    if (error) this.write(serialize(error.toElement()));
    this.write('</stream:stream>');
    this.ended = true;
    this.conn.close();
    this.cleanup(error ? `stream error: ${error.condition}` : 'closed by server');
  }

  streamStart(name: string, ns: string, attrs: Attrs, contentNs: string): void {
    if (this.logXml) this.log.info({ dir: 'in', xml: openTag(new Element(name, attrs)) }, 'xml');
    if (this.state !== STATE_HEADER) return;
    const to = attrs.to === undefined ? undefined : Jid.tryParse(attrs.to);
    const domain = to && to.local === '' && to.resource === '' ? to.domain : undefined;
    if (domain !== undefined && this.directory.secret(domain) !== undefined) this.domain = domain;
    // RFC 6120 §4.9.1.2: a header goes out first, even when an error follows at once.
    this.sendHeader();
    if (name !== 'stream' || ns !== NS.STREAM) return this.close(new StreamError('invalid-namespace', 'Expected a stream in the streams namespace'));
    if (contentNs !== COMPONENT_ACCEPT_NS) return this.close(new StreamError('invalid-namespace', `Content namespace must be ${COMPONENT_ACCEPT_NS}`));
    if (this.domain === undefined) return this.close(new StreamError('host-unknown', 'No component is configured for that domain'));
    this.state = STATE_HANDSHAKE;
  }

  element(el: Element): void {
    if (this.ended) return;
    if (this.logXml) this.log.info({ dir: 'in', xml: el.name === 'handshake' ? '<handshake>[redacted]</handshake>' : serialize(el) }, 'xml');
    this.inbox.push(el);
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.inbox.length > 0 && !this.ended) {
        const el = this.inbox.shift() as Element;
        try {
          await this.handle(el);
        } catch (err) {
          if (err instanceof StreamError) this.close(err);
          else {
            this.log.error({ err, element: el.name }, 'unexpected error handling a component element');
            this.close(new StreamError('internal-server-error'));
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private async handle(el: Element): Promise<void> {
    if (this.state === STATE_HANDSHAKE) return this.onHandshake(el);
    if (!isStanza(el)) throw new StreamError('unsupported-stanza-type', `Unsupported element ${el.name}`);
    const rawFrom = el.attrs.from;
    const rawTo = el.attrs.to;
    // XEP-0114 §3: stanzas from a component carry both addresses, as between servers (RFC 6120 §4.9.3.7).
    if (rawFrom === undefined || rawTo === undefined) throw new StreamError('improper-addressing', "A component's stanzas need 'from' and 'to'");
    const from = Jid.tryParse(rawFrom);
    if (!from) throw new StreamError('improper-addressing', "Malformed 'from' address");
    if (from.domain !== this.domain) throw new StreamError('invalid-from', `A component may only send from ${this.domain}`);
    el.attrs.from = from.toString();
    let to: Jid;
    try {
      to = Jid.parse(rawTo);
      checkStanzaShape(el);
    } catch (err) {
      if (err instanceof StanzaError) return this.bounce(el, err);
      throw err;
    }
    el.attrs.to = to.toString();
    await this.server.router.route(el, from, to);
  }

  private onHandshake(el: Element): void {
    if (el.name !== 'handshake' || el.attrs.xmlns !== undefined) throw new StreamError('not-authorized', 'Send the handshake first');
    const domain = this.domain as string;
    const secret = this.directory.secret(domain);
    const given = el.text().trim().toLowerCase();
    if (secret === undefined || !sameSecretProof(given, handshakeDigest(this.streamId, secret))) {
      throw new StreamError('not-authorized', 'Handshake failed');
    }
    let unroute: () => void;
    try {
      unroute = this.server.router.addRoute(domain, this.deliver);
    } catch {
      // Another connection (or a built-in service) already serves the domain: the one in place keeps it.
      throw new StreamError('conflict', `${domain} is already connected`);
    }
    this.unroute = unroute;
    this.state = STATE_READY;
    if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    const l = this.server.config.limits;
    this.conn.setLimits({ maxStanzaBytes: l.stanza_size, maxDepth: l.max_depth, maxAttrs: l.max_attrs });
    this.write('<handshake/>');
    this.log.info('component connected');
  }

  /** A stanza error straight back to the component (never an error to an error). */
  private bounce(stanza: Element, err: StanzaError): void {
    if (stanza.attrs.type === 'error') return;
    const reply = errorReply(stanza, err);
    // An unusable 'to' cannot be the error's sender: the server answers in its own name.
    if (reply.attrs.from === undefined || !Jid.tryParse(reply.attrs.from)) {
      const host = this.server.hosts.values().next().value;
      if (host) reply.attrs.from = host.name;
      else delete reply.attrs.from;
    }
    this.write(serialize(reply));
  }

  /** Malformed or over-limit input. */
  error(err: StreamError): void {
    this.close(err);
  }

  streamEnd(): void {
    if (this.ended) return;
    this.log.debug('component closed the stream');
    this.close();
  }

  closed(): void {
    if (!this.ended) {
      this.ended = true;
      this.cleanup('connection lost');
    }
  }

  private cleanup(reason: string): void {
    if (this.cleaned) return;
    this.cleaned = true;
    if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    // From now on stanzas to the domain find no route: the router answers remote-server-not-found.
    this.unroute?.();
    this.unroute = undefined;
    this.directory.closed(this);
    if (this.state === STATE_READY) this.log.info({ reason }, 'component disconnected');
  }
}
