// RFC 6120 §11: streaming parser for the restricted XML (UTF-8 XML 1.0 with namespaces) of XMPP streams.
//
// Design notes (why it looks like this):
// - Bytes are validated and decoded per chunk (native TextDecoder), then scanned as a string with
//   indexOf/charCodeAt; names, values and text are sliced out in runs, never built char by char.
// - A token cut by a chunk boundary is kept raw and completed when its end arrives; a partial tag
//   only remembers whether it is inside quotes, so resuming never rescans (no quadratic trickle).
// - Every error is reported at a position that does not depend on how the input was chunked, so
//   byte-by-byte input yields the same stanzas and the same error as one big chunk.
// - The open-element stack is explicit: no recursion proportional to input depth anywhere.
import { Element } from './element.ts';
import type { Attrs } from './element.ts';
import { StreamError } from '../core/errors.ts';
import type { StreamCondition } from '../core/errors.ts';
import { NS } from './ns.ts';

export type ParserLimits = { maxStanzaBytes: number; maxDepth: number; maxAttrs: number };

/** Conventional limits: 256 KiB stanzas, 64 levels below a stanza, 256 attributes per element. */
export const DEFAULT_PARSER_LIMITS: ParserLimits = { maxStanzaBytes: 262144, maxDepth: 64, maxAttrs: 256 };

export interface StreamParserHandler {
  /** The stream header. `name` is the local name, `ns` its resolved namespace, `attrs` the non-xmlns attributes as sent (e.g. to, from, version, xml:lang, id); `contentNs` is the default namespace declared on the header (e.g. 'jabber:client'), or '' if none. */
  streamStart(name: string, ns: string, attrs: Attrs, contentNs: string): void;
  /** One complete top-level element (a stanza or a nonza). */
  stanza(el: Element): void;
  /** </stream:stream> received. */
  streamEnd(): void;
  /** A fatal error; the parser ignores all further input until reset(). */
  error(err: StreamError): void;
}

const XML_NS = NS.XML;
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';
const STREAM_NS = NS.STREAM;

// Parser states between chunks.
const ST_CONTENT = 0; // prolog, stream level or element content (by depth)
const ST_TAG = 1; // inside a start or end tag; `acc` holds it raw from '<'
const ST_BANG = 2; // after '<!', deciding between CDATA, comment and DOCTYPE
const ST_CDATA = 3; // inside a CDATA section; `acc` holds its content so far
const ST_DECL = 4; // inside the XML declaration; `acc` holds it raw
const ST_DEAD = 5; // after an error or the end of the stream

// What a text run needs besides slicing.
const TF_AMP = 1;
const TF_CR = 2;
const TF_BAD = 4;
const TF_CDEND = 8; // maybe ']]>'

const INCOMPLETE = -1; // the tag runs past the end of the string
const FAIL = -2; // the tag is malformed; errCond says why

// Character classes for every UTF-16 code unit, so scanning loops do one load per character and
// validate as they go (XML 1.0 5th ed. §2.2 Char, §2.3 NameStartChar/NameChar).
// NAME: 1 name start (and name char), 2 name char only, 3 ':' (QName separator).
const NAME = new Uint8Array(65536);
// TEXT: 1 '<', 2 '&', 3 ']' (maybe ']]>'), 4 not an XML character, 5 CR.
const TEXT = new Uint8Array(65536);
// ATTR: 1 '&', tab, LF or CR (decode, normalize), 2 a quote, 3 '<', 4 not an XML character.
const ATTR = new Uint8Array(65536);
{
  const range = (t: Uint8Array, a: number, b: number, v: number): void => { t.fill(v, a, b + 1); };
  for (const [a, b] of [[0x41, 0x5a], [0x61, 0x7a], [0x5f, 0x5f], [0xc0, 0xd6], [0xd8, 0xf6], [0xf8, 0x2ff],
    [0x370, 0x37d], [0x37f, 0x1fff], [0x200c, 0x200d], [0x2070, 0x218f], [0x2c00, 0x2fef], [0x3001, 0xd7ff],
    [0xf900, 0xfdcf], [0xfdf0, 0xfffd],
    // High surrogates of U+10000..U+EFFFF: the decoder only yields surrogates in valid pairs.
    [0xd800, 0xdb7f]] as const) range(NAME, a, b, 1);
  for (const [a, b] of [[0x30, 0x39], [0x2d, 0x2e], [0xb7, 0xb7], [0x300, 0x36f], [0x203f, 0x2040], [0xdc00, 0xdfff]] as const) {
    range(NAME, a, b, 2);
  }
  NAME[0x3a] = 3;
  for (const t of [TEXT, ATTR]) { range(t, 0, 0x1f, 4); t[9] = t[10] = t[13] = 0; t[0xfffe] = t[0xffff] = 4; }
  TEXT[0x3c] = 1; TEXT[0x26] = 2; TEXT[0x5d] = 3; TEXT[13] = 5;
  ATTR[0x26] = ATTR[9] = ATTR[10] = ATTR[13] = 1; ATTR[0x22] = ATTR[0x27] = 2; ATTR[0x3c] = 3;
}

/** An XML Name without colons (entity names may not contain them). */
function isNcName(s: string): boolean {
  if (NAME[s.charCodeAt(0)] !== 1) return false;
  for (let i = 1; i < s.length; i++) {
    const t = NAME[s.charCodeAt(i)];
    if (t !== 1 && t !== 2) return false;
  }
  return true;
}

