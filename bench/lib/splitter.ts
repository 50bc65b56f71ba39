// Splits an XMPP stream (RFC 6120 §4) into top-level elements as strings, for the load generator.
// Not a validating parser: it tracks '<'/'>' nesting, quotes inside tags and self-closing tags, and no more,
// because the servers under test send well-formed XML and the generator must stay cheap.

export type SplitterHandler = {
  /** The opening <stream:stream> tag (the XML declaration is skipped). */
  header(tag: string): void;
  /** One complete top-level element, e.g. `<message ...>...</message>`. */
  element(xml: string): void;
  /** The closing </stream:stream>. */
  end(): void;
};

const LT = 0x3c; // <
const GT = 0x3e; // >
const SLASH = 0x2f; // /
const QUESTION = 0x3f; // ?
const BANG = 0x21; // !
const SQ = 0x27; // '
const DQ = 0x22; // "

export class Splitter {
  private buf = '';
  /** Where scanning resumes: always at a '<' or in text. */
  private pos = 0;
  /** Start of the top-level element being collected, or -1. */
  private start = -1;
  private depth = 0;
  /** Bumped by reset(), so a handler that restarts the stream stops the scan of the old buffer. */
  private generation = 0;
  private readonly handler: SplitterHandler;

  constructor(handler: SplitterHandler) {
    this.handler = handler;
  }

  /** Forgets everything, as a stream restart (after STARTTLS or SASL) requires. */
  reset(): void {
    this.buf = '';
    this.pos = 0;
    this.start = -1;
    this.depth = 0;
    this.generation++;
  }

  write(chunk: string): void {
    this.buf = this.pos === 0 && this.buf.length === 0 ? chunk : this.buf + chunk;
    const buf = this.buf;
    const len = buf.length;
    const generation = this.generation;
    let pos = this.pos;
    let stopped = false;
    while (pos < len) {
      const lt = buf.indexOf('<', pos);
      if (lt < 0) {
        pos = len;
        break;
      }
      // Find the tag's end, skipping '>' inside quoted attribute values.
      let i = lt + 1;
      let quote = 0;
      let gt = -1;
      for (; i < len; i++) {
        const c = buf.charCodeAt(i);
        if (quote !== 0) {
          if (c === quote) quote = 0;
        } else if (c === GT) {
          gt = i;
          break;
        } else if (c === SQ || c === DQ) {
          quote = c;
        }
      }
      if (gt < 0) {
        pos = lt; // incomplete tag: wait for more bytes
        break;
      }
      const second = buf.charCodeAt(lt + 1);
      pos = gt + 1;
      if (second === QUESTION || second === BANG) continue; // XML declaration (comments are not allowed in XMPP)
      if (second === SLASH) {
        if (this.depth === 0) {
          // </stream:stream>: the only closing tag that can appear at the top level.
          this.handler.end();
          stopped = true;
          break;
        }
        this.depth--;
        if (this.depth === 0) {
          this.emit(buf, gt + 1);
          if (this.generation !== generation) return;
        }
        continue;
      }
      const selfClosing = buf.charCodeAt(gt - 1) === SLASH;
      if (this.depth === 0) {
        if (buf.startsWith('stream:stream', lt + 1) || buf.startsWith('stream ', lt + 1)) {
          this.handler.header(buf.slice(lt, gt + 1));
          if (this.generation !== generation) return;
          continue;
        }
        this.start = lt;
        if (selfClosing) {
          this.emit(buf, gt + 1);
          if (this.generation !== generation) return;
          continue;
        }
      }
      if (!selfClosing) this.depth++;
    }
    if (stopped) {
      if (this.generation === generation) this.reset();
      return;
    }
    // Keep only what is still needed: the element being collected, or the incomplete tag.
    const keep = this.start >= 0 ? this.start : pos;
    if (keep >= len) {
      this.buf = '';
      this.pos = 0;
    } else if (keep > 0) {
      this.buf = buf.slice(keep);
      this.pos = pos - keep;
      if (this.start >= 0) this.start = 0;
    } else {
      this.pos = pos;
    }
  }

  private emit(buf: string, end: number): void {
    const el = buf.slice(this.start, end);
    this.start = -1;
    this.handler.element(el);
  }
}

/** The element's qualified name: `message`, `stream:features`, `iq`. */
export function elementName(el: string): string {
  let i = 1;
  while (i < el.length) {
    const c = el.charCodeAt(i);
    if (c === 0x20 || c === GT || c === SLASH || c === 0x0a || c === 0x09 || c === 0x0d) break;
    i++;
  }
  return el.slice(1, i);
}

/** An attribute of the element's opening tag (entities left as they are), or undefined. */
export function attr(el: string, name: string): string | undefined {
  const tagEnd = openTagEnd(el);
  let from = 0;
  for (;;) {
    const at = el.indexOf(name + '=', from);
    if (at < 0 || at > tagEnd) return undefined;
    const before = el.charCodeAt(at - 1);
    from = at + name.length + 1;
    if (before !== 0x20 && before !== 0x0a && before !== 0x09 && before !== 0x0d) continue; // e.g. 'xid=' for 'id'
    const q = el.charCodeAt(from);
    if (q !== SQ && q !== DQ) continue;
    const close = el.indexOf(q === SQ ? "'" : '"', from + 1);
    if (close < 0) return undefined;
    return el.slice(from + 1, close);
  }
}

function openTagEnd(el: string): number {
  let quote = 0;
  for (let i = 1; i < el.length; i++) {
    const c = el.charCodeAt(i);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === GT) return i;
    else if (c === SQ || c === DQ) quote = c;
  }
  return el.length;
}

/** Text of the first `<name ...>text</name>` inside el (no nesting), or undefined. */
export function childText(el: string, name: string): string | undefined {
  const re = new RegExp(`<${name}(?:\\s[^>]*)?>([^<]*)</${name}>`);
  const m = re.exec(el);
  return m ? m[1] : undefined;
}

/** Whether el contains a child `<name` whose opening tag declares xmlns=ns (either quote style). */
export function hasChild(el: string, name: string, ns?: string): boolean {
  let from = 0;
  for (;;) {
    const at = el.indexOf('<' + name, from + 1);
    if (at < 0) return false;
    from = at;
    const c = el.charCodeAt(at + name.length + 1);
    if (c !== 0x20 && c !== GT && c !== SLASH && c !== 0x0a && c !== 0x09) continue;
    if (ns === undefined) return true;
    const end = el.indexOf('>', at);
    const tag = el.slice(at, end < 0 ? el.length : end + 1);
    if (attr(tag, 'xmlns') === ns) return true;
  }
}

/** Undoes the five predefined entities and character references, for text we compare or decode. */
export function unescapeXml(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(lt|gt|amp|apos|quot|#x[0-9a-fA-F]+|#[0-9]+);/g, (_, e: string) => {
    switch (e) {
      case 'lt': return '<';
      case 'gt': return '>';
      case 'amp': return '&';
      case 'apos': return "'";
      case 'quot': return '"';
      default: return String.fromCodePoint(e[1] === 'x' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10));
    }
  });
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
