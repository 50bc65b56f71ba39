import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StanzaError } from '../../src/core/errors.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { prepareDomainpart, prepareLocalpart, prepareResourcepart } from '../../src/xmpp/precis.ts';

function isMalformed(err: unknown): boolean {
  return err instanceof StanzaError && err.condition === 'jid-malformed' && err.type === 'modify' &&
    typeof err.text === 'string' && err.text.length > 0;
}

function assertMalformed(s: string): void {
  assert.throws(() => Jid.parse(s), isMalformed, `expected ${JSON.stringify(s)} to be malformed`);
  assert.equal(Jid.tryParse(s), undefined);
}

function parts(s: string): [string, string, string] {
  const j = Jid.parse(s);
  return [j.local, j.domain, j.resource];
}

/** 63-letter labels joined by dots: 16 of them make exactly 1023 octets. */
const DOMAIN_1023 = Array.from({ length: 16 }, () => 'a'.repeat(63)).join('.');

describe('RFC 7622 §3.5 examples', () => {
  const valid: [string, string, string, string][] = [
    ['juliet@example.com', 'juliet', 'example.com', ''],
    ['juliet@example.com/foo', 'juliet', 'example.com', 'foo'],
    ['juliet@example.com/foo bar', 'juliet', 'example.com', 'foo bar'],
    ['juliet@example.com/foo@bar', 'juliet', 'example.com', 'foo@bar'],
    ['foo\\20bar@example.com', 'foo\\20bar', 'example.com', ''],
    ['fussball@example.com', 'fussball', 'example.com', ''],
    ['fu\u00dfball@example.com', 'fu\u00dfball', 'example.com', ''],
    ['\u03c0@example.com', '\u03c0', 'example.com', ''],
    ['\u03a3@example.com/foo', '\u03c3', 'example.com', 'foo'],
    ['\u03c3@example.com/foo', '\u03c3', 'example.com', 'foo'],
    ['\u03c2@example.com/foo', '\u03c2', 'example.com', 'foo'],
    ['king@example.com/\u265a', 'king', 'example.com', '\u265a'],
    ['example.com', '', 'example.com', ''],
    ['example.com/foobar', '', 'example.com', 'foobar'],
    ['a.example.com/b@example.net', '', 'a.example.com', 'b@example.net'],
    // Example 18 ('/ foo') was withdrawn by erratum 4560: OpaqueString allows a leading space.
    ['juliet@example.com/ foo', 'juliet', 'example.com', ' foo'],
  ];
  for (const [input, local, domain, resource] of valid) {
    it(`accepts ${JSON.stringify(input)}`, () => {
      assert.deepEqual(parts(input), [local, domain, resource]);
    });
  }

  const invalid: [string, string][] = [
    ['"juliet"@example.com', 'quotation marks in localpart'],
    ['foo bar@example.com', 'space in localpart'],
    ['@example.com/', 'zero-length localpart'],
    ['henry\u2163@example.com', 'compatibility-equivalent roman numeral in localpart'],
    ['\u265a@example.com', 'symbol in localpart'],
    ['juliet@', 'zero-length domainpart'],
    ['/foobar', 'zero-length domainpart'],
  ];
  for (const [input, why] of invalid) {
    it(`rejects ${JSON.stringify(input)} (${why})`, () => assertMalformed(input));
  }
});

