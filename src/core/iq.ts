// The IQ table: handlers keyed by type, payload namespace and element name, and by target (the host itself or
// an account's bare JID). A handler returns its payload, or undefined for an empty result, or throws StanzaError.
import type { Element } from '../xml/element.ts';
import type { StanzaEvent } from './hook-map.ts';

export type IqTarget = 'host' | 'account';
export type IqHandler = (event: StanzaEvent, payload: Element) => Element | undefined | void | Promise<Element | undefined | void>;
type Entry = { handler: IqHandler; owner: string };

export class IqTable {
  private readonly entries = new Map<string, Entry>();

  register(type: 'get' | 'set', ns: string, name: string, handler: IqHandler, targets: IqTarget[], owner: string): () => void {
    const keys = targets.map((t) => `${t}\u0000${type}\u0000${ns}\u0000${name}`);
    for (const k of keys) {
      if (this.entries.has(k)) throw new Error(`IQ handler for ${type} ${ns} ${name} registered twice (by ${this.entries.get(k)?.owner} and ${owner})`);
      this.entries.set(k, { handler, owner });
    }
    return () => { for (const k of keys) this.entries.delete(k); };
  }

  find(target: IqTarget, type: string, ns: string, name: string): IqHandler | undefined {
    return this.entries.get(`${target}\u0000${type}\u0000${ns}\u0000${name}`)?.handler;
  }
}