// Element and attribute names repeat endlessly ('message', 'to', 'xmlns'...): reusing one string
// per name saves an allocation per name and makes property stores and comparisons cheap. Shared
// by all parsers; a collision only costs a fresh slice. Only names under 13 chars are kept: V8
// copies those when slicing, so a cached name never pins a whole chunk in memory.
const NAME_CACHE: string[] = new Array<string>(1024).fill('');
function nameAt(s: string, k: number, j: number): string {
  const len = j - k;
  const h = (s.charCodeAt(k) * 97 + s.charCodeAt(j - 1) * 31 + len * 7) & 1023;
  const cand = NAME_CACHE[h] as string;
  if (cand.length === len && s.startsWith(cand, k)) return cand;
  const name = s.slice(k, j);
  if (len <= 12) NAME_CACHE[h] = name;
  return name;
}

function isXmlChar(v: number): boolean {
  return v >= 0x20 ? v <= 0xd7ff || (v >= 0xe000 && v <= 0xfffd) || (v >= 0x10000 && v <= 0x10ffff)
    : v === 9 || v === 10 || v === 13;
}

const isWs = (c: number): boolean => c === 32 || c === 10 || c === 9 || c === 13;

// Characters XML 1.0 forbids anywhere (slow paths; the decoder already refuses lone surrogates).
const INVALID_CHAR = /[\0-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;
const CRLF = /\r\n?/g;
const ATTR_WS = /\r\n|[\t\n\r]/g;
const XML_DECL = /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*\?>$/;

// Stateless (non-streaming) use: partial sequences are carried by the parser itself.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Length of the prefix of `b` that holds no truncated-but-so-far-valid UTF-8 sequence at its end. */
function completeLength(b: Uint8Array): number {
  const len = b.length;
  let i = len - 1;
  while (i >= 0 && i >= len - 3 && ((b[i] as number) & 0xc0) === 0x80) i--;
  if (i < 0) return len;
  const lead = b[i] as number;
  const need = lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  const have = len - i;
  if (need === 0 || have >= need) return len;
  // Only carry a prefix that can still become valid; anything else is refused at once.
  if (have >= 2) {
    const b1 = b[i + 1] as number;
    const lo = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const hi = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return len;
  }
  return i;
}

/** Offset of the first byte of the first invalid UTF-8 sequence in b[0, end) (the error path only). */
function firstInvalidUtf8(b: Uint8Array, end: number): number {
  let i = 0;
  while (i < end) {
    const c = b[i] as number;
    if (c < 0x80) { i++; continue; }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c === 0xe0) lo = 0xa0; else if (c === 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c === 0xf0) lo = 0x90; else if (c === 0xf4) hi = 0x8f; }
    else return i;
    if (i + need >= end) return i; // truncated: a valid partial tail was carried, so this one is not
    const b1 = b[i + 1] as number;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) if (((b[i + k] as number) & 0xc0) !== 0x80) return i;
    i += need + 1;
  }
  return end;
}

function utf8Length(s: string, a: number, b: number): number {
  let n = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? 4 : c >= 0xdc00 && c <= 0xdfff ? 0 : 3;
  }
  return n;
}

export class StreamParser {
  private readonly handler: StreamParserHandler;
  private maxStanzaBytes = 0;
  private maxDepth = 0;
  private maxAttrs = 0;

  private state = ST_CONTENT;
  private gen = 0; // bumped by reset(), so a reset from inside a callback is noticed
  private stop = false; // an error ends the current write() even if error() called reset()
  private writing = false;
  private carry: Uint8Array | null = null; // truncated UTF-8 sequence awaiting its next bytes
  private docBytes = 0; // bytes seen since reset, for the encoding sniff
  private firstByte = -1;
  private declAllowed = true;
  private bomAllowed = true;

  // Byte accounting: limits are in bytes of raw input, scanning is on the decoded string.
  private s = '';
  private sBase = 0; // absolute byte offset of s[0]
  private sAscii = true;
  private curIdx = 0;
  private curByte = 0;
  // The counted top-level item (stanza, header, XML declaration): -1 none; -2 it starts at
  // s[elIdx], byte offset not computed yet (most items end in the chunk they start in, and a
  // bound on their length in chars then spares counting bytes); else the absolute byte offset.
  private elStart = -1;
  private elIdx = 0;

  // Open elements, index = depth (0 = the stream header).
  private depth = 0;
  private els: Array<Element | undefined> = [];
  private qnames: string[] = [];
  private refNs: string[] = []; // namespace a child's output xmlns is compared with
  private defNs: string[] = []; // default namespace in scope inside the element
  private marks: number[] = []; // undo-log length when the element opened
  private prefixes = new Map<string, string>();
  private undo: Array<string | undefined> = []; // [prefix, previous binding] pairs
  private contentNs = '';
  private text = ''; // decoded text pending for the innermost element
  private rawText = ''; // raw text run cut by a chunk boundary
  private rawFlags = 0; // what the scan of rawText found (TF_*)
  private acc = ''; // raw partial token (see the states)
  private quote = 0; // quote char a partial tag is inside of, or 0
  // How acc ends, tracked so that a long token trickling in never has its rope flattened per write:
  private accTail = 0; // in CDATA, trailing ']' count (0, 1, 2 or more); in the XML declaration, 1 if '?'

