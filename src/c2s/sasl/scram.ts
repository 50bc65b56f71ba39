// RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256) and RFC 9266 (tls-exporter channel binding): the server side.
import { randomBytes } from 'node:crypto';
import { SaslFailure } from '../../core/errors.ts';
import { decodeStrictBase64 } from './base64.ts';
import {
  prepareSaslString,
  safeEqual,
  SCRAM_HASH_LENGTH,
  scramDigest,
  scramHmac,
  type ScramCredentials,
  type ScramHash,
} from './credentials.ts';
import type { SaslServerContext, SaslServerMechanism, SaslStep } from './mechanism.ts';

export type ScramMechanismName = 'SCRAM-SHA-1' | 'SCRAM-SHA-1-PLUS' | 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS';

/** Internal seam: tests replaying the RFC examples fix the server's nonce part. Never set in production. */
export type ScramServerOptions = { readonly serverNonce?: string };

const MECHANISMS = {
  'SCRAM-SHA-1': { hash: 'SHA-1', plus: false },
  'SCRAM-SHA-1-PLUS': { hash: 'SHA-1', plus: true },
  'SCRAM-SHA-256': { hash: 'SHA-256', plus: false },
  'SCRAM-SHA-256-PLUS': { hash: 'SHA-256', plus: true },
} as const satisfies Record<ScramMechanismName, { hash: ScramHash; plus: boolean }>;

/** RFC 9266: the one channel-binding type we bind to (tls-unique is undefined on TLS 1.3). */
const CHANNEL_BINDING_TYPE = 'tls-exporter';
const SERVER_NONCE_BYTES = 24;
/** What an unknown user appears to have, so server-first does not reveal existence. */
const FAKE_ITERATIONS = 4096;
const FAKE_SALT_BYTES = 16;
const FAKE_SECRET = randomBytes(32);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// RFC 5802 §7 productions, applied to comma-separated parts (no production below contains ',').
const CB_NAME = /^[A-Za-z0-9.-]+$/;
const SASLNAME = /^(?:[^=,]|=2C|=3D)+$/; // value-safe-char or the two escapes (NUL refused earlier)
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/;
const ATTR_VAL = /^[A-Za-z]=[^,]+$/;

function malformed(text: string): SaslFailure {
  return new SaslFailure('malformed-request', text);
}

function notAuthorized(text?: string): SaslFailure {
  return new SaslFailure('not-authorized', text);
}

/** A SCRAM message is UTF-8 without NUL (every production excludes it). */
function decodeMessage(data: Buffer): string {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    throw malformed('SCRAM message is not valid UTF-8');
  }
  if (text.includes('\0')) throw malformed('SCRAM message contains NUL');
  return text;
}

function decodeSaslname(value: string): string {
  // RFC 5802 §5.1: '=' not followed by '2C' or '3D' MUST fail the authentication.
  if (!SASLNAME.test(value)) throw malformed('bad saslname');
  return value.replace(/=2C|=3D/g, (e) => (e === '=2C' ? ',' : '='));
}

/** Extensions after the fixed attributes: unknown ones are ignored, but 'm' is reserved and MUST fail. */
function checkExtensions(parts: readonly string[]): void {
  for (const part of parts) {
    if (!ATTR_VAL.test(part)) throw malformed('bad SCRAM attribute');
    if (part.startsWith('m=')) throw malformed('mandatory SCRAM extensions are not supported');
  }
}

function attr(part: string | undefined, name: string): string {
  if (part === undefined || !part.startsWith(`${name}=`)) throw malformed(`expected '${name}=' attribute`);
  return part.slice(2);
}

type ClientFirst = {
  /** The gs2 header exactly as received, trailing comma included: it goes into c=. */
  gs2Header: string;
  cbFlag: 'n' | 'y' | 'p';
  cbName: string | undefined;
  authzid: string | undefined;
  /** client-first-message-bare exactly as received: it goes into AuthMessage. */
  bare: string;
  username: string;
  clientNonce: string;
};

