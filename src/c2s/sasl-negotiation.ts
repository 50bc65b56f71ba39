// SASL negotiation on a client stream (RFC 6120 §6): mechanism choice, payload checks, steps, failures.
import type { Element } from '../xml/element.ts';
import { xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { SaslFailure } from '../core/errors.ts';
import type { Host, ServerServices } from '../core/host.ts';
import type { C2sSession } from '../core/session.ts';
import { Jid } from '../xmpp/jid.ts';
import { prepareLocalpart } from '../xmpp/precis.ts';
import { decodeSaslPayload, encodeSaslPayload } from './sasl/base64.ts';
import { createMechanism, type SaslMechanismName, type SaslServerContext, type SaslServerMechanism } from './sasl/mechanism.ts';
import type { Transport } from './transports/transport.ts';
import { LoginBackoff } from '../auth/login-failures.ts';

/** Mechanisms known to be weaker than anything Parley accepts. */
const WEAK_MECHANISMS = new Set(['DIGEST-MD5', 'CRAM-MD5', 'LOGIN', 'SCRAM-MD5']);
const MAX_FAILURES = 5;

export type SaslOutcome = { reply?: Element; username?: string; mechanism?: string; tooManyFailures?: boolean };

function localpartOf(username: string): string | undefined {
  try {
    return prepareLocalpart(username);
  } catch {
    return undefined;
  }
}

export class SaslNegotiation {
  private mechanism: SaslServerMechanism | undefined;
  private failedAttempts = 0;
  /** The account the current attempt names, once the mechanism has read it (for per-account back-off). */
  private attemptUser: string | undefined;
  private readonly session: C2sSession;
  private readonly host: Host;
  private readonly transport: Transport;
  private readonly server: ServerServices;

  constructor(session: C2sSession, host: Host, transport: Transport, server: ServerServices) {
    this.session = session;
    this.host = host;
    this.transport = transport;
    this.server = server;
  }

  /** What the host's backends can serve here: PLAIN only over TLS; -PLUS only with tls-exporter (TLS 1.3). */
  static offered(host: Host, transport: Transport): SaslMechanismName[] {
    return host.auth.offered(transport.secure, transport.secure && transport.channelBinding() !== undefined);
  }

  async handle(el: Element): Promise<SaslOutcome> {
    const failures = this.host.auth.failures;
    const ip = this.session.remoteAddress;
    try {
      if (el.name === 'auth' && failures.isBanned(ip)) {
        throw new SaslFailure('not-authorized', 'Too many failed logins from your address; try again later');
      }
      const outcome = await this.step(el);
      if (outcome.username !== undefined) {
        const jid = Jid.of(outcome.username, this.host.name);
        if (!this.server.access.allowed('c2s', { jid, ip, host: this.host.name })) {
          throw new SaslFailure('not-authorized', 'Login not allowed by service policy');
        }
        failures.recordSuccess(ip, outcome.username);
      }
      return outcome;
    } catch (caught) {
      let err = caught;
      if (!(err instanceof SaslFailure)) {
        // A storage failure is not the client's fault: it may try again.
        this.host.log.error({ err }, 'authentication backend failed');
        err = new SaslFailure('temporary-auth-failure');
      }
      if (!(err instanceof SaslFailure)) throw err;
      this.mechanism = undefined;
      this.failedAttempts++;
      // A refusal to even try (the address must wait for that account) is not another failure.
      const account = this.attemptUser;
      this.attemptUser = undefined;
      if (err.condition === 'not-authorized' && !(err instanceof LoginBackoff) && failures.recordFailure(ip, account)) {
        this.host.log.warn({ ip }, 'address refused after repeated failed logins');
      }
      this.server.metrics.authFailures.inc(err.condition);
      this.host.log.info({ conn: this.session.id, ip: this.session.remoteAddress, condition: err.condition }, 'authentication failed');
      return { reply: err.toElement(), tooManyFailures: this.failedAttempts >= MAX_FAILURES };
    }
  }

  private async step(el: Element): Promise<SaslOutcome> {
    const limit = this.server.config.limits.sasl_payload;
    const text = el.text();
    if (text.length > limit) throw new SaslFailure('malformed-request', `SASL payload over ${limit} bytes`);
    switch (el.name) {
      case 'auth': {
        const name = el.attrs.mechanism ?? '';
        const offered = SaslNegotiation.offered(this.host, this.transport);
        if (!(offered as string[]).includes(name)) {
          if (name === 'PLAIN' && !this.transport.secure && this.host.auth.offered(true, false).includes('PLAIN')) {
            throw new SaslFailure('encryption-required', 'PLAIN needs TLS');
          }
          if (WEAK_MECHANISMS.has(name)) throw new SaslFailure('mechanism-too-weak');
          throw new SaslFailure('invalid-mechanism');
        }
        this.mechanism = createMechanism(name as SaslMechanismName, this.context(offered));
        return this.advance(name, text === '' ? undefined : decodeSaslPayload(text));
      }
      case 'response': {
        if (!this.mechanism) throw new SaslFailure('malformed-request', 'No authentication in progress');
        return this.advance(this.mechanism.name, decodeSaslPayload(text === '' ? '=' : text));
      }
      case 'abort':
        this.mechanism = undefined;
        throw new SaslFailure('aborted');
      default:
        throw new SaslFailure('malformed-request', `Unexpected ${el.name}`);
    }
  }

  private async advance(name: string, data: Buffer | undefined): Promise<SaslOutcome> {
    const mech = this.mechanism as SaslServerMechanism;
    const result = await mech.step(data);
    if (result.kind === 'challenge') {
      return { reply: xml('challenge', { xmlns: NS.SASL }, encodeSaslPayload(result.data)) };
    }
    const local = localpartOf(result.username);
    if (local === undefined) throw new SaslFailure('not-authorized');
    this.mechanism = undefined;
    const reply = xml('success', { xmlns: NS.SASL }, result.data && result.data.length > 0 ? encodeSaslPayload(result.data) : undefined);
    return { reply, username: local, mechanism: name };
  }

  /** The mechanism names the account: an address that failed it too often must wait (LoginBackoff). */
  private beforeAttempt(local: string): void {
    this.attemptUser = local;
    this.host.auth.failures.checkBackoff(this.session.remoteAddress, local);
  }

  private context(offered: SaslMechanismName[]): SaslServerContext {
    const auth = this.host.auth;
    const hostName = this.host.name;
    return {
      secure: this.transport.secure,
      channelBinding: () => this.transport.channelBinding(),
      plusOffered: offered.some((m) => m.endsWith('-PLUS')),
      getScramCredentials: async (username, hash) => {
        const local = localpartOf(username);
        if (local === undefined) return undefined;
        this.beforeAttempt(local);
        return auth.getScramCredentials(local, hash);
      },
      verifyPlain: async (username, password) => {
        const local = localpartOf(username);
        if (local === undefined) return false;
        this.beforeAttempt(local);
        return auth.checkPassword(local, password);
      },
      anonymousUsername: () => auth.anonymousUsername(),
      authzidMatches: (authzid, username) => {
        const jid = Jid.tryParse(authzid);
        const local = localpartOf(username);
        return jid !== undefined && jid.resource === '' && jid.domain === hostName && jid.local === local;
      },
    };
  }
}
