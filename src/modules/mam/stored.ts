// Archived stanzas back into elements: one parser pass for a whole page instead of one parser per message.
import type { Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { parseElement } from '../../xml/parse.ts';
import { StreamParser } from '../../xml/parser.ts';

const HEADER = `<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`;
const LIMITS = { maxStanzaBytes: 1 << 24, maxDepth: 1024, maxAttrs: 4096 };

/**
 * The stored stanzas as elements, in order, each declaring jabber:client: inside <forwarded/> the default
 * namespace is no longer the stream's. An unreadable one is undefined.
 */
export function parseStored(texts: string[]): Array<Element | undefined> {
  let out: Array<Element | undefined> = [];
  let failed = false;
  const parser = new StreamParser({
    streamStart: () => undefined,
    stanza: (el) => { out.push(el); },
    streamEnd: () => undefined,
    error: () => { failed = true; },
  }, LIMITS);
  parser.write(Buffer.from(HEADER + texts.join(''), 'utf8'));
  // One bad text would shift every element after it: read them one by one instead.
  if (failed || out.length !== texts.length) out = texts.map((t) => parseElement(t));
  for (const el of out) if (el) el.attrs = { xmlns: NS.CLIENT, ...el.attrs };
  return out;
}