describe('Jid.parse: structure (RFC 7622 §3.1)', () => {
  it('lower-cases localpart and domainpart', () => {
    assert.equal(Jid.parse('Alice@LocalHost').toString(), 'alice@localhost');
  });

  it('keeps the case of the resource', () => {
    const j = Jid.parse('alice@localhost/Phone');
    assert.equal(j.resource, 'Phone');
    assert.equal(j.toString(), 'alice@localhost/Phone');
  });

  it('takes the resource from the first slash, keeping later @ and /', () => {
    assert.deepEqual(parts('juliet@example.com/foo@bar'), ['juliet', 'example.com', 'foo@bar']);
    assert.deepEqual(parts('server/resource@foo/bar'), ['', 'server', 'resource@foo/bar']);
    assert.deepEqual(parts('a@b/c@d/e'), ['a', 'b', 'c@d/e']);
  });

  it('rejects a second @ because it would land in the domainpart', () => {
    assertMalformed('a@b@c');
    assertMalformed('user@@host');
  });

  it('rejects empty parts next to a separator', () => {
    for (const s of ['', '@domain', 'a@', 'a@b/', '@', '/', '@/', '/r', 'a@/r', '@b/r', 'b/']) assertMalformed(s);
  });

  it('rejects NUL in any part', () => {
    for (const s of ['a\0b@example.com', 'a@exa\0mple.com', 'a@example.com/r\0', '\0']) assertMalformed(s);
  });

  it('treats a bare domain as a domain JID', () => {
    const j = Jid.parse('example.com');
    assert.equal(j.local, '');
    assert.equal(j.resource, '');
    assert.equal(j.domain, 'example.com');
    assert.equal(j.isBare, true);
  });

  it('accepts a localpart of 1023 bytes and rejects 1024', () => {
    assert.equal(Jid.parse('a'.repeat(1023) + '@example.com').local.length, 1023);
    assertMalformed('a'.repeat(1024) + '@example.com');
    // Counted in UTF-8 bytes, not characters: U+0159 takes two.
    assert.ok(Jid.tryParse('\u0159'.repeat(511) + '@example.com'));
    assertMalformed('\u0159'.repeat(512) + '@example.com');
  });

  it('accepts a resourcepart of 1023 bytes and rejects 1024', () => {
    assert.equal(Jid.parse('a@example.com/' + 'r'.repeat(1023)).resource.length, 1023);
    assertMalformed('a@example.com/' + 'r'.repeat(1024));
    assert.ok(Jid.tryParse('a@example.com/' + '\u20ac'.repeat(341)));
    assertMalformed('a@example.com/' + '\u20ac'.repeat(342));
  });

  it('accepts a domainpart of 1023 bytes and rejects more', () => {
    assert.equal(Jid.parse(DOMAIN_1023).domain, DOMAIN_1023);
    assertMalformed(DOMAIN_1023 + '.b');
  });

  it('accepts a 3071-byte address and refuses anything longer before preparing it', () => {
    const max = 'a'.repeat(1023) + '@' + DOMAIN_1023 + '/' + 'r'.repeat(1023);
    assert.equal(Buffer.byteLength(max), 3071);
    assert.equal(Jid.parse(max).toString(), max);
    assert.throws(() => Jid.parse(max + 'r'), (err: unknown) => isMalformed(err) && /3071/.test((err as StanzaError).text!));
    assert.throws(() => Jid.parse('\u00e9'.repeat(1536)), (err: unknown) => isMalformed(err) && /3071/.test((err as StanzaError).text!));
    assertMalformed('x'.repeat(1_000_000));
  });
});

