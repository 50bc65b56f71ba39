// XML stream parser benchmark: Parley's StreamParser against ltx and saxes on the same byte stream.
// Run: node bench/parser-bench.ts [stanzas]   (default 200000; BENCH_ONLY=parley|ltx|saxes runs one in-process)
import { execFileSync } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { SaxesParser } from 'saxes';
import { StreamParser } from '../src/xml/parser.ts';

type LtxElement = { name: string; parent: LtxElement | null; children: unknown[]; append(el: LtxElement): void; t(text: string): void };
type LtxSax = {
  on(ev: 'startElement', f: (name: string, attrs: Record<string, string>) => void): void;
  on(ev: 'endElement', f: (name: string) => void): void;
  on(ev: 'text', f: (text: string) => void): void;
  write(data: string): void;
};
// ltx ships no type declarations; its default SAX parser and Element, as xmpp.js uses them.
const { default: LtxParser } = (await import('ltx/src/parsers/ltx.js' as string)) as { default: new () => LtxSax };
const { default: LtxEl } = (await import('ltx/src/Element.js' as string)) as {
  default: new (name: string, attrs: Record<string, string>) => LtxElement;
};

const N = Number(process.argv[2] ?? 200_000);
const CHUNK = 16 * 1024;
const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " +
  "to='example.com' from='romeo@example.net' version='1.0' xml:lang='en'>";

const WORDS = ['hello', 'there', 'how', 'are', 'you', 'doing', 'today', 'see', 'you', 'at', 'the', 'café', 'tonight', '☺', 'ok'];
function stanza(i: number): string {
  const id = `id-${i.toString(36)}-${(i * 7919 % 100000).toString(36)}`;
  const to = `juliet${i % 97}@capulet.example/balcony`;
  const from = `romeo${i % 89}@montague.example/orchard`;
  switch (i % 10) {
    case 0:
    case 1: // presence with caps
      return `<presence from='${from}' to='${to}' id='${id}'><show>away</show><status>Out &amp; about, back at ${i % 24}h</status>` +
        `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>`;
    case 2: // roster push
      return `<iq type='set' id='${id}' to='${to}'><query xmlns='jabber:iq:roster' ver='ver${i}'>` +
        `<item jid='nurse${i % 50}@example.com' name='Nurse &quot;${i % 50}&quot;' subscription='both'><group>Friends &amp; Family</group></item></query></iq>`;
    default: { // chat message with receipts and chat state
      let body = '';
      for (let k = 0; body.length < 60 + (i % 80); k++) body += WORDS[(i + k * 3) % WORDS.length] + ' ';
      return `<message from='${from}' to='${to}' type='chat' id='${id}' xml:lang='en'><body>${body}&lt;3 &amp; more</body>` +
        `<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/>` +
        `<origin-id xmlns='urn:xmpp:sid:0' id='${id}'/></message>`;
    }
  }
}

function buildInput(n: number): Buffer {
  const parts: string[] = [HEADER];
  for (let i = 0; i < n; i++) parts.push(stanza(i));
  return Buffer.from(parts.join(''), 'utf8');
}

type Runner = (input: Buffer) => number; // returns stanzas seen

function chunks(input: Buffer, f: (c: Buffer) => void): void {
  for (let i = 0; i < input.length; i += CHUNK) f(input.subarray(i, i + CHUNK));
}

const parley: Runner = (input) => {
  let count = 0;
  let failed: Error | undefined;
  const p = new StreamParser({
    streamStart: () => undefined,
    stanza: (el) => { if (el.children.length > 0) count++; },
    streamEnd: () => undefined,
    error: (e) => { failed = e; },
  }, { maxStanzaBytes: 262144, maxDepth: 64, maxAttrs: 256 });
  chunks(input, (c) => p.write(c));
  if (failed) throw failed;
  return count;
};

