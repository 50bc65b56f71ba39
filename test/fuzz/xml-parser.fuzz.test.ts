// Fuzzing the streaming XML parser: whatever the bytes and however they are split, it never throws, reports at
// most one error (a stream error), and a well-formed stanza comes out exactly as it went in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StreamParser, DEFAULT_PARSER_LIMITS, type StreamParserHandler } from '../../src/xml/parser.ts';
import { Element, serialize } from '../../src/xml/element.ts';
import { StreamError } from '../../src/core/errors.ts';
import { fuzzOptions } from './runs.ts';

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

type Outcome = { stanzas: Element[]; errors: unknown[]; starts: number; ends: number };

function run(chunks: Uint8Array[], limits = DEFAULT_PARSER_LIMITS): Outcome {
  const out: Outcome = { stanzas: [], errors: [], starts: 0, ends: 0 };
  const handler: StreamParserHandler = {
    streamStart: () => { out.starts++; },
    stanza: (el) => { out.stanzas.push(el); },
    streamEnd: () => { out.ends++; },
    error: (err) => { out.errors.push(err); },
  };
  const parser = new StreamParser(handler, limits);
  for (const c of chunks) parser.write(c);
  return out;
}

/** Splits bytes at the given cut points (any order, duplicates allowed). */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
const text = fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => s.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, ''));
const attrs = fc.dictionary(name.filter((n) => n !== 'xmlns'), text, { maxKeys: 4 });
const element: fc.Arbitrary<Element> = fc.letrec<{ el: Element }>((tie) => ({
  el: fc.record({
    name,
    attrs,
    children: fc.array(fc.oneof({ depthSize: 'small' }, text.filter((t) => t.length > 0), tie('el')), { maxLength: 4 }),
  }).map(({ name: n, attrs: a, children }) => {
    // Adjacent text nodes merge when parsed: build the tree the way it will read back.
    const merged: Array<Element | string> = [];
    for (const c of children) {
      const last = merged.at(-1);
      if (typeof c === 'string' && typeof last === 'string') merged[merged.length - 1] = last + c;
      else merged.push(c);
    }
    return new Element(n, a, merged);
  }),
})).el;

const enc = new TextEncoder();

test('arbitrary bytes after a stream header never throw and give at most one stream error', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.nat(), { maxLength: 6 }), (junk, cuts) => {
    const bytes = new Uint8Array([...enc.encode(HEADER), ...junk]);
    const out = run(split(bytes, cuts));
    assert.ok(out.errors.length <= 1);
    for (const e of out.errors) assert.ok(e instanceof StreamError);
  }), fuzzOptions(1000));
});

test('arbitrary text with XML-ish pieces never throws', () => {
  const piece = fc.constantFrom('<', '>', '/', '=', "'", '"', '&', ';', '<!--', '-->', '<![CDATA[', ']]>', '<?', '?>', '<!DOCTYPE x>',
    '&amp;', '&#0;', '&#x110000;', '&lt;', 'xmlns', 'xmlns:a', 'a:', ':', ' ', 'message', 'body', '\u0000', '\ud800', 'é', '</stream:stream>');
  fc.assert(fc.property(fc.array(fc.oneof(piece, fc.string({ maxLength: 5 })), { maxLength: 80 }), fc.array(fc.nat(), { maxLength: 6 }), (parts, cuts) => {
    const out = run(split(enc.encode(HEADER + parts.join('')), cuts));
    assert.ok(out.errors.length <= 1);
  }), fuzzOptions(1000));
});

test('a generated stanza reads back exactly as it was written, however the bytes are split', () => {
  fc.assert(fc.property(element, fc.array(fc.nat(), { maxLength: 8 }), (el, cuts) => {
    const wire = serialize(new Element('message', { xmlns: 'jabber:client', id: 'x' }, [el]));
    const out = run(split(enc.encode(HEADER + wire), cuts));
    assert.deepEqual(out.errors, []);
    assert.equal(out.stanzas.length, 1);
    const back = out.stanzas[0] as Element;
    assert.equal(serialize(back.children[0] as Element), serialize(el));
  }), fuzzOptions(1000));
});

test('a stanza with one byte flipped, dropped or inserted never throws', () => {
  fc.assert(fc.property(element, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'drop', 'insert'), (el, at, byte, how) => {
    const bytes = [...enc.encode(serialize(new Element('message', { xmlns: 'jabber:client' }, [el])))];
    const i = at % bytes.length;
    if (how === 'flip') bytes[i] = byte;
    else if (how === 'drop') bytes.splice(i, 1);
    else bytes.splice(i, 0, byte);
    const out = run([enc.encode(HEADER), new Uint8Array(bytes)]);
    assert.ok(out.errors.length <= 1);
  }), fuzzOptions(1000));
});

test('limits hold under generated input: no stanza larger or deeper than allowed comes out', () => {
  const limits = { maxStanzaBytes: 300, maxDepth: 4, maxAttrs: 3 };
  fc.assert(fc.property(element, (el) => {
    const wire = serialize(new Element('message', { xmlns: 'jabber:client' }, [el]));
    const out = run([enc.encode(HEADER + wire)], limits);
    for (const s of out.stanzas) assert.ok(enc.encode(serialize(s)).length <= limits.maxStanzaBytes + 64);
    if (out.stanzas.length === 0) assert.equal(out.errors.length, 1);
  }), fuzzOptions(1000));
});
