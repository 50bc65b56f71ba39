// Fuzzing JID preparation (RFC 7622 with PRECIS): any string either parses or is jid-malformed, nothing else;
// a prepared JID is a fixed point, and its parts keep the RFC's length limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Jid } from '../../src/xmpp/jid.ts';
import { StanzaError } from '../../src/core/errors.ts';
import { fuzzOptions } from './runs.ts';

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

function check(input: string): void {
  let jid: Jid;
  try {
    jid = Jid.parse(input);
  } catch (err) {
    assert.ok(err instanceof StanzaError, `not a StanzaError: ${String(err)}`);
    assert.equal(err.condition, 'jid-malformed');
    return;
  }
  assert.ok(bytes(jid.local) <= 1023 && bytes(jid.domain) <= 1023 && bytes(jid.resource) <= 1023);
  assert.ok(jid.domain.length > 0);
  const again = Jid.parse(jid.toString());
  assert.equal(again.toString(), jid.toString(), 'preparation is idempotent');
  assert.equal(Jid.parse(jid.bareString).toString(), jid.bareString);
}

test('any string parses to a stable JID or is jid-malformed', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), check), fuzzOptions(2000));
});

test('JID-shaped strings with unusual characters parse to a stable JID or are jid-malformed', () => {
  const part = fc.string({ unit: fc.constantFrom('a', 'Z', 'é', 'ß', 'İ', 'ﬀ', 'Ⅸ', '\u0301', '\u200d', ' ', '\u00a0', '"', '&', "'", '/', ':', '<', '>', '@', '.', '。', 'Σ', 'ς', '🙂', '\ud800', 'x'), maxLength: 12 });
  fc.assert(fc.property(part, part, part, fc.boolean(), fc.boolean(), (l, d, r, withLocal, withResource) => {
    check(`${withLocal ? `${l}@` : ''}${d}${withResource ? `/${r}` : ''}`);
  }), fuzzOptions(2000));
});

test('very long parts are refused, not truncated', () => {
  fc.assert(fc.property(fc.integer({ min: 1000, max: 3100 }), fc.constantFrom('a', 'é', '🙂'), (n, ch) => {
    const long = ch.repeat(Math.ceil(n / bytes(ch)));
    check(`${long}@localhost`);
    check(`u@localhost/${long}`);
    check(long);
  }), fuzzOptions(200));
});
