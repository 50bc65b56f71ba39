// The streaming parser of xmpp.js's XML package (which ships no types), used by tests that read raw streams.
declare module '@xmpp/xml' {
  import type { EventEmitter } from 'node:events';
  export class Parser extends EventEmitter {
    write(data: string): void;
    end(data?: string): void;
  }
}
