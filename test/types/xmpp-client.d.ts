// The few parts of xmpp.js (which ships no types) that the tests use.
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events';
  export interface Element {
    name: string;
    attrs: Record<string, string>;
    children: Array<Element | string>;
    getChild(name: string, xmlns?: string): Element | undefined;
    getChildren(name: string, xmlns?: string): Element[];
    getChildText(name: string, xmlns?: string): string | null;
    getText(): string;
    is(name: string, xmlns?: string): boolean;
    toString(): string;
  }
  export function xml(name: string, attrs?: Record<string, string | undefined> | null, ...children: Array<Element | string | undefined>): Element;
  export interface Client extends EventEmitter {
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
    reconnect: { stop(): void };
  }
  export function client(opts: { service: string; domain?: string; username?: string; password?: string; resource?: string }): Client;
}
