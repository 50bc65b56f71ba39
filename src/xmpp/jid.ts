// XMPP addresses: RFC 7622 (Extensible Messaging and Presence Protocol (XMPP): Address Format).
import { StanzaError } from '../core/errors.ts';
import { MAX_PART_BYTES, prepareDomainpart, prepareLocalpart, prepareResourcepart } from './precis.ts';

/** Three parts of at most 1023 bytes and two separators: anything longer is refused before any work. */
const MAX_JID_BYTES = MAX_PART_BYTES * 3 + 2;

/** A server parses the same addresses over and over; parsed results are kept, oldest evicted first. */
const CACHE_MAX = 10_000;
/** Longer inputs are rare and skip the cache, so hostile ones cannot make it hold much memory. */
const CACHE_MAX_KEY = 256;
const cache = new Map<string, Jid>();

/** An immutable, prepared XMPP address. Empty `local` or `resource` means the part is absent. */
export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  readonly #string: string;
  readonly #bareString: string;
  // Private fields stay writable on a frozen object, so the bare form can be made on first use.
  #bare: Jid | undefined;

  private constructor(local: string, domain: string, resource: string) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.#bareString = local === '' ? domain : `${local}@${domain}`;
    this.#string = resource === '' ? this.#bareString : `${this.#bareString}/${resource}`;
    Object.freeze(this);
  }

  /** Parses and PRECIS-prepares; throws StanzaError('jid-malformed') on any invalid input. */
  static parse(s: string): Jid {
    const hit = cache.get(s);
    if (hit !== undefined) return hit;
    const jid = Jid.#parseUncached(s);
    if (s.length <= CACHE_MAX_KEY) {
      if (cache.size >= CACHE_MAX) {
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
      cache.set(s, jid);
    }
    return jid;
  }

  /** Builds from parts, preparing each; an empty local or resource means none. Throws jid-malformed. */
  static of(local: string, domain: string, resource?: string): Jid {
    return new Jid(
      local === '' ? '' : prepareLocalpart(local),
      prepareDomainpart(domain),
      resource === undefined || resource === '' ? '' : prepareResourcepart(resource),
    );
  }

  /** Parse, returning undefined instead of throwing. */
  static tryParse(s: string): Jid | undefined {
    try {
      return Jid.parse(s);
    } catch (err) {
      if (err instanceof StanzaError) return undefined;
      throw err;
    }
  }

  /** RFC 7622 §3.1: the resource is everything after the first '/', the localpart everything before the first '@' ahead of it. */
  static #parseUncached(s: string): Jid {
    // Code units never outnumber UTF-8 bytes, so the exact count is needed only for mid-length input.
    if (s.length > MAX_JID_BYTES || (s.length * 3 > MAX_JID_BYTES && Buffer.byteLength(s, 'utf8') > MAX_JID_BYTES)) {
      throw StanzaError.jidMalformed(`address longer than ${MAX_JID_BYTES} bytes`);
    }
    const slash = s.indexOf('/');
    const head = slash === -1 ? s : s.slice(0, slash);
    const at = head.indexOf('@');
    const local = at === -1 ? '' : prepareLocalpart(head.slice(0, at));
    const domain = prepareDomainpart(at === -1 ? head : head.slice(at + 1));
    const resource = slash === -1 ? '' : prepareResourcepart(s.slice(slash + 1));
    return new Jid(local, domain, resource);
  }

  get isBare(): boolean {
    return this.resource === '';
  }

  /** This address without its resource: the same instance when already bare. */
  get bare(): Jid {
    if (this.resource === '') return this;
    return (this.#bare ??= new Jid(this.local, this.domain, ''));
  }

  get bareString(): string {
    return this.#bareString;
  }

  /** The same local and domain with a new, prepared resource; throws jid-malformed. */
  withResource(resource: string): Jid {
    return new Jid(this.local, this.domain, prepareResourcepart(resource));
  }

  equals(other: Jid): boolean {
    return this === other || this.#string === other.#string;
  }

  /** The canonical form local@domain/resource. */
  toString(): string {
    return this.#string;
  }
}
