// A light XML element tree, routed as it is: unknown extensions pass through untouched.
// Serialization and cloning are iterative so no input depth can overflow the stack.

export type XmlNode = Element | string;
export type Attrs = Record<string, string>;

export class Element {
  name: string;
  attrs: Attrs;
  children: XmlNode[];

  constructor(name: string, attrs?: Attrs | null, children?: XmlNode[]) {
    this.name = name;
    this.attrs = attrs ?? {};
    this.children = children ?? [];
  }

  /** The namespace declared on this element itself (xmlns attribute), if any. */
  get xmlns(): string | undefined {
    return this.attrs.xmlns;
  }

  /** True when this element's name and (explicit or inherited-from-this) namespace match. */
  is(name: string, xmlns?: string): boolean {
    return this.name === name && (xmlns === undefined || this.attrs.xmlns === xmlns);
  }

  /** First child element with this name; a child without its own xmlns inherits this element's. */
  getChild(name: string, xmlns?: string): Element | undefined {
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && matchesNs(c, this, xmlns)) return c;
    }
    return undefined;
  }

  getChildren(name: string, xmlns?: string): Element[] {
    const out: Element[] = [];
    for (const c of this.children) {
      if (typeof c !== 'string' && c.name === name && matchesNs(c, this, xmlns)) out.push(c);
    }
    return out;
  }

  /** First child element in the namespace, whatever its name. */
  getChildByNs(xmlns: string): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string' && c.attrs.xmlns === xmlns) return c;
    return undefined;
  }

  getElements(): Element[] {
    const out: Element[] = [];
    for (const c of this.children) if (typeof c !== 'string') out.push(c);
    return out;
  }

  firstElement(): Element | undefined {
    for (const c of this.children) if (typeof c !== 'string') return c;
    return undefined;
  }

  /** Concatenated direct text children. */
  text(): string {
    let s = '';
    for (const c of this.children) if (typeof c === 'string') s += c;
    return s;
  }

  getChildText(name: string, xmlns?: string): string | undefined {
    return this.getChild(name, xmlns)?.text();
  }

  /** Appends a child and returns this, for chaining. */
  append(...nodes: Array<XmlNode | undefined | null | false>): this {
    for (const n of nodes) if (n !== undefined && n !== null && n !== false) this.children.push(n);
    return this;
  }

  removeChildren(predicate: (el: Element) => boolean): void {
    this.children = this.children.filter((c) => typeof c === 'string' || !predicate(c));
  }

  clone(): Element {
    return cloneElement(this);
  }

  toString(): string {
    return serialize(this);
  }
}

function matchesNs(child: Element, parent: Element, xmlns: string | undefined): boolean {
  if (xmlns === undefined) return true;
  const own = child.attrs.xmlns;
  return own === undefined ? parent.attrs.xmlns === xmlns : own === xmlns;
}

/** Builds an element; undefined attribute values are left out, nested arrays of children flattened. */
export function xml(
  name: string,
  attrs?: Record<string, string | number | undefined> | null,
  ...children: Array<XmlNode | XmlNode[] | undefined | null | false>
): Element {
  const a: Attrs = {};
  if (attrs) for (const k in attrs) { const v = attrs[k]; if (v !== undefined) a[k] = String(v); }
  const el = new Element(name, a);
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) el.children.push(...c);
    else el.children.push(c);
  }
  return el;
}

const TEXT_ESCAPE = /[&<>]/g;
const ATTR_ESCAPE = /[&<>"']/g;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const escapeChar = (c: string): string => ESCAPES[c] as string;

export function escapeText(s: string): string {
  return s.replace(TEXT_ESCAPE, escapeChar);
}

export function escapeAttr(s: string): string {
  return s.replace(ATTR_ESCAPE, escapeChar);
}

/** Serializes the start tag only, without closing it: used for stream headers. */
export function openTag(el: Element): string {
  let s = '<' + el.name;
  for (const k in el.attrs) s += ' ' + k + '="' + escapeAttr(el.attrs[k] as string) + '"';
  return s + '>';
}

type Frame = { el: Element; i: number };

/** Iterative serializer: a deep tree never grows the call stack. */
export function serialize(root: Element): string {
  let out = '';
  const stack: Frame[] = [];
  let cur: Frame | undefined = { el: root, i: -1 };
  while (cur) {
    const el: Element = cur.el;
    if (cur.i === -1) {
      out += '<' + el.name;
      for (const k in el.attrs) out += ' ' + k + '="' + escapeAttr(el.attrs[k] as string) + '"';
      if (el.children.length === 0) {
        out += '/>';
        cur = stack.pop();
        continue;
      }
      out += '>';
      cur.i = 0;
    }
    if (cur.i < el.children.length) {
      const child = el.children[cur.i++] as XmlNode;
      if (typeof child === 'string') out += escapeText(child);
      else { stack.push(cur); cur = { el: child, i: -1 }; }
      continue;
    }
    out += '</' + el.name + '>';
    cur = stack.pop();
  }
  return out;
}

/** Iterative deep copy. */
export function cloneElement(root: Element): Element {
  const copy = new Element(root.name, { ...root.attrs });
  const stack: Array<[Element, Element]> = [[root, copy]];
  while (stack.length > 0) {
    const [src, dst] = stack.pop() as [Element, Element];
    for (const c of src.children) {
      if (typeof c === 'string') dst.children.push(c);
      else {
        const cc = new Element(c.name, { ...c.attrs });
        dst.children.push(cc);
        stack.push([c, cc]);
      }
    }
  }
  return copy;
}