  // Scratch for the tag being parsed.
  private tq = '';
  private tqColon = -1;
  private selfClosing = false;
  private na = 0;
  private an: string[] = [];
  private av: string[] = [];
  private ac: number[] = [];
  private kind = new Uint8Array(16); // per attribute: 0 plain, 1 namespace declaration, 2 prefixed, 3 xml:
  private errCond: StreamCondition = 'not-well-formed';
  private errText = '';

  constructor(handler: StreamParserHandler, limits: ParserLimits) {
    this.handler = handler;
    this.setLimits(limits);
  }

  /** Limits may change mid-stream (they are raised after authentication). */
  setLimits(limits: ParserLimits): void {
    this.maxStanzaBytes = limits.maxStanzaBytes;
    this.maxDepth = limits.maxDepth;
    this.maxAttrs = limits.maxAttrs;
  }

  /** Stream restart (after STARTTLS or SASL success): a new stream header is expected, all state is dropped. */
  reset(): void {
    this.gen++;
    this.state = ST_CONTENT;
    this.carry = null;
    // A restart inside write() continues mid-chunk, where an encoding sniff would be meaningless.
    this.docBytes = this.writing ? 2 : 0;
    this.firstByte = -1;
    this.declAllowed = true;
    this.bomAllowed = true;
    this.elStart = -1;
    this.release();
    this.prefixes.clear();
    this.contentNs = '';
  }

  private release(): void {
    this.depth = 0;
    this.els.length = 0;
    this.qnames.length = 0;
    this.undo.length = 0;
    this.text = '';
    this.rawText = '';
    this.rawFlags = 0;
    this.acc = '';
    this.quote = 0;
    this.accTail = 0;
    this.an.length = 0;
    this.av.length = 0;
  }

  /** Feed raw bytes from the socket; calls the handler synchronously. */
  write(chunk: Uint8Array): void {
    if (this.state === ST_DEAD || chunk.length === 0) return;
    // RFC 6120 §11.6: only UTF-8. A UTF-16/32 stream starts with a BOM or a NUL byte.
    if (this.docBytes < 2) {
      const b0 = chunk[0] as number;
      if (this.docBytes === 0) {
        this.firstByte = b0;
        if (b0 === 0xfe || b0 === 0xff || b0 === 0) return this.die('unsupported-encoding', 'only UTF-8 is allowed');
      }
      const b1 = this.docBytes === 0 ? chunk[1] : b0;
      if (this.firstByte === 0x3c && b1 === 0) return this.die('unsupported-encoding', 'only UTF-8 is allowed');
    }
    this.docBytes += chunk.length;

    let bytes = chunk;
    const carry = this.carry;
    if (carry !== null) {
      bytes = new Uint8Array(carry.length + chunk.length);
      bytes.set(carry, 0);
      bytes.set(chunk, carry.length);
      this.carry = null;
    }
    const end = completeLength(bytes);
    let s: string;
    let sBytes = end;
    // Characters not allowed in XML are refused by the scanning loops, when their token ends.
    let bad = false;
    try {
      s = decoder.decode(end === bytes.length ? bytes : bytes.subarray(0, end));
    } catch {
      sBytes = firstInvalidUtf8(bytes, end);
      s = decoder.decode(bytes.subarray(0, sBytes));
      bad = true;
    }
    this.writing = true;
    this.stop = false;
    try {
      this.feed(s, sBytes);
      if (this.stop) return;
      if (bad) {
        this.fail('not-well-formed', s.length, 'invalid UTF-8');
        return;
      }
      if (end < bytes.length) this.carry = bytes.slice(end);
    } finally {
      this.writing = false;
      this.sBase += sBytes;
      this.s = '';
    }
  }

  private feed(s: string, sBytes: number): void {
    this.s = s;
    this.sAscii = sBytes === s.length;
    this.curIdx = 0;
    this.curByte = this.sBase;
    const n = s.length;
    let p = 0;
    while (p < n) {
      switch (this.state) {
        case ST_CONTENT: p = this.content(s, p); break;
        case ST_TAG: p = this.resumeTag(s, p); break;
        case ST_BANG: p = this.bang(s, p); break;
        case ST_CDATA: p = this.cdata(s, p); break;
        case ST_DECL: p = this.decl(s, p); break;
        default: return;
      }
      if (this.stop) return;
    }
    if (this.elStart === -2) this.elStart = this.sBase + sBytes - (this.sAscii ? n - this.elIdx : Buffer.byteLength(s.slice(this.elIdx), 'utf8'));
    if (this.elStart >= 0 && this.sBase + sBytes - this.elStart > this.maxStanzaBytes) {
      this.die('policy-violation', 'stanza too large');
    }
  }

  /** Whether the counted item, ending just before s[end], exceeds maxStanzaBytes. */
  private tooLarge(end: number): boolean {
    const start = this.elStart;
    const max = this.maxStanzaBytes;
    if (start === -1) return false;
    if (this.sAscii) return (start === -2 ? end - this.elIdx : this.sBase + end - start) > max;
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (start === -2 ? (end - this.elIdx) * 3 <= max : this.sBase - start + end * 3 <= max) return false;
    if (start === -2) this.elStart = this.byteAt(this.elIdx);
    return this.byteAt(end) - this.elStart > max;
  }