function parseClientFirst(text: string): ClientFirst {
  const flagEnd = text.indexOf(',');
  const headerEnd = flagEnd < 0 ? -1 : text.indexOf(',', flagEnd + 1);
  if (headerEnd < 0) throw malformed('missing gs2 header');
  const flag = text.slice(0, flagEnd);
  const authzPart = text.slice(flagEnd + 1, headerEnd);

  let cbFlag: ClientFirst['cbFlag'];
  let cbName: string | undefined;
  if (flag === 'n' || flag === 'y') {
    cbFlag = flag;
  } else if (flag.startsWith('p=') && CB_NAME.test(flag.slice(2))) {
    cbFlag = 'p';
    cbName = flag.slice(2);
  } else {
    throw malformed('bad gs2 channel-binding flag');
  }
  const authzid = authzPart === '' ? undefined : decodeSaslname(attr(authzPart, 'a'));

  const bare = text.slice(headerEnd + 1);
  const parts = bare.split(',');
  if (parts[0]?.startsWith('m=')) throw malformed('mandatory SCRAM extensions are not supported');
  const username = decodeSaslname(attr(parts[0], 'n'));
  const clientNonce = attr(parts[1], 'r');
  if (!PRINTABLE.test(clientNonce)) throw malformed('bad client nonce');
  checkExtensions(parts.slice(2));
  return { gs2Header: text.slice(0, headerEnd + 1), cbFlag, cbName, authzid, bare, username, clientNonce };
}

type ClientFinal = { withoutProof: string; channelBinding: string; nonce: string; proof: string };

function parseClientFinal(text: string): ClientFinal {
  const proofAt = text.lastIndexOf(',p=');
  if (proofAt < 0) throw malformed('missing client proof');
  const withoutProof = text.slice(0, proofAt);
  const parts = withoutProof.split(',');
  const channelBinding = attr(parts[0], 'c');
  const nonce = attr(parts[1], 'r');
  checkExtensions(parts.slice(2));
  return { withoutProof, channelBinding, nonce, proof: text.slice(proofAt + 3) };
}

/** Deterministic per process, so asking twice about one unknown name gives the same answer. */
function fakeCredentials(hash: ScramHash, username: string): ScramCredentials {
  const derive = (label: string, length: number): Buffer =>
    scramHmac('SHA-256', FAKE_SECRET, `${label}\0${hash}\0${username}`).subarray(0, length);
  return {
    hash,
    salt: derive('salt', FAKE_SALT_BYTES),
    iterations: FAKE_ITERATIONS,
    storedKey: derive('stored', SCRAM_HASH_LENGTH[hash]),
    serverKey: derive('server', SCRAM_HASH_LENGTH[hash]),
  };
}

class ScramServerMechanism implements SaslServerMechanism {
  readonly name: ScramMechanismName;
  readonly #ctx: SaslServerContext;
  readonly #hash: ScramHash;
  readonly #plus: boolean;
  readonly #fixedServerNonce: string | undefined;
  #state: 'start' | 'awaiting-first' | 'awaiting-final' | 'done' = 'start';
  // Set by client-first, read by client-final.
  #username = '';
  #authzid: string | undefined;
  #expectedChannelBinding = '';
  #nonce = '';
  #authMessagePrefix = '';
  #creds: ScramCredentials | undefined;
  #userKnown = false;

  constructor(name: ScramMechanismName, ctx: SaslServerContext, options: ScramServerOptions) {
    this.name = name;
    this.#ctx = ctx;
    this.#hash = MECHANISMS[name].hash;
    this.#plus = MECHANISMS[name].plus;
    this.#fixedServerNonce = options.serverNonce;
  }

  async step(data: Buffer | undefined): Promise<SaslStep> {
    const state = this.#state;
    // A failure at any point ends the exchange; the handlers move the state on when they succeed.
    this.#state = 'done';
    switch (state) {
      case 'start':
        if (data === undefined) {
          // SCRAM is client-first: without an initial response, ask for one (RFC 4422 §5).
          this.#state = 'awaiting-first';
          return { kind: 'challenge', data: Buffer.alloc(0) };
        }
        return this.#clientFirst(data);
      case 'awaiting-first':
        return this.#clientFirst(data ?? Buffer.alloc(0));
      case 'awaiting-final':
        return this.#clientFinal(data ?? Buffer.alloc(0));
      case 'done':
        throw malformed('SCRAM exchange already finished');
    }
  }

  async #clientFirst(data: Buffer): Promise<SaslStep> {
    const first = parseClientFirst(decodeMessage(data));
    const cbData = this.#checkChannelBinding(first);
    const username = prepareSaslString(first.username, 'query');

