// An independent XML reader (saxes, namespace-aware) as the fuzzers' oracle: whether a document is well-formed
// and namespace-well-formed, and the tree it holds. Parley's parser is never used to judge Parley's output.
import { SaxesParser } from 'saxes';

export type OracleNode = { local: string; uri: string; attrs: Record<string, string>; children: OracleNode[]; text: string };

export type OracleResult =
  | { ok: true; roots: OracleNode[]; restricted: boolean }
  | { ok: false; why: string };

/**
 * Reads `text` as one XML document. `restricted` tells whether it holds what RFC 6120 §11.1 forbids on a stream
 * (comments, processing instructions, a DTD) and which a well-formed document may have.
 */
export function readXml(text: string): OracleResult {
  const parser = new SaxesParser({ xmlns: true, position: false });
  let why: string | undefined;
  let restricted = false;
  const roots: OracleNode[] = [];
  const stack: OracleNode[] = [];
  parser.on('error', (err) => { why ??= err.message; });
  parser.on('comment', () => { restricted = true; });
  parser.on('processinginstruction', () => { restricted = true; });
  parser.on('doctype', () => { restricted = true; });
  parser.on('opentag', (tag) => {
    const attrs: Record<string, string> = {};
    for (const a of Object.values(tag.attributes)) attrs[a.name] = a.value;
    const node: OracleNode = { local: tag.local, uri: tag.uri, attrs, children: [], text: '' };
    const parent = stack.at(-1);
    if (parent) parent.children.push(node);
    else roots.push(node);
    stack.push(node);
  });
  parser.on('text', (t) => { const top = stack.at(-1); if (top) top.text += t; });
  parser.on('cdata', (t) => { const top = stack.at(-1); if (top) top.text += t; });
  parser.on('closetag', () => { stack.pop(); });
  try {
    parser.write(text).close();
  } catch (err) {
    why ??= (err as Error).message;
  }
  if (why !== undefined) return { ok: false, why };
  if (roots.length !== 1) return { ok: false, why: `${roots.length} root elements` };
  return { ok: true, roots, restricted };
}