  /** Absolute byte offset of s[p]. */
  private byteAt(p: number): number {
    if (this.sAscii) return this.sBase + p;
    if (p < this.curIdx) { this.curIdx = 0; this.curByte = this.sBase; }
    if (p > this.curIdx) {
      const a = this.curIdx;
      this.curByte += p - a > 256 ? Buffer.byteLength(this.s.slice(a, p), 'utf8') : utf8Length(this.s, a, p);
      this.curIdx = p;
    }
    return this.curByte;
  }

  /** Reports an error found at s[p]; an item already over the size limit there reports that instead. */
  private fail(cond: StreamCondition, p: number, text?: string): void {
    if (this.elStart === -2) this.elStart = this.byteAt(this.elIdx);
    if (this.elStart >= 0 && this.byteAt(p) + 1 - this.elStart > this.maxStanzaBytes) {
      cond = 'policy-violation';
      text = 'stanza too large';
    }
    this.die(cond, text);
  }

  private die(cond: StreamCondition, text?: string): void {
    this.state = ST_DEAD;
    this.stop = true;
    this.carry = null;
    this.release();
    this.handler.error(new StreamError(cond, text));
  }

  private bad(cond: StreamCondition, text: string): number {
    this.errCond = cond;
    this.errText = text;
    return FAIL;
  }

  /** Content, stream level and prolog: the hot loop. Returns where it stopped. */
  private content(s: string, p: number): number {
    const n = s.length;
    const gen = this.gen;
    while (p < n) {
      const d = this.depth;
      if (d >= 2) {
        if (this.rawText !== '' || s.charCodeAt(p) !== 60) {
          p = this.textRun(s, p);
          if (p < 0) return n;
        }
      } else {
        let c = s.charCodeAt(p);
        while (c !== 60) {
          if (isWs(c)) {
            this.declAllowed = this.bomAllowed = false;
          } else if (c === 0xfeff && this.bomAllowed) {
            this.bomAllowed = false;
          } else {
            if (TEXT[c] === 4) this.fail('not-well-formed', p, 'character not allowed in XML');
            else if (d === 1) this.fail('bad-format', p, 'text at stream level');
            else this.fail('not-well-formed', p, 'text before the stream header');
            return n;
          }
          if (++p >= n) return n;
          c = s.charCodeAt(p);
        }
        this.bomAllowed = false;
        this.elStart = -2;
        this.elIdx = p;
      }
      // s[p] is '<'
      const c1 = s.charCodeAt(p + 1);
      if (c1 === 47) {
        if (d === 0) { this.fail('not-well-formed', p + 1, 'end tag before the stream header'); return n; }
        const qn = this.qnames[d - 1] as string;
        const e = p + 2 + qn.length;
        if (s.charCodeAt(e) === 62 && s.startsWith(qn, p + 2)) {
          this.close(e);
          p = e + 1;
        } else {
          const r = this.endTag(s, p);
          if (r < 0) return this.deferOrFail(s, p, r);
          this.close(r - 1);
          p = r;
        }
      } else if (c1 === 33) {
        this.acc = '<!';
        this.state = ST_BANG;
        return p + 2;
      } else if (c1 === 63) {
        return this.pi(s, p + 1);
      } else if (c1 !== c1) { // NaN: the chunk ends right after '<'
        this.acc = '<';
        this.quote = 0;
        this.state = ST_TAG;
        return n;
      } else {
        const r = this.startTag(s, p);
        if (r < 0) return this.deferOrFail(s, p, r);
        this.declAllowed = false;
        if (!this.open(r - 1)) return n;
        p = r;
      }
      if (this.gen !== gen || this.stop) return p;
    }
    return p;
  }

  /** A tag starting at s[p] could not be parsed here: wait for its end if it is not in s, else report. */
  private deferOrFail(s: string, p: number, r: number): number {
    if (r === INCOMPLETE) { this.errCond = 'not-well-formed'; this.errText = 'malformed tag'; }
    const e = this.scanTagEnd(s, p + 1, 0);
    if (e < 0) {
      this.acc = s.slice(p);
      this.state = ST_TAG;
    } else {
      this.fail(this.errCond, e, this.errText);
    }
    return s.length;
  }

  /** Index of the end of a tag (first '>' outside quotes, or any '<'), or -1 with `quote` saved. */
  private scanTagEnd(s: string, from: number, quote: number): number {
    const n = s.length;
    let q = quote;
    for (let k = from; k < n; k++) {
      const c = s.charCodeAt(k);
      if (c === 60) return k;
      if (q !== 0) { if (c === q) q = 0; }
      else if (c === 62) return k;
      else if (c === 34 || c === 39) q = c;
    }
    this.quote = q;
    return -1;
  }

