// Errors are values that carry the XMPP condition they map to (RFC 6120 §4.9, §6.5, §8.3).
import { Element, xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** Stanza error conditions with the default type RFC 6120 §8.3.3 gives each. */
export const STANZA_CONDITIONS = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
} as const satisfies Record<string, StanzaErrorType>;

export type StanzaCondition = keyof typeof STANZA_CONDITIONS;

export class StanzaError extends Error {
  readonly condition: StanzaCondition;
  readonly type: StanzaErrorType;
  readonly text: string | undefined;
  /** Application-specific condition element, added after the defined condition. */
  readonly appCondition: Element | undefined;

  constructor(condition: StanzaCondition, text?: string, opts?: { type?: StanzaErrorType; app?: Element }) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
    this.condition = condition;
    this.type = opts?.type ?? STANZA_CONDITIONS[condition];
    this.text = text;
    this.appCondition = opts?.app;
  }

  toElement(by?: string): Element {
    return xml(
      'error',
      { type: this.type, by },
      xml(this.condition, { xmlns: NS.STANZAS }),
      this.text ? xml('text', { xmlns: NS.STANZAS, 'xml:lang': 'en' }, this.text) : undefined,
      this.appCondition,
    );
  }

  static badRequest = (text?: string): StanzaError => new StanzaError('bad-request', text);
  static forbidden = (text?: string): StanzaError => new StanzaError('forbidden', text);
  static itemNotFound = (text?: string): StanzaError => new StanzaError('item-not-found', text);
  static jidMalformed = (text?: string): StanzaError => new StanzaError('jid-malformed', text);
  static notAllowed = (text?: string): StanzaError => new StanzaError('not-allowed', text);
  static notAcceptable = (text?: string): StanzaError => new StanzaError('not-acceptable', text);
  static serviceUnavailable = (text?: string): StanzaError => new StanzaError('service-unavailable', text);
  static featureNotImplemented = (text?: string): StanzaError => new StanzaError('feature-not-implemented', text);
  static internal = (text?: string): StanzaError => new StanzaError('internal-server-error', text);
}

export const STREAM_CONDITIONS = [
  'bad-format', 'bad-namespace-prefix', 'conflict', 'connection-timeout', 'host-gone', 'host-unknown',
  'improper-addressing', 'internal-server-error', 'invalid-from', 'invalid-namespace', 'invalid-xml',
  'not-authorized', 'not-well-formed', 'policy-violation', 'remote-connection-failed', 'reset',
  'resource-constraint', 'restricted-xml', 'see-other-host', 'system-shutdown', 'undefined-condition',
  'unsupported-encoding', 'unsupported-feature', 'unsupported-stanza-type', 'unsupported-version',
] as const;
export type StreamCondition = (typeof STREAM_CONDITIONS)[number];

/** Closes one connection; never escapes the session layer. */
export class StreamError extends Error {
  readonly condition: StreamCondition;
  readonly text: string | undefined;
  constructor(condition: StreamCondition, text?: string) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
    this.condition = condition;
    this.text = text;
  }
  toElement(): Element {
    return xml(
      'stream:error',
      null,
      xml(this.condition, { xmlns: NS.STREAMS_ERR }),
      this.text ? xml('text', { xmlns: NS.STREAMS_ERR, 'xml:lang': 'en' }, this.text) : undefined,
    );
  }
}

export const SASL_CONDITIONS = [
  'aborted', 'account-disabled', 'credentials-expired', 'encryption-required', 'incorrect-encoding',
  'invalid-authzid', 'invalid-mechanism', 'malformed-request', 'mechanism-too-weak', 'not-authorized',
  'temporary-auth-failure',
] as const;
export type SaslCondition = (typeof SASL_CONDITIONS)[number];

export class SaslFailure extends Error {
  readonly condition: SaslCondition;
  readonly text: string | undefined;
  constructor(condition: SaslCondition, text?: string) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'SaslFailure';
    this.condition = condition;
    this.text = text;
  }
  toElement(): Element {
    return xml(
      'failure',
      { xmlns: NS.SASL },
      xml(this.condition),
      this.text ? xml('text', { 'xml:lang': 'en' }, this.text) : undefined,
    );
  }
}

/** Configuration problems, each with the key path it concerns. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly problems: string[];
  constructor(problems: string[]) {
    super('invalid configuration:\n  ' + problems.join('\n  '));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export const STORAGE_ERROR_CODES = ['NOT_FOUND', 'CONFLICT', 'BACKEND', 'MIGRATION'] as const;
export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}