describe('localpart: UsernameCaseMapped with the JID exclusions', () => {
  it('maps fullwidth characters to their ASCII forms', () => {
    assert.equal(Jid.parse('\uff21\uff22\uff23@example.com').toString(), 'abc@example.com');
    // Halfwidth katakana KA and the voiced sound mark compose to GA under NFC.
    assert.equal(prepareLocalpart('\uff76\uff9e'), '\u30ac');
  });

  it('accepts letters with diacritics', () => {
    assert.equal(Jid.parse('\u0159@example.com').local, '\u0159');
    assert.equal(prepareLocalpart('\u0158'), '\u0159');
  });

  it('normalizes to NFC', () => {
    assert.equal(prepareLocalpart('r\u030c'), '\u0159');
    assert.ok(Jid.parse('r\u030c@example.com').equals(Jid.parse('\u0159@example.com')));
  });

  it('maps capital and small sigma together and keeps final sigma apart', () => {
    assert.ok(Jid.parse('\u03a3@example.com').equals(Jid.parse('\u03c3@example.com')));
    assert.ok(!Jid.parse('\u03c2@example.com').equals(Jid.parse('\u03c3@example.com')));
    // toLowerCase applies the Final_Sigma context: a closing capital sigma becomes final sigma.
    assert.equal(prepareLocalpart('\u039f\u0394\u039f\u03a3'), '\u03bf\u03b4\u03bf\u03c2');
  });

  it('keeps sharp s distinct from ss', () => {
    assert.ok(!Jid.parse('fu\u00dfball@example.com').equals(Jid.parse('fussball@example.com')));
  });

  it('rejects every RFC 7622 §3.3.1 excluded character', () => {
    for (const c of ['"', '&', "'", '/', ':', '<', '>', '@']) {
      assert.throws(() => prepareLocalpart(`a${c}b`), isMalformed, c);
    }
    // The fullwidth forms map onto the excluded ones.
    assert.throws(() => prepareLocalpart('a\uff06b'), isMalformed);
    assert.throws(() => prepareLocalpart('a\uff1ab'), isMalformed);
  });

  it('accepts the other printable ASCII characters', () => {
    assert.equal(prepareLocalpart('!#$%()*+,-.;=?[\\]^_`{|}~'), '!#$%()*+,-.;=?[\\]^_`{|}~');
  });

  it('rejects spaces, controls, symbols, compatibility characters, unassigned and ignorable code points', () => {
    const bad = [
      'a b', 'a\u00a0b', 'a\u3000b', 'a\tb', 'a\u007fb', 'a\u0085b', // spaces and controls
      '\u265a', 'a\u20acb', 'a\u00a9', '\u{1f37a}', // symbols
      'a\u00abb', 'a\u2014b', // non-ASCII punctuation
      '\ufb00', '\u00aa', '\u2163', '\u00bd', // HasCompat
      'a\u0378', 'a\u{e0080}', // unassigned
      'a\u00adb', 'a\ufe0f', 'a\ufdd0', // default ignorable, noncharacter
      'a\u200db', 'a\u200cb', // ZWJ/ZWNJ
      'a\ue000', // private use
      'a\ud800b', // lone surrogate
      'a\u0640b', // exception: ARABIC TATWEEL disallowed
      'a\u1100', // old Hangul jamo (a jamo pair would compose into a syllable under NFC)
    ];
    for (const s of bad) assert.throws(() => prepareLocalpart(s), isMalformed, JSON.stringify(s));
  });

  it('applies the CONTEXTO rules', () => {
    assert.equal(prepareLocalpart('l\u00b7l'), 'l\u00b7l');
    assert.throws(() => prepareLocalpart('a\u00b7b'), isMalformed);
    assert.equal(prepareLocalpart('\u0375\u03b1'), '\u0375\u03b1');
    assert.throws(() => prepareLocalpart('\u0375a'), isMalformed);
    assert.equal(prepareLocalpart('\u05d0\u05f3'), '\u05d0\u05f3');
    assert.throws(() => prepareLocalpart('a\u05f3'), isMalformed);
    assert.equal(prepareLocalpart('\u30a2\u30fb\u30a4'), '\u30a2\u30fb\u30a4');
    assert.throws(() => prepareLocalpart('a\u30fbb'), isMalformed);
    assert.throws(() => prepareLocalpart('\u0628\u0661\u06f1'), isMalformed);
  });

  it('applies the Bidi Rule to strings with right-to-left characters', () => {
    assert.equal(prepareLocalpart('\u05d0\u05d1'), '\u05d0\u05d1');
    assert.equal(prepareLocalpart('\u05d0\u05d11'), '\u05d0\u05d11'); // RTL may end in a European digit
    assert.equal(prepareLocalpart('\u0627\u0644\u0639\u0631\u0628\u064a\u0629'), '\u0627\u0644\u0639\u0631\u0628\u064a\u0629');
    assert.throws(() => prepareLocalpart('a\u05d0'), isMalformed); // LTR start, RTL inside (rule 5)
    assert.throws(() => prepareLocalpart('1\u05d0'), isMalformed); // must start with L, R or AL (rule 1)
    assert.throws(() => prepareLocalpart('\u05d0a'), isMalformed); // L inside an RTL string (rule 2)
    assert.throws(() => prepareLocalpart('\u05d0-'), isMalformed); // must end in R, AL, EN or AN (rule 3)
    assert.throws(() => prepareLocalpart('\u0627\u0661\u06f1'), isMalformed); // AN with EN (rule 4)
    // Left-to-right strings without RTL characters are not subject to it.
    assert.equal(prepareLocalpart('1a'), '1a');
  });

  it('is idempotent', () => {
    const samples = [
      'Alice', '\uff21\uff22\uff23', '\u0158', 'r\u030c', '\u039f\u0394\u039f\u03a3', '\u03a3', '\u0130stanbul',
      'fu\u00dfball', '\u05d0\u05d1', '\u00c5ngstr\u00f6m', 'A\u030a', '\uff76\uff9e', '\u1e9e', 'caf\u00e9',
    ];
    for (const s of samples) {
      const once = prepareLocalpart(s);
      assert.equal(prepareLocalpart(once), once, JSON.stringify(s));
    }
  });

  it('rejects a localpart that is empty', () => {
    assert.throws(() => prepareLocalpart(''), isMalformed);
  });
});

