// Parses one stanza from a string (stored stanzas, tests) with the same rules as a client stream.
import type { Element } from './element.ts';
import { NS } from './ns.ts';
import { StreamParser } from './parser.ts';

const HEADER = `<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`;

/** The first top-level element of `text`, or undefined if it is not well-formed. */
export function parseElement(text: string, maxBytes = 1 << 24): Element | undefined {
  let result: Element | undefined;
  let failed = false;
  const parser = new StreamParser({
    streamStart: () => undefined,
    stanza: (el) => { result ??= el; },
    streamEnd: () => undefined,
    error: () => { failed = true; },
  }, { maxStanzaBytes: maxBytes, maxDepth: 1024, maxAttrs: 4096 });
  parser.write(Buffer.from(HEADER + text, 'utf8'));
  return failed ? undefined : result;
}