  /** Continues a tag cut by a chunk boundary; `acc` holds it from '<'. */
  private resumeTag(s: string, p: number): number {
    const acc = this.acc;
    if (acc.length === 1) {
      const c = s.charCodeAt(p);
      if (c === 33) { this.acc = '<!'; this.state = ST_BANG; return p + 1; }
      if (c === 63) { this.acc = ''; this.state = ST_CONTENT; return this.pi(s, p); }
      if (c === 47 && this.depth === 0) { this.fail('not-well-formed', p, 'end tag before the stream header'); return s.length; }
    }
    const e = this.scanTagEnd(s, p, this.quote);
    if (e < 0) { this.acc = acc + s.slice(p); return s.length; }
    const full = acc + s.slice(p, e + 1);
    this.acc = '';
    this.state = ST_CONTENT;
    if (full.charCodeAt(1) === 47) {
      const r = this.endTag(full, 0);
      if (r !== full.length) {
        if (r !== FAIL) this.bad('not-well-formed', 'malformed end tag');
        this.fail(this.errCond, e, this.errText);
        return s.length;
      }
      this.close(e);
    } else {
      const r = this.startTag(full, 0);
      if (r !== full.length) {
        if (r !== FAIL) this.bad('not-well-formed', 'malformed tag');
        this.fail(this.errCond, e, this.errText);
        return s.length;
      }
      this.declAllowed = false;
      this.open(e);
    }
    return e + 1;
  }

