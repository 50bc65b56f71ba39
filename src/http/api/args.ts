// Reads a command's arguments from the JSON body, naming the argument at fault in every error. Arguments a
// command does not know are ignored, as ejabberd's mod_http_api does.
import { StanzaError } from '../../core/errors.ts';
import { Jid } from '../../xmpp/jid.ts';
import { badArgument } from './errors.ts';

export class Args {
  private readonly body: Record<string, unknown>;

  constructor(body: Record<string, unknown>) {
    this.body = body;
  }

  has(name: string): boolean {
    return this.body[name] !== undefined && this.body[name] !== null;
  }

  /** A required string; empty only with `allowEmpty`. Numbers are taken as their decimal text. */
  string(name: string, opts: { allowEmpty?: boolean } = {}): string {
    const v = this.body[name];
    if (v === undefined || v === null) throw badArgument(name, 'missing');
    if (typeof v !== 'string' && typeof v !== 'number') throw badArgument(name, 'must be a string');
    const s = String(v);
    if (s === '' && !opts.allowEmpty) throw badArgument(name, 'must not be empty');
    return s;
  }

  optionalString(name: string): string | undefined {
    return this.has(name) ? this.string(name, { allowEmpty: true }) : undefined;
  }

  /** One of `values`, or `fallback` when absent. */
  choice<T extends string>(name: string, values: readonly T[], fallback?: T): T {
    if (!this.has(name) && fallback !== undefined) return fallback;
    const s = this.string(name);
    if (!(values as readonly string[]).includes(s)) throw badArgument(name, `must be one of ${values.join(', ')}`);
    return s as T;
  }

  stringList(name: string): string[] {
    const v = this.body[name];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw badArgument(name, 'must be a list of strings');
    return v as string[];
  }

  /** A JID, parsed and prepared (RFC 7622). */
  jid(name: string): Jid {
    const s = this.string(name);
    try {
      return Jid.parse(s);
    } catch (err) {
      if (err instanceof StanzaError) throw badArgument(name, `not a valid JID (${err.text ?? err.condition})`);
      throw err;
    }
  }
}
