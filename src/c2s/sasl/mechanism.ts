// RFC 4422 (SASL) server mechanisms as RFC 6120 §6 drives them: one object per exchange.
import { SaslFailure } from '../../core/errors.ts';
import type { ScramCredentials, ScramHash } from './credentials.ts';
import { createPlainMechanism } from './plain.ts';
import { createScramMechanism } from './scram.ts';
import { createAnonymousMechanism } from './anonymous.ts';

/** Every mechanism Parley implements, strongest first (the order to advertise them in). */
export const SASL_MECHANISM_NAMES = [
  'SCRAM-SHA-256-PLUS',
  'SCRAM-SHA-1-PLUS',
  'SCRAM-SHA-256',
  'SCRAM-SHA-1',
  'PLAIN',
  'ANONYMOUS',
] as const;
export type SaslMechanismName = (typeof SASL_MECHANISM_NAMES)[number];

export function isSaslMechanismName(name: string): name is SaslMechanismName {
  return (SASL_MECHANISM_NAMES as readonly string[]).includes(name);
}

export interface SaslServerContext {
  /** Whether the connection is TLS-protected. */
  secure: boolean;
  /** tls-exporter channel-binding data (32 bytes of keying material, label 'EXPORTER-Channel-Binding', empty context) or undefined when not on TLS 1.3. */
  channelBinding(type: 'tls-exporter'): Buffer | undefined;
  /** Whether this server offers any -PLUS mechanism on this connection (for the SCRAM downgrade check: gs2 flag 'y'). */
  plusOffered: boolean;
  /** Looks up stored credentials for a SASLprepped username; undefined when the user does not exist. */
  getScramCredentials(username: string, hash: ScramHash): Promise<ScramCredentials | undefined>;
  /**
   * Verifies a PLAIN password against the host's authentication backends. `true` or a string means success;
   * a string names the authenticated user when the backend decides it (a JWT claim, for example).
   */
  verifyPlain(username: string, password: string): Promise<boolean | string>;
  /** A fresh username for SASL ANONYMOUS (RFC 4505). */
  anonymousUsername?(): string;
  /** True if an authorization identity names the same account as the authenticated username (the core compares JIDs). */
  authzidMatches(authzid: string, username: string): boolean;
}

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; username: string; data?: Buffer /* additional data with success, e.g. SCRAM server-final */ };

export interface SaslServerMechanism {
  readonly name: SaslMechanismName;
  /**
   * First call receives the initial response (Buffer, possibly empty) or undefined if the client sent none;
   * later calls receive each <response/>. Throws SaslFailure (src/core/errors.ts) on failure.
   * Errors thrown by the context's callbacks (storage) pass through unchanged.
   */
  step(data: Buffer | undefined): Promise<SaslStep>;
}

export function createMechanism(name: SaslMechanismName, ctx: SaslServerContext): SaslServerMechanism {
  switch (name) {
    case 'PLAIN':
      return createPlainMechanism(ctx);
    case 'ANONYMOUS':
      return createAnonymousMechanism(ctx);
    case 'SCRAM-SHA-1':
    case 'SCRAM-SHA-1-PLUS':
    case 'SCRAM-SHA-256':
    case 'SCRAM-SHA-256-PLUS':
      return createScramMechanism(name, ctx);
    default:
      // Unreachable for typed callers; a name taken straight off the wire lands here.
      throw new SaslFailure('invalid-mechanism');
  }
}
