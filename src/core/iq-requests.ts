// IQ requests the server originates (RFC 6120 §8.2.3): send a get or set, get a promise for the result, which an
// error reply rejects with its StanzaError and silence rejects after a timeout.
import { randomBytes } from 'node:crypto';
import type { Element } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';
import { Jid } from '../xmpp/jid.ts';
import { STANZA_CONDITIONS, StanzaError, type StanzaCondition, type StanzaErrorType } from './errors.ts';
import type { StanzaEvent } from './hook-map.ts';
import type { Host } from './host.ts';

export const DEFAULT_IQ_TIMEOUT_MS = 30_000;

type Pending = {
  /** The JID the request went to: only it may answer (an answer from anyone else is not ours). */
  to: string;
  resolve(result: Element): void;
  reject(err: StanzaError): void;
  timer: NodeJS.Timeout;
};

export class IqRequests {
  private readonly host: Host;
  private readonly pending = new Map<string, Pending>();

  constructor(host: Host) {
    this.host = host;
  }

  get size(): number {
    return this.pending.size;
  }

  /**
   * Sends an IQ get or set (from the host unless it names another local `from`) and resolves with the result
   * stanza. The id is replaced by an unguessable one, so a third party cannot answer in the recipient's place.
   */
  request(stanza: Element, timeoutMs = DEFAULT_IQ_TIMEOUT_MS): Promise<Element> {
    const type = stanza.attrs.type;
    if (stanza.name !== 'iq' || (type !== 'get' && type !== 'set')) throw new Error('only IQ get and set can be requests');
    const rawTo = stanza.attrs.to;
    if (rawTo === undefined) throw new Error('an IQ request needs a recipient');
    const to = Jid.parse(rawTo);
    const from = stanza.attrs.from !== undefined ? Jid.parse(stanza.attrs.from) : this.host.jid;
    const id = `parley-${randomBytes(12).toString('base64url')}`;
    stanza.attrs.id = id;
    stanza.attrs.from = from.toString();
    stanza.attrs.to = to.toString();
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new StanzaError('remote-server-timeout', `No answer from ${to.toString()}`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { to: to.toString(), resolve, reject, timer });
      void this.host.server.router.route(stanza, from, to);
    });
  }

  /** Settles the request an IQ result or error answers; false when nothing was waiting for it. */
  settle(e: StanzaEvent): boolean {
    const id = e.stanza.attrs.id;
    if (id === undefined) return false;
    const p = this.pending.get(id);
    if (!p || p.to !== e.from.toString()) return false;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (e.stanza.attrs.type === 'result') p.resolve(e.stanza);
    else p.reject(stanzaErrorOf(e.stanza));
    return true;
  }
}

/** The StanzaError an error reply carries (undefined-condition when it names none we know). */
export function stanzaErrorOf(stanza: Element): StanzaError {
  const error = stanza.getChild('error');
  let condition: StanzaCondition = 'undefined-condition';
  let text: string | undefined;
  for (const c of error?.getElements() ?? []) {
    if (c.attrs.xmlns !== NS.STANZAS) continue;
    if (c.name === 'text') text = c.text();
    else if (c.name in STANZA_CONDITIONS) condition = c.name as StanzaCondition;
  }
  const t = error?.attrs.type;
  const type = t === 'auth' || t === 'cancel' || t === 'continue' || t === 'modify' || t === 'wait' ? (t as StanzaErrorType) : undefined;
  return new StanzaError(condition, text, type ? { type } : undefined);
}

const byHost = new WeakMap<Host, IqRequests>();

/** The host's table of open requests (one per host, made on first use). */
export function iqRequestsOf(host: Host): IqRequests {
  let r = byHost.get(host);
  if (!r) {
    r = new IqRequests(host);
    byHost.set(host, r);
  }
  return r;
}