    const stored = await this.#ctx.getScramCredentials(username, this.#hash);
    this.#userKnown = stored !== undefined && stored.hash === this.#hash;
    const creds = this.#userKnown && stored ? stored : fakeCredentials(this.#hash, username);

    const serverNonce = this.#fixedServerNonce ?? randomBytes(SERVER_NONCE_BYTES).toString('base64');
    const nonce = first.clientNonce + serverNonce;
    const serverFirst = `r=${nonce},s=${creds.salt.toString('base64')},i=${creds.iterations}`;

    this.#username = username;
    this.#authzid = first.authzid;
    this.#expectedChannelBinding = Buffer.concat([Buffer.from(first.gs2Header, 'utf8'), cbData]).toString('base64');
    this.#nonce = nonce;
    this.#authMessagePrefix = `${first.bare},${serverFirst}`;
    this.#creds = creds;
    this.#state = 'awaiting-final';
    return { kind: 'challenge', data: Buffer.from(serverFirst, 'utf8') };
  }

  /** RFC 5802 §6 and RFC 9266: returns the channel-binding data that c= must carry after the gs2 header. */
  #checkChannelBinding(first: ClientFirst): Buffer {
    if (this.#plus) {
      // A -PLUS mechanism is channel binding; 'n' or 'y' under it contradicts the chosen mechanism.
      if (first.cbFlag !== 'p') throw notAuthorized('-PLUS mechanism requires channel binding');
    } else {
      if (first.cbFlag === 'p') throw notAuthorized('channel binding requires a -PLUS mechanism');
      // 'y': the client could bind but thinks we cannot. We offered -PLUS, so something stripped it.
      if (first.cbFlag === 'y' && this.#ctx.plusOffered) throw notAuthorized('channel binding downgrade detected');
      return Buffer.alloc(0);
    }
    if (first.cbName !== CHANNEL_BINDING_TYPE) throw notAuthorized('unsupported channel-binding type');
    const cb = this.#ctx.channelBinding(CHANNEL_BINDING_TYPE);
    if (cb === undefined || cb.length === 0) throw notAuthorized('tls-exporter channel binding unavailable');
    return cb;
  }

  async #clientFinal(data: Buffer): Promise<SaslStep> {
    const final = parseClientFinal(decodeMessage(data));
    if (decodeStrictBase64(final.channelBinding) === undefined) throw malformed('bad base64 in c=');
    const proof = decodeStrictBase64(final.proof);
    if (proof === undefined) throw malformed('bad base64 in p=');
    const creds = this.#creds;
    if (creds === undefined) throw malformed('SCRAM state lost');

    // c= must repeat our expectation byte for byte, not merely decode to the same bytes.
    if (!safeEqual(Buffer.from(final.channelBinding), Buffer.from(this.#expectedChannelBinding))) {
      throw notAuthorized('channel binding mismatch');
    }
    if (!safeEqual(Buffer.from(final.nonce), Buffer.from(this.#nonce))) throw notAuthorized('nonce mismatch');

    const authMessage = `${this.#authMessagePrefix},${final.withoutProof}`;
    const length = SCRAM_HASH_LENGTH[this.#hash];
    // Run the whole check for unknown users too, then refuse: same work, same answer.
    let proofOk = false;
    if (proof.length === length && creds.storedKey.length === length) {
      const signature = scramHmac(this.#hash, creds.storedKey, authMessage);
      const clientKey = Buffer.alloc(length);
      for (let i = 0; i < length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
      proofOk = safeEqual(scramDigest(this.#hash, clientKey), creds.storedKey);
    }
    this.#creds = undefined;
    if (!proofOk || !this.#userKnown) throw notAuthorized();

    // Only after authentication, so a stranger learns nothing from the authzid answer.
    if (this.#authzid !== undefined && !this.#ctx.authzidMatches(this.#authzid, this.#username)) {
      throw new SaslFailure('invalid-authzid');
    }
    const serverSignature = scramHmac(this.#hash, creds.serverKey, authMessage);
    return { kind: 'success', username: this.#username, data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8') };
  }
}

/** Internal: createMechanism() is the public way in; options exist for tests only. */
export function createScramMechanism(
  name: ScramMechanismName,
  ctx: SaslServerContext,
  options: ScramServerOptions = {},
): SaslServerMechanism {
  return new ScramServerMechanism(name, ctx, options);
}