describe('domainpart (RFC 7622 §3.2)', () => {
  it('keeps IP literals, lower-casing IPv6', () => {
    assert.deepEqual(parts('user@[::1]'), ['user', '[::1]', '']);
    assert.equal(prepareDomainpart('[2001:DB8::1]'), '[2001:db8::1]');
    assert.equal(prepareDomainpart('192.0.2.1'), '192.0.2.1');
    for (const s of ['[::1', '[1.2.3.4]', '[fe80::1%eth0]', '[]', '[example.com]']) {
      assert.throws(() => prepareDomainpart(s), isMalformed, s);
    }
  });

  it('rejects numeric names that are not dotted-quad IPv4 addresses', () => {
    for (const s of ['1.2.3', '123', '1.2.3.999', '01.2.3.4', '0x7f.1']) {
      assert.throws(() => prepareDomainpart(s), isMalformed, s);
    }
  });

  it('removes a single trailing dot', () => {
    assert.equal(prepareDomainpart('example.com.'), 'example.com');
    assert.ok(Jid.parse('a@Example.COM.').equals(Jid.parse('a@example.com')));
    assert.throws(() => prepareDomainpart('example.com..'), isMalformed);
    assert.throws(() => prepareDomainpart('.'), isMalformed);
  });

  it('converts internationalized names to lower-case U-labels', () => {
    assert.equal(prepareDomainpart('b\u00fccher.example'), 'b\u00fccher.example');
    assert.equal(prepareDomainpart('xn--bcher-kva.example'), 'b\u00fccher.example');
    assert.equal(prepareDomainpart('XN--BCHER-KVA.example'), 'b\u00fccher.example');
    assert.equal(prepareDomainpart('B\u00dcCHER.Example'), 'b\u00fccher.example');
    assert.equal(prepareDomainpart('\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d'), 'example.com');
    assert.equal(prepareDomainpart('fa\u00df.de'), 'fa\u00df.de');
    assert.equal(prepareDomainpart('\u0627\u0644\u0639\u0631\u0628\u064a\u0629.example'), '\u0627\u0644\u0639\u0631\u0628\u064a\u0629.example');
  });

  it('rejects characters that are not allowed in a domain name', () => {
    const bad = [
      'exa mple.com', 'exa@mple.com', 'exa/mple', 'exa<mple.com', 'exa>mple.com', 'exa"mple.com',
      'exa_mple.com', 'exa\u00a0mple.com', 'exa\uff20mple.com', '\u265a.example', 'a\u00a9.example',
    ];
    for (const s of bad) assert.throws(() => prepareDomainpart(s), isMalformed, JSON.stringify(s));
    assertMalformed('user@exa mple.com');
  });

  it('checks labels: 1 to 63 octets, no empty label, hyphen rules, valid A-labels', () => {
    assert.equal(prepareDomainpart('a'.repeat(63) + '.com'), 'a'.repeat(63) + '.com');
    for (const s of [
      'a'.repeat(64) + '.com', 'a..b', '.a', '-a.com', 'a-.com', 'ab--c.com', 'xn--zz.com', 'xn--a.com',
      // A U-label whose A-label exceeds 63 octets.
      '\u00fc'.repeat(60) + '.com',
    ]) {
      assert.throws(() => prepareDomainpart(s), isMalformed, s);
    }
  });

  it('rejects right-to-left labels that break the Bidi Rule', () => {
    assert.throws(() => prepareDomainpart('\u05d0a.example'), isMalformed);
    assert.throws(() => prepareDomainpart('1\u05d0.example'), isMalformed);
  });

  it('is idempotent', () => {
    for (const s of ['Example.COM.', 'xn--bcher-kva.example', 'B\u00dcCHER.example', '[2001:DB8::1]', '192.0.2.1', 'fa\u00df.de']) {
      const once = prepareDomainpart(s);
      assert.equal(prepareDomainpart(once), once, s);
    }
  });
});