// The way xmpp.js drives ltx on a stream: ltx's SAX parser, ltx Elements, one tree per top-level child.
const ltx: Runner = (input) => {
  let count = 0;
  const sax = new LtxParser();
  let root: LtxElement | null = null;
  let cursor: LtxElement | null = null;
  sax.on('startElement', (name, attrs) => {
    const el = new LtxEl(name, attrs);
    if (root === null) root = el;
    else if (cursor !== root) (cursor as LtxElement).append(el);
    cursor = el;
  });
  sax.on('endElement', (name) => {
    const el = cursor as LtxElement;
    if (name !== el.name) throw new Error('mismatched end tag');
    if (el === root) return;
    if (el.parent === null) { el.parent = root; if (el.children.length > 0) count++; cursor = root; return; }
    cursor = el.parent;
  });
  sax.on('text', (text) => { if (cursor !== null) cursor.t(text); });
  const dec = new StringDecoder('utf8');
  chunks(input, (c) => sax.write(dec.write(c)));
  return count;
};

// saxes with namespace processing, building a light tree like ours from its events.
type Light = { name: string; attrs: Record<string, string>; children: Array<Light | string> };
const saxes: Runner = (input) => {
  let count = 0;
  const sax = new SaxesParser({ xmlns: true, position: false });
  const stack: Light[] = [];
  sax.on('opentag', (tag) => {
    const attrs: Record<string, string> = {};
    for (const k in tag.attributes) attrs[k] = (tag.attributes[k] as { value: string }).value;
    const el: Light = { name: tag.local, attrs, children: [] };
    const parent = stack.at(-1);
    if (parent !== undefined && stack.length > 1) parent.children.push(el);
    stack.push(el);
  });
  sax.on('closetag', () => {
    const el = stack.pop() as Light;
    if (stack.length === 1 && el.children.length > 0) count++;
  });
  const onText = (text: string): void => {
    const cur = stack.at(-1);
    if (cur !== undefined && stack.length > 1) cur.children.push(text);
  };
  sax.on('text', onText);
  sax.on('cdata', onText);
  sax.on('error', (e) => { throw e; });
  const dec = new StringDecoder('utf8');
  chunks(input, (c) => sax.write(dec.write(c)));
  return count;
};

type Result = { parser: string; stanzasPerSec: number; mbPerSec: number; ms: number };

function measure(name: string, run: Runner): Result {
  const input = buildInput(N);
  run(buildInput(Math.min(N, 20_000))); // warm-up
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    const count = run(input);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (count !== N) throw new Error(`${name} saw ${count} stanzas, expected ${N}`);
  }
  times.sort((a, b) => a - b);
  const ms = times[1] as number;
  const mb = input.length / 1e6;
  return { parser: name, stanzasPerSec: Math.round(N / (ms / 1000)), mbPerSec: Math.round((mb / (ms / 1000)) * 10) / 10, ms: Math.round(ms) };
}

const runners: Array<[string, Runner]> = [['parley StreamParser', parley], ['ltx', ltx], ['saxes (xmlns)', saxes]];
const child = process.env.BENCH_CHILD;
const only = process.env.BENCH_ONLY; // BENCH_ONLY=parley (or ltx, saxes): one parser in this process, e.g. under --cpu-prof

if (child !== undefined) {
  const [name, run] = runners.find(([n]) => n === child) as [string, Runner];
  console.log(JSON.stringify(measure(name, run)));
} else {
  const results: Result[] = [];
  for (const [name, run] of runners) {
    if (only !== undefined) {
      if (name.startsWith(only)) results.push(measure(name, run));
      continue;
    }
    // Each parser in its own process, so one's garbage and JIT state cannot skew another's figures.
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), String(N)], {
      env: { ...process.env, BENCH_CHILD: name },
      encoding: 'utf8',
    });
    results.push(JSON.parse(out.trim().split('\n').at(-1) as string) as Result);
  }
  const bytes = Buffer.byteLength(HEADER) + Array.from({ length: N }, (_, i) => Buffer.byteLength(stanza(i))).reduce((a, b) => a + b, 0);
  console.log(`input: ${N} stanzas, ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / N)} B/stanza avg), ${CHUNK / 1024} KiB chunks; median of 3 runs after a warm-up, one process per parser`);
  console.log('| parser | stanzas/s | MB/s | ms |');
  console.log('|---|---:|---:|---:|');
  for (const r of results) console.log(`| ${r.parser} | ${r.stanzasPerSec.toLocaleString('en-US')} | ${r.mbPerSec} | ${r.ms} |`);
  console.log(JSON.stringify({ bench: 'xml-parser', node: process.version, stanzas: N, bytes, chunk: CHUNK, results }));
}
