import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StreamParser, DEFAULT_PARSER_LIMITS } from '../../src/xml/parser.ts';
import type { ParserLimits } from '../../src/xml/parser.ts';
import type { Element } from '../../src/xml/element.ts';

type Event =
  | ['start', string, string, Record<string, string>, string]
  | ['stanza', string]
  | ['end']
  | ['error', string];

const LIMITS: ParserLimits = { maxStanzaBytes: 10_000, maxDepth: 64, maxAttrs: 256 };
const HEADER =
  "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
const START: Event = ['start', 'stream', 'http://etherx.jabber.org/streams', { to: 'example.com', version: '1.0' }, 'jabber:client'];

const bytes = (x: string | Uint8Array): Uint8Array => (typeof x === 'string' ? Buffer.from(x, 'utf8') : x);
const cat = (...parts: Array<string | number[] | Uint8Array>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

function collect(limits: ParserLimits, stanzas?: Element[]): { parser: StreamParser; events: Event[] } {
  const events: Event[] = [];
  const parser = new StreamParser({
    streamStart: (name, ns, attrs, contentNs) => events.push(['start', name, ns, { ...attrs }, contentNs]),
    stanza: (el) => { events.push(['stanza', el.toString()]); stanzas?.push(el); },
    streamEnd: () => events.push(['end']),
    error: (err) => events.push(['error', err.condition]),
  }, limits);
  return { parser, events };
}

function feed(input: Uint8Array, limits: ParserLimits, size: number): Event[] {
  const { parser, events } = collect(limits);
  for (let i = 0; i < input.length; i += size) parser.write(input.subarray(i, i + size));
  return events;
}

/** Parses in one chunk, then byte by byte and in odd chunk sizes: every way must give the same events. */
function parse(input: string | Uint8Array, limits: ParserLimits = LIMITS): Event[] {
  const b = bytes(input);
  const whole = feed(b, limits, Math.max(1, b.length));
  for (const size of [1, 2, 3, 7, 64]) {
    assert.deepEqual(feed(b, limits, size), whole, `chunks of ${size} bytes differ from one chunk`);
  }
  return whole;
}

/** The events after the standard header. */
function inStream(body: string | Uint8Array, limits: ParserLimits = LIMITS): Event[] {
  const ev = parse(cat(HEADER, bytes(body)), limits);
  assert.deepEqual(ev[0], START);
  return ev.slice(1);
}

function lastError(ev: Event[]): string | undefined {
  const last = ev.at(-1);
  return last?.[0] === 'error' ? last[1] : undefined;
}

function stanzaOnly(body: string): string {
  const ev = inStream(body);
  assert.equal(ev.length, 1, JSON.stringify(ev));
  const [e] = ev;
  assert.equal(e?.[0], 'stanza', JSON.stringify(ev));
  return e[1] as string;
}

describe('StreamParser: stream header and end', () => {
  it('reports the header with local name, namespace, plain attributes and content namespace', () => {
    const ev = parse(
      "<?xml version='1.0' encoding='UTF-8'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' " +
        "xmlns='jabber:client' from='a@example.com' to='example.com' version='1.0' xml:lang='en' id='x'>",
    );
    assert.deepEqual(ev, [[
      'start', 'stream', 'http://etherx.jabber.org/streams',
      { from: 'a@example.com', to: 'example.com', version: '1.0', 'xml:lang': 'en', id: 'x' }, 'jabber:client',
    ]]);
  });

  it('accepts a missing XML declaration, a lowercase encoding name and double quotes', () => {
    assert.deepEqual(parse(HEADER), [START]);
    assert.deepEqual(parse(`<?xml version="1.0" encoding="utf-8" standalone="yes" ?>\n${HEADER}`), [START]);
  });

  it('skips a UTF-8 BOM at the very start, even split across writes', () => {
    assert.deepEqual(parse(cat([0xef, 0xbb, 0xbf], "<?xml version='1.0'?>", HEADER)), [START]);
    assert.deepEqual(parse(cat([0xef, 0xbb, 0xbf], HEADER)), [START]);
  });

  it('treats U+FEFF anywhere else as a character', () => {
    assert.deepEqual(parse(cat("<?xml version='1.0'?>", [0xef, 0xbb, 0xbf], HEADER)), [['error', 'not-well-formed']]);
    assert.deepEqual(parse(cat(' ', [0xef, 0xbb, 0xbf], HEADER)), [['error', 'not-well-formed']]);
    assert.equal(stanzaOnly('<message><body>\ufeffx</body></message>'), '<message><body>\ufeffx</body></message>');
  });

  it('reports whatever the root is, for the session layer to judge', () => {
    assert.deepEqual(parse("<foo xmlns='urn:x' a='1'>"), [['start', 'foo', 'urn:x', { a: '1' }, 'urn:x']]);
    assert.deepEqual(parse('<stream>'), [['start', 'stream', '', {}, '']]);
  });

  it('reports the end of the stream and ignores anything after it', () => {
    assert.deepEqual(inStream('<presence/></stream:stream><message/>'), [['stanza', '<presence/>'], ['end']]);
    assert.deepEqual(parse("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>"),
      [['start', 'stream', 'http://etherx.jabber.org/streams', {}, ''], ['end']]);
  });

  it('ignores whitespace keepalives between stanzas', () => {
    assert.deepEqual(inStream(' \n<presence/>\r\n \t <presence/> '), [['stanza', '<presence/>'], ['stanza', '<presence/>']]);
  });

  it('refuses non-whitespace text at stream level with bad-format', () => {
    assert.equal(lastError(inStream('<presence/>hello<presence/>')), 'bad-format');
    assert.deepEqual(inStream('<presence/>x'), [['stanza', '<presence/>'], ['error', 'bad-format']]);
    assert.equal(lastError(inStream('&amp;')), 'bad-format');
    assert.equal(lastError(inStream('<![CDATA[x]]>')), 'bad-format');
  });

  it('refuses text or an end tag before the header', () => {
    assert.deepEqual(parse('hello' + HEADER), [['error', 'not-well-formed']]);
    assert.deepEqual(parse('</a>'), [['error', 'not-well-formed']]);
  });
});

describe('StreamParser: encodings', () => {
  it('refuses a declared encoding other than UTF-8 with unsupported-encoding', () => {
    assert.deepEqual(parse(`<?xml version='1.0' encoding='ISO-8859-1'?>${HEADER}`), [['error', 'unsupported-encoding']]);
    assert.deepEqual(parse(`<?xml version='1.0' encoding='UTF-16'?>${HEADER}`), [['error', 'unsupported-encoding']]);
  });

  it('refuses UTF-16 input (BOM or NUL bytes) with unsupported-encoding', () => {
    const utf16 = Buffer.from('\ufeff' + HEADER, 'utf16le');
    assert.deepEqual(parse(utf16), [['error', 'unsupported-encoding']]);
    assert.deepEqual(parse(Buffer.from(HEADER, 'utf16le')), [['error', 'unsupported-encoding']]);
  });

  it('refuses a malformed XML declaration', () => {
    assert.deepEqual(parse(`<?xml encoding='UTF-8'?>${HEADER}`), [['error', 'not-well-formed']]);
    assert.deepEqual(parse(`<?xml version='1.0' encoding=UTF-8?>${HEADER}`), [['error', 'not-well-formed']]);
    assert.deepEqual(parse(`<?xml version='2.0'?>${HEADER}`), [['error', 'not-well-formed']]);
  });

  it('accepts the XML declaration only at the very start', () => {
    assert.deepEqual(parse(` <?xml version='1.0'?>${HEADER}`), [['error', 'restricted-xml']]);
    assert.equal(lastError(inStream("<?xml version='1.0'?>")), 'restricted-xml');
  });

  it('decodes multi-byte characters split anywhere', () => {
    const text = 'é ☺ 日本 𝄞 \u{10FFFF}';
    assert.equal(stanzaOnly(`<message><body>${text}</body></message>`), `<message><body>${text}</body></message>`);
    assert.equal(stanzaOnly(`<message a='${text}'/>`), `<message a="${text}"/>`);
    assert.equal(stanzaOnly('<méssage/>'), '<méssage/>');
  });

  const badUtf8: Array<[string, number[]]> = [
    ['overlong 2-byte', [0xc0, 0xaf]],
    ['overlong 2-byte (C1)', [0xc1, 0xbf]],
    ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
    ['overlong 4-byte', [0xf0, 0x80, 0x80, 0xaf]],
    ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['low surrogate', [0xed, 0xbf, 0xbf]],
    ['beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['F5 lead byte', [0xf5, 0x80, 0x80, 0x80]],
    ['FF byte', [0xff]],
    ['lone continuation byte', [0x80]],
    ['truncated 2-byte sequence', [0xc3]],
    ['truncated 3-byte sequence', [0xe2, 0x98]],
    ['truncated 4-byte sequence', [0xf0, 0x9d, 0x84]],
  ];
  it('refuses at once a sequence cut by the end of a write that can no longer become valid', () => {
    for (const seq of [[0xe0, 0x80], [0xed, 0xa0], [0xf0, 0x80, 0x80], [0xf4, 0x90]]) {
      assert.deepEqual(inStream(cat('<message><body>a', seq)), [['error', 'not-well-formed']], JSON.stringify(seq));
    }
    // A valid beginning waits for the rest.
    assert.deepEqual(inStream(cat('<message><body>a', [0xe2, 0x98])), []);
  });

  for (const [what, seq] of badUtf8) {
    it(`refuses invalid UTF-8: ${what}`, () => {
      assert.deepEqual(inStream(cat('<message><body>a', seq, 'b</body></message>')), [['error', 'not-well-formed']]);
      assert.deepEqual(inStream(cat("<message a='", seq, "'/>")), [['error', 'not-well-formed']]);
      // Stanzas completed before the bad bytes are still delivered, however the input is chunked.
      assert.deepEqual(inStream(cat('<presence/>', seq, '<presence/>')), [['stanza', '<presence/>'], ['error', 'not-well-formed']]);
    });
  }
});

describe('StreamParser: characters and references', () => {
  it('refuses a raw NUL and C0 controls, in text, attributes and names', () => {
    assert.deepEqual(inStream('<message><body>a\u0000b</body></message>'), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream("<message a='\u0001'/>"), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream('<message\u001f/>'), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream('\u000c'), [['error', 'not-well-formed']]);
  });

  it('refuses U+FFFE and U+FFFF', () => {
    assert.deepEqual(inStream('<message><body>\ufffe</body></message>'), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream('<message><body>\uffff</body></message>'), [['error', 'not-well-formed']]);
  });

  for (const ref of ['&#0;', '&#x0;', '&#x00000;', '&#1;', '&#x1F;', '&#xFFFE;', '&#xffff;', '&#xD800;', '&#56320;', '&#x110000;', '&#99999999999999999999999;']) {
    it(`refuses a reference to a character not allowed in XML: ${ref}`, () => {
      assert.deepEqual(inStream(`<message><body>${ref}</body></message>`), [['error', 'not-well-formed']]);
      assert.deepEqual(inStream(`<message a='${ref}'/>`), [['error', 'not-well-formed']]);
    });
  }

  for (const ref of ['&#;', '&#x;', '&#12a;', '&#X41;', '&#-1;', '& ;', '&;', '&amp', '& amp;', '&#x 41;']) {
    it(`refuses a malformed reference: ${JSON.stringify(ref)}`, () => {
      assert.deepEqual(inStream(`<message><body>${ref}</body></message>`), [['error', 'not-well-formed']]);
    });
  }

  it('decodes the five predefined entities and character references', () => {
    assert.equal(
      stanzaOnly("<message a='&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x1F600;'><body>&lt;&gt;&amp;&quot;&apos;&#9;&#x10FFFF;</body></message>"),
      '<message a="&lt;&gt;&amp;&quot;&apos;AB😀"><body>&lt;&gt;&amp;"\'\t\u{10FFFF}</body></message>',
    );
  });

  it('normalizes line ends, and whitespace in attribute values (XML 1.0 §2.11, §3.3.3)', () => {
    const ev = inStream("<message a='x\ty\r\nz\nw&#10;&#13;'><body>a\r\nb\rc&#13;d</body></message>");
    assert.deepEqual(ev, [['stanza', '<message a="x y z w\n\r"><body>a\nb\nc\rd</body></message>']]);
  });

  it("refuses ']]>' in text but not in attribute values", () => {
    assert.deepEqual(inStream('<message><body>a]]>b</body></message>'), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream('<message><body>]]></body></message>'), [['error', 'not-well-formed']]);
    assert.equal(stanzaOnly("<message a=']]>'><body>]]&gt; ]] ></body></message>"), '<message a="]]&gt;"><body>]]&gt; ]] &gt;</body></message>');
  });
});

describe('StreamParser: restricted XML (RFC 6120 §11.1)', () => {
  const restricted: Array<[string, string]> = [
    ['a comment', '<!-- hi -->'],
    ['a processing instruction', "<?foo bar?>"],
    ['a DOCTYPE', '<!DOCTYPE stream>'],
    ['an internal subset', "<!DOCTYPE stream [<!ENTITY x 'y'>]>"],
    ['an entity reference', '&ent;'],
  ];
  for (const [what, markup] of restricted) {
    it(`refuses ${what} inside a stanza, at stream level and before the header`, () => {
      if (what !== 'an entity reference') {
        assert.deepEqual(parse(markup + HEADER), [['error', 'restricted-xml']]);
        assert.deepEqual(inStream(`<presence/>${markup}`), [['stanza', '<presence/>'], ['error', 'restricted-xml']]);
      }
      assert.deepEqual(inStream(`<message><body>a${markup}b</body></message>`), [['error', 'restricted-xml']]);
    });
  }

  it('refuses named entities other than the predefined five, also in attributes', () => {
    assert.deepEqual(inStream("<message a='&nbsp;'/>"), [['error', 'restricted-xml']]);
    assert.deepEqual(inStream('<message><body>&LT;</body></message>'), [['error', 'restricted-xml']]);
  });

  it('refuses a processing instruction whose target merely starts with xml', () => {
    assert.deepEqual(parse(`<?xml-stylesheet href='a'?>${HEADER}`), [['error', 'restricted-xml']]);
  });

  it('accepts CDATA sections as text, merged with adjacent text', () => {
    const stanzas: Element[] = [];
    const { parser, events } = collect(LIMITS, stanzas);
    parser.write(bytes(HEADER + '<message><body>a<![CDATA[<b>&amp;]]]]>c&amp;<![CDATA[]]>d</body></message>'));
    // The section ends at the first ']]>', so ']]]]>' leaves ']]' of content.
    assert.deepEqual(events.slice(1), [['stanza', '<message><body>a&lt;b&gt;&amp;amp;]]c&amp;d</body></message>']]);
    assert.deepEqual(stanzas[0]?.getChild('body')?.children, ['a<b>&amp;]]c&d']);
    assert.equal(stanzaOnly('<message><body><![CDATA[x]]]]><![CDATA[>]]></body></message>'), '<message><body>x]]&gt;</body></message>');
  });

  it('refuses malformed <! markup', () => {
    assert.deepEqual(inStream('<message><![CDAT[x]]></message>'), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream('<message><!-x--></message>'), [['error', 'not-well-formed']]);
    assert.deepEqual(inStream('<message><!ENTITY x></message>'), [['error', 'not-well-formed']]);
  });
});

describe('StreamParser: well-formedness', () => {
  const bad: Array<[string, string]> = [
    ['a name starting with a digit', '<1message/>'],
    ['a name starting with a dot', '<.a/>'],
    ['an empty local name', '<a:/>'],
    ['an empty prefix', '<:a/>'],
    ['two colons', "<a:b:c xmlns:a='urn:a'/>"],
    ['a local name starting with a digit', "<a:1 xmlns:a='urn:a'/>"],
    ['a space after <', '< message/>'],
    ['a bad attribute name', "<message 1a='x'/>"],
    ['an attribute without value', '<message a/>'],
    ['an unquoted attribute', '<message a=b/>'],
    ['mismatched quotes', `<message a='b"/><presence/>`],
    ["'<' in an attribute value", "<message a='<'/>"],
    ['attributes not separated by whitespace', "<message a='1'b='2'/>"],
    ['a duplicate attribute', "<message a='1' a='2'/>"],
    ['a duplicate attribute after namespace resolution', "<message xmlns:p='urn:x' xmlns:q='urn:x' p:a='1' q:a='2'/>"],
    ['a duplicate namespace declaration', "<message xmlns:p='urn:x' xmlns:p='urn:x'/>"],
    ['a duplicate default namespace declaration', "<message xmlns='jabber:client' xmlns='jabber:client'/>"],
    ['a mismatched end tag', '<message></messages>'],
    ['a mismatched end tag (prefix)', '<message></message:x>'],
    ['a crossed end tag', '<message><body></message></body>'],
    ['a space in an end tag name', '<message></ message>'],
    ["'/ >' in a tag", '<message/ >'],
    ['an unbound element prefix', '<p:message/>'],
    ['an unbound attribute prefix', "<message p:a='1'/>"],
    ['the xmlns prefix on an element', "<xmlns:a/>"],
    ['an undeclared prefix (XML 1.0 has no prefix undeclaring)', "<message xmlns:p=''/>"],
    ['binding the xml prefix elsewhere', "<message xmlns:xml='urn:x'/>"],
    ['binding a prefix to the xml namespace', "<message xmlns:p='http://www.w3.org/XML/1998/namespace'/>"],
    ['declaring xmlns', "<message xmlns:xmlns='urn:x'/>"],
    ['the xml namespace as default namespace', "<message xmlns='http://www.w3.org/XML/1998/namespace'/>"],
    ['the xmlns namespace as default namespace', "<message xmlns='http://www.w3.org/2000/xmlns/'/>"],
    ['an end tag at stream level for no element', '</presence>'],
    ["'<' inside a tag", '<message <body/>'],
  ];
  for (const [what, stanza] of bad) {
    it(`refuses ${what}`, () => {
      assert.deepEqual(inStream(stanza), [['error', 'not-well-formed']]);
    });
  }

  it('refuses elements with the xml prefix, which could not be written back', () => {
    assert.deepEqual(inStream('<message><xml:x/></message>'), [['error', 'bad-namespace-prefix']]);
  });

  it('accepts whitespace around = and before > in tags', () => {
    assert.equal(stanzaOnly("<message\n a = 'x'\tb=\"y\"  ></message >"), '<message a="x" b="y"/>');
  });

  it("accepts '>' in attribute values and the xml prefix", () => {
    assert.equal(stanzaOnly("<message a='>' xml:lang='en'/>"), '<message a="&gt;" xml:lang="en"/>');
    assert.equal(stanzaOnly("<message xmlns:xml='http://www.w3.org/XML/1998/namespace' xml:lang='en'/>"), '<message xml:lang="en"/>');
  });

  it('keeps an attribute named __proto__ as an own attribute', () => {
    const stanzas: Element[] = [];
    const { parser } = collect(LIMITS, stanzas);
    parser.write(bytes(HEADER + "<message __proto__='x' constructor='y'/>"));
    assert.equal(Object.getPrototypeOf(stanzas[0]?.attrs), Object.prototype);
    assert.deepEqual(Object.entries(stanzas[0]?.attrs ?? {}), [['__proto__', 'x'], ['constructor', 'y']]);
  });

  it('ignores all input after an error until reset()', () => {
    const { parser, events } = collect(LIMITS);
    parser.write(bytes(HEADER + '<message></x>'));
    parser.write(bytes('<presence/>'));
    assert.deepEqual(events.slice(1), [['error', 'not-well-formed']]);
    parser.reset();
    parser.write(bytes(HEADER + '<presence/>'));
    assert.deepEqual(events.slice(2), [START, ['stanza', '<presence/>']]);
  });
});

describe('StreamParser: namespace normalization', () => {
  it('leaves stanzas in the content namespace without xmlns', () => {
    assert.equal(stanzaOnly("<message xmlns='jabber:client' to='a@b'><body>x</body></message>"), '<message to="a@b"><body>x</body></message>');
  });

  it('keeps xmlns on top-level elements in another namespace', () => {
    assert.equal(stanzaOnly("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"), '<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>');
  });

  it('names top-level elements of the streams namespace stream:*', () => {
    assert.equal(
      stanzaOnly("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><foo/></stream:features>"),
      '<stream:features><starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls><foo/></stream:features>',
    );
    assert.equal(
      stanzaOnly("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
      '<stream:error><not-well-formed xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>',
    );
    assert.equal(
      stanzaOnly("<s:features xmlns:s='http://etherx.jabber.org/streams'/>"), '<stream:features/>');
    assert.equal(
      stanzaOnly("<features xmlns='http://etherx.jabber.org/streams'><bar/></features>"),
      '<stream:features><bar xmlns="http://etherx.jabber.org/streams"/></stream:features>',
    );
  });

  it('normalizes prefixed stanzas and payloads to local names with xmlns where the namespace changes', () => {
    assert.equal(
      stanzaOnly("<cl:iq xmlns:cl='jabber:client' xmlns:r='jabber:iq:roster' type='get' id='1'><r:query><r:item jid='a@b'/></r:query></cl:iq>"),
      '<iq type="get" id="1"><query xmlns="jabber:iq:roster"><item jid="a@b"/></query></iq>',
    );
    // An unprefixed child of a prefixed element is back in the default namespace.
    assert.equal(
      stanzaOnly("<iq><p:query xmlns:p='urn:x'><item/><p:x/></p:query></iq>"),
      '<iq><query xmlns="urn:x"><item xmlns="jabber:client"/><x/></query></iq>',
    );
    // A redundant declaration disappears; an element with no namespace under a namespaced one gets xmlns=''.
    assert.equal(
      stanzaOnly("<message xmlns='jabber:client'><x xmlns='urn:x'><y xmlns='urn:x'/><z xmlns=''/></x></message>"),
      '<message><x xmlns="urn:x"><y/><z xmlns=""/></x></message>',
    );
  });

  it('uses prefixes declared on the stream header, and drops xmlns:* declarations', () => {
    const ev = parse(
      "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>" +
        "<db:result from='a' to='b'>key</db:result>",
    );
    assert.deepEqual(ev.slice(1), [['stanza', '<result xmlns="jabber:server:dialback" from="a" to="b">key</result>']]);
  });

  it('adds xmlns:p to an element carrying a prefixed attribute, so the tree stays self-contained', () => {
    assert.equal(
      stanzaOnly("<message xmlns:e='urn:ext'><x xmlns='urn:x' e:a='1' xml:lang='de'/></message>"),
      '<message><x xmlns="urn:x" xmlns:e="urn:ext" e:a="1" xml:lang="de"/></message>',
    );
  });

  it('scopes declarations to their element', () => {
    assert.deepEqual(inStream("<message xmlns:p='urn:p'><p:a/></message><p:b/>"),
      [['stanza', '<message><a xmlns="urn:p"/></message>'], ['error', 'not-well-formed']]);
    assert.deepEqual(inStream("<message><x xmlns='urn:x'/><y/></message>"),
      [['stanza', '<message><x xmlns="urn:x"/><y/></message>']]);
  });
});

describe('StreamParser: limits', () => {
  it('accepts a stanza of exactly maxStanzaBytes and refuses one byte more', () => {
    const make = (size: number): string => {
      const head = '<message><body>';
      const tail = '</body></message>';
      return head + 'é'.repeat((size - head.length - tail.length) / 2) + 'x'.repeat((size - head.length - tail.length) % 2) + tail;
    };
    const limits = { ...LIMITS, maxStanzaBytes: 1000 };
    assert.equal(Buffer.byteLength(make(1000)), 1000);
    assert.equal(inStream(make(1000), limits)[0]?.[0], 'stanza');
    assert.deepEqual(inStream(make(1001), limits), [['error', 'policy-violation']]);
    assert.deepEqual(inStream(`<presence/>${make(1001)}`, limits), [['stanza', '<presence/>'], ['error', 'policy-violation']]);
    // Self-closing top-level elements count the same way.
    const empty = (size: number): string => `<presence a='${'x'.repeat(size - 16)}'/>`;
    assert.equal(inStream(empty(1000), limits)[0]?.[0], 'stanza');
    assert.deepEqual(inStream(empty(1001), limits), [['error', 'policy-violation']]);
  });

  it('bounds the stream header', () => {
    const limits = { ...LIMITS, maxStanzaBytes: 200 };
    assert.deepEqual(parse(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='${'x'.repeat(300)}'>`, limits),
      [['error', 'policy-violation']]);
  });

  it('prefers policy-violation for input that is both too large and malformed', () => {
    const limits = { ...LIMITS, maxStanzaBytes: 300 };
    assert.deepEqual(inStream(`<message><body>${'x'.repeat(400)}&bogus;</body></message>`, limits), [['error', 'policy-violation']]);
    assert.deepEqual(inStream(`<message><body>${'x'.repeat(400)}</body></message\u0000>`, limits), [['error', 'policy-violation']]);
    assert.deepEqual(inStream(`<message><body>${'x'.repeat(400)}</body></messagex>`, limits), [['error', 'policy-violation']]);
    assert.deepEqual(inStream(`<message><body>${'x'.repeat(200)}&bogus;</body></message>`, limits), [['error', 'restricted-xml']]);
  });

  it('decides between a size error and another error by where the other error is detected', () => {
    // Each error is detected at a fixed byte (a malformed tag at its '>', a bad text run at the '<'
    // after it, bad UTF-8 at its first byte): the item is too large if it is over the limit there.
    const x = 'x'.repeat(200); // larger than the header, which the limit also applies to
    const cases: Array<[string, Uint8Array, string, number]> = [
      ['a malformed tag', cat(`<message><body>${x}</body><a b=c></a></message>`), 'not-well-formed', 229],
      ['a bad character in text', cat(`<message><body>${x}\u0001yyyyyy</body></message>`), 'not-well-formed', 223],
      ['a restricted entity', cat(`<message><body>${x}&e;yy</body></message>`), 'restricted-xml', 221],
      ['invalid UTF-8', cat(`<message><body>${x}`, [0xff], 'yy</body></message>'), 'not-well-formed', 216],
    ];
    for (const [what, body, cond, threshold] of cases) {
      for (let max = threshold - 3; max <= threshold + 3; max++) {
        const ev = parse(cat(HEADER, body), { ...LIMITS, maxStanzaBytes: max });
        assert.deepEqual(ev.slice(1), [['error', max < threshold ? 'policy-violation' : cond]], `${what}, limit ${max}`);
      }
    }
  });

  const refusedEarly = (prefix: string, filler: string): void => {
    const max = 64 * 1024;
    const { parser, events } = collect({ ...LIMITS, maxStanzaBytes: max });
    parser.write(bytes(HEADER + prefix));
    const chunk = bytes(filler.repeat(16 * 1024 / filler.length));
    let sent = 0;
    while (events.length < 2 && sent < 20 * 1024 * 1024) { parser.write(chunk); sent += chunk.length; }
    assert.deepEqual(events.slice(1), [['error', 'policy-violation']]);
    assert.ok(sent <= max + chunk.length, `refused only after ${sent} bytes`);
  };

  it('refuses a 20 MB text node after about maxStanzaBytes, without waiting for its end', () => {
    refusedEarly('<message><body>', 'abcdefgh');
    refusedEarly('<message><body>', 'ab&amp;cd');
  });

  it('refuses an unterminated attribute value after about maxStanzaBytes', () => {
    refusedEarly("<message to='", 'abcdefgh');
  });

  it('refuses endless CDATA, tag names and whitespace in tags after about maxStanzaBytes', () => {
    refusedEarly('<message><body><![CDATA[', 'abcdefgh');
    refusedEarly('<message', 'abcdefgh');
    refusedEarly('<message ', '        ');
  });

  it('allows 64 levels below a stanza and refuses 65', () => {
    const nest = (levels: number): string => '<a>'.repeat(levels) + '</a>'.repeat(levels);
    assert.equal(inStream(`<message>${nest(64)}</message>`)[0]?.[0], 'stanza');
    assert.deepEqual(inStream(`<message>${nest(65)}</message>`), [['error', 'policy-violation']]);
  });

  it('allows 256 attributes and refuses 257', () => {
    const attrs = (n: number): string => Array.from({ length: n }, (_, i) => `a${i}='${i}'`).join(' ');
    assert.equal(inStream(`<message ${attrs(256)}/>`)[0]?.[0], 'stanza');
    assert.deepEqual(inStream(`<message ${attrs(257)}/>`), [['error', 'policy-violation']]);
    assert.deepEqual(inStream(`<message><x ${attrs(257)}/></message>`), [['error', 'policy-violation']]);
  });

  it('applies limits changed mid-stream', () => {
    const { parser, events } = collect({ ...LIMITS, maxStanzaBytes: 200 });
    const big = `<message><body>${'x'.repeat(400)}</body></message>`;
    parser.write(bytes(HEADER + '<presence/>'));
    parser.setLimits({ ...LIMITS, maxStanzaBytes: 1000 });
    parser.write(bytes(big));
    assert.deepEqual(events.slice(1).map((e) => e[0]), ['stanza', 'stanza']);
    parser.setLimits({ ...LIMITS, maxStanzaBytes: 200 });
    parser.write(bytes(big));
    assert.deepEqual(events.at(-1), ['error', 'policy-violation']);
  });

  it('survives 1 MB of nesting with a high depth limit, without recursion', () => {
    const levels = Math.floor((1 << 20) / 3);
    const input = bytes(HEADER + '<a>'.repeat(levels) + '</a>'.repeat(levels));
    const limits = { maxStanzaBytes: 4 << 20, maxDepth: levels, maxAttrs: 256 };
    for (const size of [input.length, 16384]) {
      const stanzas: Element[] = [];
      const { parser, events } = collect(limits, stanzas);
      for (let i = 0; i < input.length; i += size) parser.write(input.subarray(i, i + size));
      assert.equal(events.length, 2);
      let depth = 0;
      for (let el: Element | undefined = stanzas[0]; el; el = el.firstElement()) depth++;
      assert.equal(depth, levels);
    }
  });

  it('refuses 1 MB of nesting with default limits, by depth or by size', () => {
    const input = bytes(HEADER + '<a>'.repeat(Math.floor((1 << 20) / 3)));
    const byDepth = collect(DEFAULT_PARSER_LIMITS);
    byDepth.parser.write(input);
    assert.deepEqual(byDepth.events.slice(1), [['error', 'policy-violation']]);
    const bySize = collect({ ...DEFAULT_PARSER_LIMITS, maxDepth: 1 << 20 });
    for (let i = 0; i < input.length && bySize.events.length < 2; i += 16384) bySize.parser.write(input.subarray(i, i + 16384));
    assert.deepEqual(bySize.events.slice(1), [['error', 'policy-violation']]);
  });
});

describe('StreamParser: reset()', () => {
  it('expects a new header and forgets namespace scopes', () => {
    const { parser, events } = collect(LIMITS);
    parser.write(bytes("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:x'><x:a/>"));
    parser.reset();
    parser.write(bytes(`<?xml version='1.0'?>${HEADER}<presence/><x:a/>`));
    assert.deepEqual(events.map((e) => e[0]), ['start', 'stanza', 'start', 'stanza', 'error']);
    assert.deepEqual(events[2], START);
    assert.deepEqual(events.at(-1), ['error', 'not-well-formed']);
  });

  it('drops a partial stanza and a partial UTF-8 sequence', () => {
    const { parser, events } = collect(LIMITS);
    parser.write(cat(HEADER, '<message><body>', [0xe2, 0x98]));
    parser.reset();
    parser.write(bytes(HEADER + '<presence/>'));
    assert.deepEqual(events, [START, START, ['stanza', '<presence/>']]);
  });

  it('continues in the same chunk when called from a callback (pipelined restart)', () => {
    const events: string[] = [];
    const parser: StreamParser = new StreamParser({
      streamStart: (name) => events.push('start ' + name),
      stanza: (el) => { events.push(el.name); if (el.name === 'success') parser.reset(); },
      streamEnd: () => events.push('end'),
      error: (err) => events.push('error ' + err.condition),
    }, LIMITS);
    parser.write(bytes(`${HEADER}<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><?xml version='1.0'?>${HEADER}<presence/>`));
    assert.deepEqual(events, ['start stream', 'success', 'start stream', 'presence']);
  });
});

describe('StreamParser: chunking', () => {
  it('gives the same result for any chunking of mutated input (deterministic fuzz)', () => {
    let seed = 42;
    const rnd = (n: number): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
    const seeds = [
      "<message to='a@b' id='1'><body>Hi &amp; &#x263A;</body><x:y xmlns:x='urn:x' a='1' x:b='2'/><z xmlns='urn:z'><w/></z></message>",
      "<iq type='get'><query xmlns='jabber:iq:roster'><item jid='a' name=\"b&quot;\"><group>G</group></item></query></iq>",
      '<presence><show>away</show><status>a<![CDATA[<b>]]>c\r\nd</status></presence>',
    ];
    const pieces = ['<', '>', '/', '=', "'", '"', '&', ';', ':', ' ', '\n', '\r', 'a', ']', ']]>', '&lt;', '&#0;', '<![CDATA[', 'xmlns', 'p:', 'é', '\u0001', '<a>', '</a>'];
    for (let i = 0; i < 400; i++) {
      // Limits around the stanza sizes, so that size errors race with the others.
      const limits = { maxStanzaBytes: 120 + rnd(60), maxDepth: 2, maxAttrs: 3 };
      let body = seeds[rnd(seeds.length)] as string;
      for (let m = 1 + rnd(2); m > 0; m--) {
        const at = rnd(body.length + 1);
        body = body.slice(0, at) + (pieces[rnd(pieces.length)] as string) + body.slice(at + rnd(2));
      }
      parse(HEADER + body + body + '</stream:stream>', limits); // asserts that every chunking agrees
    }
  });

  it('handles large tags, text and CDATA trickled in byte by byte', () => {
    const big = 'x'.repeat(100_000);
    const brackets = ']x]]y]]]'.repeat(10_000);
    const { parser, events } = collect({ ...LIMITS, maxStanzaBytes: 500_000 });
    const input = bytes(`${HEADER}<message a='${big}'><body>${big}</body><x><![CDATA[${brackets}]]]></x></message>`);
    for (let i = 0; i < input.length; i++) parser.write(input.subarray(i, i + 1));
    const cdata = brackets + ']'; // '...]]]' + ']]]>' ends at the last ']]>'
    assert.deepEqual(events.slice(1), [['stanza', `<message a="${big}"><body>${big}</body><x>${cdata}</x></message>`]]);
  });

  it('gives the same result for every split of a realistic stream', () => {
    const stream = `<?xml version='1.0'?>${HEADER}` +
      "<message xmlns='jabber:client' to='juliet@example.com/balcony' from='romeo@example.net/orchard' type='chat' id='a1'>" +
      "<body>Wherefore art thou, &quot;Romeo&quot;? ☺ <![CDATA[<3]]> &#x1F600;</body>" +
      "<active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>\n" +
      "<iq type='set' id='b2'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com' name='N&amp;urse'><group>Friends</group></item></query></iq>" +
      '</stream:stream>';
    const ev = parse(stream);
    assert.deepEqual(ev.map((e) => e[0]), ['start', 'stanza', 'stanza', 'end']);
    const b = bytes(stream);
    for (let cut = 1; cut < b.length; cut++) {
      const { parser, events } = collect(LIMITS);
      parser.write(b.subarray(0, cut));
      parser.write(b.subarray(cut));
      assert.deepEqual(events, ev, `split at byte ${cut}`);
    }
  });
});
