// RFC 4505: Anonymous Simple Authentication and Security Layer (SASL) Mechanism, server side.
import { SaslFailure } from '../../core/errors.ts';
import type { SaslServerContext, SaslServerMechanism, SaslStep } from './mechanism.ts';

/** The optional trace information is at most 255 characters of UTF-8 (RFC 4505 §2). */
const MAX_TRACE_BYTES = 255 * 4;

class AnonymousServerMechanism implements SaslServerMechanism {
  readonly name = 'ANONYMOUS';
  readonly #ctx: SaslServerContext;
  #done = false;

  constructor(ctx: SaslServerContext) {
    this.#ctx = ctx;
  }

  async step(data: Buffer | undefined): Promise<SaslStep> {
    if (this.#done) throw new SaslFailure('malformed-request', 'ANONYMOUS exchange already finished');
    this.#done = true;
    if (data !== undefined && data.length > MAX_TRACE_BYTES) throw new SaslFailure('malformed-request', 'trace information too long');
    const make = this.#ctx.anonymousUsername;
    if (!make) throw new SaslFailure('invalid-mechanism');
    return { kind: 'success', username: make() };
  }
}

export function createAnonymousMechanism(ctx: SaslServerContext): SaslServerMechanism {
  return new AnonymousServerMechanism(ctx);
}
