// The few parts of xmpp.js's component package (which ships no types) that the tests use.
declare module '@xmpp/component' {
  import type { EventEmitter } from 'node:events';
  import type { Element } from '@xmpp/client';
  export { xml } from '@xmpp/client';
  export interface Component extends EventEmitter {
    start(): Promise<{ toString(): string }>;
    stop(): Promise<void>;
    send(el: Element): Promise<void>;
    reconnect: { stop(): void };
  }
  export function component(opts: { service: string; domain: string; password: string }): Component;
}