  /** Parses a start tag at str[i] === '<' into the scratch fields; returns the index after '>'. */
  private startTag(str: string, i: number): number {
    const len = str.length;
    let j = i + 1;
    if (NAME[str.charCodeAt(j)] !== 1) return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'bad element name');
    let colon = -1;
    let t: number | undefined;
    for (j++; j < len; j++) {
      t = NAME[str.charCodeAt(j)];
      if (t === 1 || t === 2) continue;
      if (t === 3 && colon < 0) { colon = j; continue; }
      break;
    }
    if (colon >= 0 && NAME[str.charCodeAt(colon + 1)] !== 1) {
      return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'bad element name');
    }
    this.tq = nameAt(str, i + 1, j);
    this.tqColon = colon < 0 ? -1 : colon - i - 1;
    const an = this.an;
    const av = this.av;
    const ac = this.ac;
    let na = 0;
    let c = str.charCodeAt(j);
    for (;;) {
      let ws = false;
      while (c === 32 || c === 10 || c === 9 || c === 13) { c = str.charCodeAt(++j); ws = true; }
      if (c === 62) { this.selfClosing = false; j++; break; }
      if (c === 47) {
        if (str.charCodeAt(j + 1) === 62) { this.selfClosing = true; j += 2; break; }
        return j + 1 >= len ? INCOMPLETE : this.bad('not-well-formed', 'malformed tag');
      }
      if (!ws || NAME[c] !== 1) return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'malformed attribute');
      const k = j;
      let acol = -1;
      for (j++; j < len; j++) {
        t = NAME[str.charCodeAt(j)];
        if (t === 1 || t === 2) continue;
        if (t === 3 && acol < 0) { acol = j - k; continue; }
        break;
      }
      if (acol >= 0 && NAME[str.charCodeAt(k + acol + 1)] !== 1) {
        return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'bad attribute name');
      }
      const aname = nameAt(str, k, j);
      c = str.charCodeAt(j);
      while (c === 32 || c === 10 || c === 9 || c === 13) c = str.charCodeAt(++j);
      if (c !== 61) return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'malformed attribute');
      c = str.charCodeAt(++j);
      while (c === 32 || c === 10 || c === 9 || c === 13) c = str.charCodeAt(++j);
      if (c !== 34 && c !== 39) return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'unquoted attribute value');
      const q = c;
      const vs = ++j;
      let special = false;
      for (;;) {
        while (j < len && ATTR[str.charCodeAt(j)] === 0) j++;
        if (j >= len) return INCOMPLETE;
        c = str.charCodeAt(j);
        if (c === q) break;
        t = ATTR[c];
        if (t === 1) special = true;
        else if (t === 3) return this.bad('not-well-formed', "'<' in attribute value");
        else if (t === 4) return this.bad('not-well-formed', 'character not allowed in XML');
        j++;
      }
      let value = str.slice(vs, j);
      if (special) {
        const v = this.decodeAttr(value);
        if (v === null) return FAIL;
        value = v;
      }
      if (na >= this.maxAttrs) return this.bad('policy-violation', 'too many attributes');
      an[na] = aname;
      av[na] = value;
      ac[na] = acol;
      na++;
      c = str.charCodeAt(++j);
    }
    this.na = na;
    return j;
  }

  /** Matches an end tag at str[i] === '<' against the open element; returns the index after '>'. */
  private endTag(str: string, i: number): number {
    const len = str.length;
    const d = this.depth;
    if (d === 0) return this.bad('not-well-formed', 'end tag before the stream header');
    const qn = this.qnames[d - 1] as string;
    let j = i + 2;
    for (let k = 0; k < qn.length; k++, j++) {
      if (str.charCodeAt(j) !== qn.charCodeAt(k)) {
        return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'mismatched end tag');
      }
    }
    let c = str.charCodeAt(j);
    while (c === 32 || c === 10 || c === 9 || c === 13) c = str.charCodeAt(++j);
    if (c !== 62) return j >= len ? INCOMPLETE : this.bad('not-well-formed', 'mismatched end tag');
    return j + 1;
  }

  /** Resolves namespaces for the parsed start tag whose '>' is s[e], builds the element and links it. */
  private open(e: number): boolean {
    const d = this.depth;
    if (d >= 2 && d - 1 > this.maxDepth) { this.fail('policy-violation', e, 'elements nested too deep'); return false; }
    const na = this.na;
    const an = this.an;
    const av = this.av;
    const ac = this.ac;
    if (this.kind.length < na) this.kind = new Uint8Array(na * 2);
    const kind = this.kind;
    const mark = this.undo.length;
    let def = d === 0 ? '' : (this.defNs[d - 1] as string);
    let prefixed = 0;

    // Declarations first: they apply to the element carrying them.
    for (let i = 0; i < na; i++) {
      const a = an[i] as string;
      const col = ac[i] as number;
      if (col < 0) {
        if (a !== 'xmlns') kind[i] = 0;
        else {
          kind[i] = 1;
          def = av[i] as string;
          if (def === XML_NS || def === XMLNS_NS) return this.nsFail(mark, e, 'illegal default namespace');
        }
      } else if (col === 5 && a.startsWith('xmlns')) {
        kind[i] = 1;
        const prefix = a.slice(6);
        const v = av[i] as string;
        if (prefix === 'xml') {
          if (v !== XML_NS) return this.nsFail(mark, e, "prefix 'xml' bound to another namespace");
          continue;
        }
        if (prefix === 'xmlns' || v === '' || v === XML_NS || v === XMLNS_NS) {
          return this.nsFail(mark, e, `illegal declaration of prefix '${prefix}'`);
        }
        this.undo.push(prefix, this.prefixes.get(prefix));
        this.prefixes.set(prefix, v);
      } else if (col === 3 && a.startsWith('xml')) {
        kind[i] = 3;
      } else {
        kind[i] = 2;
        prefixed++;
      }
    }

    const qname = this.tq;
    const colon = this.tqColon;
    let ns: string;
    let local: string;
    if (colon < 0) {
      ns = def;
      local = qname;
    } else {
      const prefix = qname.slice(0, colon);
      local = qname.slice(colon + 1);
      // Elements in the XML namespace could not be written back without the prefix.
      if (prefix === 'xml') return this.nsFail(mark, e, "element with prefix 'xml'", 'bad-namespace-prefix');
      const bound = prefix === 'xmlns' ? undefined : this.prefixes.get(prefix);
      if (bound === undefined) return this.nsFail(mark, e, `unbound prefix '${prefix}'`);
      ns = bound;
    }

    // Duplicate attributes, by name as sent and, for prefixed ones, by expanded name.
    if (na > 1) {
      if (na <= 16) {
        for (let i = 1; i < na; i++) {
          const a = an[i];
          for (let k = 0; k < i; k++) if (an[k] === a) return this.nsFail(mark, e, 'duplicate attribute');
        }
      } else {
        const seen = new Set<string>();
        for (let i = 0; i < na; i++) {
          const a = an[i] as string;
          if (seen.has(a)) return this.nsFail(mark, e, 'duplicate attribute');
          seen.add(a);
        }
      }
    }
    let attrNs: string[] | undefined;
    if (prefixed > 0) {
      attrNs = [];
      for (let i = 0; i < na; i++) {
        if (kind[i] !== 2) continue;
        const a = an[i] as string;
        const prefix = a.slice(0, ac[i]);
        const bound = prefix === 'xmlns' ? undefined : this.prefixes.get(prefix);
        if (bound === undefined) return this.nsFail(mark, e, `unbound prefix '${prefix}'`);
        attrNs[i] = bound;
      }
      if (prefixed > 1) {
        const seen = new Set<string>();
        for (let i = 0; i < na; i++) {
          if (kind[i] !== 2) continue;
          const key = (attrNs[i] as string) + ' ' + (an[i] as string).slice((ac[i] as number) + 1);
          if (seen.has(key)) return this.nsFail(mark, e, 'duplicate attribute');
          seen.add(key);
        }
      }
    }

    const attrs: Attrs = {};
    let name = local;
    let ref = ns;
    if (d === 1 && ns === STREAM_NS) {
      name = 'stream:' + local;
      ref = this.contentNs; // children of stream:features etc. inherit the stream's content namespace
    } else if (d > 0 && ns !== (d === 1 ? this.contentNs : this.refNs[d - 1])) {
      attrs.xmlns = ns;
    }
    for (let i = 0; i < na; i++) {
      const k = kind[i];
      if (k === 1) continue;
      const a = an[i] as string;
      if (k === 2 && d > 0 && attrNs !== undefined) attrs['xmlns:' + a.slice(0, ac[i])] = attrNs[i] as string;
      if (a === '__proto__') Object.defineProperty(attrs, a, { value: av[i], enumerable: true, writable: true, configurable: true });
      else attrs[a] = av[i] as string;
    }

    const el = new Element(name, attrs, []);
    if (d >= 2) {
      const parent = this.els[d - 1] as Element;
      if (this.text !== '') { parent.children.push(this.text); this.text = ''; }
      parent.children.push(el);
    }
    if (d === 0) {
      if (this.tooLarge(e + 1)) {
        this.die('policy-violation', 'stream header too large');
        return false;
      }
      this.elStart = -1;
      this.contentNs = def;
    }
    if (this.selfClosing) {
      if (this.undo.length > mark) this.unwind(mark);
      if (d === 1) return this.emit(el, e);
      if (d === 0) {
        const gen = this.gen;
        this.handler.streamStart(local, ns, attrs, def);
        if (this.gen === gen && !this.stop) this.end();
      }
      return true;
    }
    this.els[d] = el;
    this.qnames[d] = qname;
    this.refNs[d] = ref;
    this.defNs[d] = def;
    this.marks[d] = mark;
    this.depth = d + 1;
    if (d === 0) this.handler.streamStart(local, ns, attrs, def);
    return true;
  }

  private nsFail(mark: number, e: number, text: string, cond: StreamCondition = 'not-well-formed'): boolean {
    this.unwind(mark);
    this.fail(cond, e, text);
    return false;
  }

  private unwind(mark: number): void {
    const undo = this.undo;
    while (undo.length > mark) {
      const prev = undo.pop();
      const prefix = undo.pop() as string;
      if (prev === undefined) this.prefixes.delete(prefix);
      else this.prefixes.set(prefix, prev);
    }
  }

  /** Closes the innermost element; its end tag's '>' is s[e]. */
  private close(e: number): void {
    const d = --this.depth;
    if (this.undo.length > (this.marks[d] as number)) this.unwind(this.marks[d] as number);
    if (d === 0) {
      if (this.tooLarge(e + 1)) {
        this.die('policy-violation', 'stanza too large');
        return;
      }
      this.end();
      return;
    }
    const el = this.els[d] as Element;
    this.els[d] = undefined; // an idle connection keeps no tree alive
    if (this.text !== '') { el.children.push(this.text); this.text = ''; }
    if (d === 1) this.emit(el, e);
  }

  private emit(el: Element, e: number): boolean {
    if (this.tooLarge(e + 1)) {
      this.die('policy-violation', 'stanza too large');
      return false;
    }
    this.elStart = -1;
    this.handler.stanza(el);
    return true;
  }

  private end(): void {
    this.state = ST_DEAD;
    this.stop = true;
    this.release();
    this.handler.streamEnd();
  }

  /**
   * A text run from s[p] inside an element (after any raw text carried from earlier chunks), up to
   * the next '<'. Returns the index of that '<', or -1 if the run goes on past the chunk or failed.
   */
  private textRun(s: string, p: number): number {
    const n = s.length;
    let k = p;
    let flags = this.rawFlags;
    for (;;) {
      while (k < n && TEXT[s.charCodeAt(k)] === 0) k++;
      if (k >= n) { this.rawText += s.slice(p); this.rawFlags = flags; return -1; }
      const t = TEXT[s.charCodeAt(k)];
      if (t === 1) break;
      if (t === 2) flags |= TF_AMP;
      else if (t === 5) flags |= TF_CR;
      else if (t === 4) flags |= TF_BAD;
      else if (k + 2 >= n || (s.charCodeAt(k + 1) === 93 && s.charCodeAt(k + 2) === 62)) flags |= TF_CDEND;
      k++;
    }
    let raw = s.slice(p, k);
    if (this.rawText !== '') { raw = this.rawText + raw; this.rawText = ''; this.rawFlags = 0; }
    if (flags !== 0) {
      // Whatever is wrong is reported at the '<' ending the run, wherever the chunks were cut.
      if (flags & TF_BAD) { this.fail('not-well-formed', k, 'character not allowed in XML'); return -1; }
      if (flags & TF_CDEND && raw.indexOf(']]>') >= 0) { this.fail('not-well-formed', k, "']]>' in text"); return -1; }
      if (flags & TF_CR) raw = raw.replace(CRLF, '\n');
      if (flags & TF_AMP) {
        const t = this.refs(raw);
        if (t === null) { this.fail(this.errCond, k, this.errText); return -1; }
        raw = t;
      }
    }
    this.text = this.text === '' ? raw : this.text + raw;
    return k;
  }

  /** Attribute-value normalization (XML 1.0 §3.3.3) and references. */
  private decodeAttr(raw: string): string | null {
    let v = raw;
    if (v.indexOf('\r') >= 0 || v.indexOf('\n') >= 0 || v.indexOf('\t') >= 0) v = v.replace(ATTR_WS, ' ');
    return v.indexOf('&') >= 0 ? this.refs(v) : v;
  }

  /** Replaces character and predefined entity references; anything else is an error. */
  private refs(raw: string): string | null {
    let out = '';
    let last = 0;
    let a = raw.indexOf('&');
    while (a >= 0) {
      const semi = raw.indexOf(';', a + 1);
      if (semi < 0) { this.bad('not-well-formed', "'&' without reference"); return null; }
      out += raw.slice(last, a);
      if (raw.charCodeAt(a + 1) === 35) {
        let k = a + 2;
        const hex = raw.charCodeAt(k) === 120;
        if (hex) k++;
        if (k === semi) { this.bad('not-well-formed', 'malformed character reference'); return null; }
        let v = 0;
        for (; k < semi; k++) {
          const c = raw.charCodeAt(k);
          let dv: number;
          if (c >= 48 && c <= 57) dv = c - 48;
          else if (hex && c >= 97 && c <= 102) dv = c - 87;
          else if (hex && c >= 65 && c <= 70) dv = c - 55;
          else { this.bad('not-well-formed', 'malformed character reference'); return null; }
          v = v * (hex ? 16 : 10) + dv;
          if (v > 0x10ffff) v = 0x110000; // stays out of range without losing precision
        }
        if (!isXmlChar(v)) { this.bad('not-well-formed', 'reference to a character not allowed in XML'); return null; }
        out += String.fromCodePoint(v);
      } else {
        const name = raw.slice(a + 1, semi);
        switch (name) {
          case 'lt': out += '<'; break;
          case 'gt': out += '>'; break;
          case 'amp': out += '&'; break;
          case 'quot': out += '"'; break;
          case 'apos': out += "'"; break;
          default:
            // RFC 6120 §11.1: no entities but the predefined ones.
            if (isNcName(name)) this.bad('restricted-xml', 'entity reference');
            else this.bad('not-well-formed', 'malformed reference');
            return null;
        }
      }
      last = semi + 1;
      a = raw.indexOf('&', last);
    }
    return last === 0 ? raw : out + raw.slice(last);
  }

  /** After '<!' (held in acc): CDATA is allowed in elements; comments and DOCTYPE are restricted. */
  private bang(s: string, p: number): number {
    const n = s.length;
    let acc = this.acc;
    for (; p < n; p++) {
      acc += s[p];
      const rest = acc.slice(2);
      if ('[CDATA['.startsWith(rest)) {
        if (rest.length < 7) continue;
        this.acc = '';
        if (this.depth < 2) {
          this.fail(this.depth === 1 ? 'bad-format' : 'not-well-formed', p, 'CDATA outside a stanza');
          return n;
        }
        this.state = ST_CDATA;
        return p + 1;
      }
      if ('--'.startsWith(rest) || 'DOCTYPE'.startsWith(rest)) {
        if (rest !== '--' && rest !== 'DOCTYPE') continue;
        this.fail('restricted-xml', p, rest === '--' ? 'comment' : 'DOCTYPE');
        return n;
      }
      this.fail('not-well-formed', p, "malformed '<!' markup");
      return n;
    }
    this.acc = acc;
    return n;
  }

  /** Inside CDATA: finds ']]>', also when split across chunks. */
  private cdata(s: string, p: number): number {
    const acc = this.acc;
    const tail = this.accTail;
    let content: string;
    let next: number;
    if (tail >= 2 && s.charCodeAt(p) === 62) {
      content = acc.slice(0, -2);
      next = p + 1;
    } else if (tail >= 1 && s.charCodeAt(p) === 93 && s.charCodeAt(p + 1) === 62) {
      content = acc.slice(0, -1);
      next = p + 2;
    } else {
      const e = s.indexOf(']]>', p);
      if (e < 0) {
        const n = s.length;
        this.acc = acc + s.slice(p);
        this.accTail = s.charCodeAt(n - 1) !== 93 ? 0 : n - p === 1 ? tail + 1 : s.charCodeAt(n - 2) === 93 ? 2 : 1;
        return n;
      }
      content = acc + s.slice(p, e);
      next = e + 3;
    }
    this.acc = '';
    this.accTail = 0;
    this.state = ST_CONTENT;
    if (INVALID_CHAR.test(content)) { this.fail('not-well-formed', next - 1, 'character not allowed in XML'); return s.length; }
    if (content.indexOf('\r') >= 0) content = content.replace(CRLF, '\n');
    if (content !== '') this.text = this.text === '' ? content : this.text + content;
    return next;
  }

  /** After '<?' (s[p] is '?'): only the XML declaration, only at the very start. */
  private pi(s: string, p: number): number {
    if (this.depth === 0 && this.declAllowed) {
      this.declAllowed = false;
      this.acc = '<?';
      this.state = ST_DECL;
      return p + 1;
    }
    this.fail('restricted-xml', p, 'processing instruction');
    return s.length;
  }

  private decl(s: string, p: number): number {
    const n = s.length;
    let acc = this.acc;
    // The target must be exactly 'xml'; any other processing instruction is restricted.
    while (acc.length < 6 && p < n) {
      acc += s[p];
      const ok = acc.length <= 5 ? '<?xml'.startsWith(acc) : isWs(acc.charCodeAt(5)) || acc.charCodeAt(5) === 63;
      if (!ok) { this.fail('restricted-xml', p, 'processing instruction'); return n; }
      p++;
    }
    if (acc.length < 6) { this.acc = acc; return n; }
    let gt: number;
    if ((acc.length === 6 ? acc.charCodeAt(5) === 63 : this.accTail === 1) && s.charCodeAt(p) === 62) gt = p;
    else {
      const q = s.indexOf('?>', p);
      if (q < 0) {
        if (p < n) { this.acc = acc + s.slice(p); this.accTail = s.charCodeAt(n - 1) === 63 ? 1 : 0; }
        else this.acc = acc;
        return n;
      }
      gt = q + 1;
    }
    const full = acc + s.slice(p, gt + 1);
    this.acc = '';
    this.accTail = 0;
    this.state = ST_CONTENT;
    const m = XML_DECL.exec(full);
    if (m === null) { this.fail('not-well-formed', gt, 'malformed XML declaration'); return n; }
    const enc = m[1] ?? m[2];
    if (enc !== undefined && enc.toLowerCase() !== 'utf-8') {
      this.fail('unsupported-encoding', gt, 'only UTF-8 is allowed');
      return n;
    }
    if (this.tooLarge(gt + 1)) {
      this.die('policy-violation', 'XML declaration too large');
      return n;
    }
    this.elStart = -1;
    return gt + 1;
  }
}