describe('resourcepart: OpaqueString', () => {
  it('preserves case, @ and /', () => {
    assert.equal(prepareResourcepart('Phone/Home@Work'), 'Phone/Home@Work');
  });

  it('maps non-ASCII spaces to U+0020 and normalizes to NFC', () => {
    assert.equal(prepareResourcepart('a\u00a0b\u3000c\u2003d'), 'a b c d');
    assert.equal(prepareResourcepart('e\u0301'), '\u00e9');
  });

  it('keeps fullwidth, symbols and compatibility characters (FreeformClass)', () => {
    assert.equal(prepareResourcepart('\uff21\uff22'), '\uff21\uff22');
    assert.equal(prepareResourcepart('\u265a'), '\u265a');
    assert.equal(prepareResourcepart('\u{1f37a}'), '\u{1f37a}');
    assert.equal(prepareResourcepart('\u2163'), '\u2163');
  });

  it('rejects controls, unassigned, ignorable and join-control code points', () => {
    for (const s of ['a\0', 'a\tb', 'a\nb', 'a\u007f', 'a\u0378', 'a\u00ad', 'a\ufe0f', 'a\u200db', 'a\u2028b', 'a\ufffe']) {
      assert.throws(() => prepareResourcepart(s), isMalformed, JSON.stringify(s));
    }
  });

  it('rejects an empty resourcepart', () => {
    assert.throws(() => prepareResourcepart(''), isMalformed);
  });

  it('is idempotent', () => {
    for (const s of ['Phone', ' foo', 'a\u00a0b', 'e\u0301', '\uff21', '\u265a']) {
      const once = prepareResourcepart(s);
      assert.equal(prepareResourcepart(once), once, JSON.stringify(s));
    }
  });
});

describe('Jid API', () => {
  it('builds from parts with Jid.of, preparing each', () => {
    const j = Jid.of('Alice', 'Example.COM', 'Phone');
    assert.equal(j.toString(), 'alice@example.com/Phone');
    assert.equal(Jid.of('', 'example.com').toString(), 'example.com');
    assert.equal(Jid.of('a', 'example.com', '').toString(), 'a@example.com');
    assert.throws(() => Jid.of('a b', 'example.com'), isMalformed);
    assert.throws(() => Jid.of('a', ''), isMalformed);
    assert.throws(() => Jid.of('a', 'example.com', 'r\0'), isMalformed);
  });

  it('gives the bare JID, the same instance when already bare', () => {
    const full = Jid.parse('Alice@Example.com/Phone');
    assert.equal(full.isBare, false);
    assert.equal(full.bare.toString(), 'alice@example.com');
    assert.equal(full.bare.isBare, true);
    assert.equal(full.bare, full.bare);
    assert.equal(full.bareString, 'alice@example.com');
    const bare = Jid.parse('alice@example.com');
    assert.equal(bare.bare, bare);
    assert.equal(bare.bareString, bare.toString());
    assert.equal(Jid.parse('example.com/r').bareString, 'example.com');
  });

  it('replaces the resource with withResource, preparing it', () => {
    const j = Jid.parse('alice@example.com/one');
    const k = j.withResource('Two\u00a0Words');
    assert.equal(k.toString(), 'alice@example.com/Two Words');
    assert.equal(j.resource, 'one');
    assert.throws(() => j.withResource(''), isMalformed);
    assert.throws(() => j.withResource('a\u0000'), isMalformed);
  });

  it('compares by canonical form', () => {
    assert.ok(Jid.parse('Alice@EXAMPLE.com/r').equals(Jid.of('alice', 'example.com', 'r')));
    assert.ok(!Jid.parse('alice@example.com/r').equals(Jid.parse('alice@example.com/R')));
    assert.ok(!Jid.parse('alice@example.com').equals(Jid.parse('alice@example.com/r')));
    assert.ok(!Jid.parse('example.com').equals(Jid.parse('a@example.com')));
  });

  it('is immutable', () => {
    const j = Jid.parse('alice@example.com/r');
    assert.ok(Object.isFrozen(j));
    assert.throws(() => {
      (j as { local: string }).local = 'mallory';
    }, TypeError);
    assert.equal(j.local, 'alice');
  });

  it('returns the cached instance for a repeated input and evicts the oldest past 10,000 entries', () => {
    const first = Jid.parse('cache-first@example.com/r');
    assert.equal(Jid.parse('cache-first@example.com/r'), first);
    for (let i = 0; i < 10_000; i++) Jid.parse(`cache-${i}@example.com`);
    const again = Jid.parse('cache-first@example.com/r');
    assert.notEqual(again, first);
    assert.ok(again.equals(first));
    assert.equal(Jid.parse('cache-9999@example.com'), Jid.parse('cache-9999@example.com'));
  });

  it('never caches failures as successes', () => {
    assertMalformed('a b@example.com');
    assertMalformed('a b@example.com');
  });

  it('tryParse returns undefined for malformed input and the Jid otherwise', () => {
    assert.equal(Jid.tryParse('@'), undefined);
    assert.equal(Jid.tryParse('alice@example.com')?.local, 'alice');
  });
});
