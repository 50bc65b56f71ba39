// RFC 4616: The PLAIN Simple Authentication and Security Layer (SASL) Mechanism, server side.
import { SaslFailure } from '../../core/errors.ts';
import { prepareSaslString } from './credentials.ts';
import type { SaslServerContext, SaslServerMechanism, SaslStep } from './mechanism.ts';

const NUL = 0;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodePart(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new SaslFailure('malformed-request', 'PLAIN message is not valid UTF-8');
  }
}

class PlainServerMechanism implements SaslServerMechanism {
  readonly name = 'PLAIN';
  readonly #ctx: SaslServerContext;
  #state: 'start' | 'awaiting-response' | 'done' = 'start';

  constructor(ctx: SaslServerContext) {
    this.#ctx = ctx;
  }

  async step(data: Buffer | undefined): Promise<SaslStep> {
    const state = this.#state;
    // Whatever happens below, this exchange cannot go on except through the empty challenge.
    this.#state = 'done';
    if (state === 'done') throw new SaslFailure('malformed-request', 'PLAIN exchange already finished');
    // The core does not offer PLAIN in the clear; refuse anyway should a client pick it.
    if (!this.#ctx.secure) throw new SaslFailure('encryption-required');
    if (state === 'start' && (data === undefined || data.length === 0)) {
      // RFC 4422 §5: no initial response to a client-first mechanism -> an empty challenge.
      this.#state = 'awaiting-response';
      return { kind: 'challenge', data: Buffer.alloc(0) };
    }
    return this.#verify(data ?? Buffer.alloc(0));
  }

  async #verify(message: Buffer): Promise<SaslStep> {
    // message = [authzid] UTF8NUL authcid UTF8NUL passwd: exactly two NULs.
    const first = message.indexOf(NUL);
    const second = first < 0 ? -1 : message.indexOf(NUL, first + 1);
    if (second < 0 || message.indexOf(NUL, second + 1) >= 0) {
      throw new SaslFailure('malformed-request', 'PLAIN message needs exactly two NUL separators');
    }
    const authzid = decodePart(message.subarray(0, first));
    const authcid = decodePart(message.subarray(first + 1, second));
    const passwd = decodePart(message.subarray(second + 1));
    if (authcid === '' || passwd === '') throw new SaslFailure('malformed-request', 'empty authcid or password');

    // RFC 4616 §5: authcid and passwd are prepared (SASLprep); the authzid is not.
    const username = prepareSaslString(authcid, 'query');
    const password = prepareSaslString(passwd, 'query');
    const verified = await this.#ctx.verifyPlain(username, password);
    if (verified === false) throw new SaslFailure('not-authorized');
    const user = typeof verified === 'string' ? verified : username;
    if (authzid !== '' && !this.#ctx.authzidMatches(authzid, user)) throw new SaslFailure('invalid-authzid');
    return { kind: 'success', username: user };
  }
}

export function createPlainMechanism(ctx: SaslServerContext): SaslServerMechanism {
  return new PlainServerMechanism(ctx);
}
