// PRECIS (RFC 8264) with the RFC 8265 UsernameCaseMapped and OpaqueString profiles, applied to JID parts per RFC 7622 §3.
import { isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { StanzaError } from '../core/errors.ts';

/** RFC 7622 §3.1: each part is at most 1023 octets of UTF-8 once prepared. */
export const MAX_PART_BYTES = 1023;

function fail(text: string): never {
  throw StanzaError.jidMalformed(text);
}

function hex(cp: number): string {
  return 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');
}

function checkLength(s: string, what: string): void {
  // UTF-8 is never shorter than UTF-16 code units, and never more than 3 bytes per unit.
  if (s.length > MAX_PART_BYTES || (s.length * 3 > MAX_PART_BYTES && Buffer.byteLength(s, 'utf8') > MAX_PART_BYTES)) {
    fail(`${what} longer than ${MAX_PART_BYTES} bytes`);
  }
}

/** Bounds the work done on hostile input: preparation never shrinks a string by a factor of three. */
function checkInputLength(s: string, what: string): void {
  if (s.length > MAX_PART_BYTES * 3) fail(`${what} longer than ${MAX_PART_BYTES} bytes`);
}

function codePoints(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// RFC 8264 §9 categories and the §8 derived-property algorithm.

type Derived = 'PVALID' | 'FREE_PVAL' | 'CONTEXTJ' | 'CONTEXTO' | 'DISALLOWED' | 'UNASSIGNED';

/** RFC 5892 §2.6 exceptions (RFC 8264 §9.6 category F). */
const EXCEPTIONS = new Map<number, 'PVALID' | 'CONTEXTO' | 'DISALLOWED'>([
  [0x00df, 'PVALID'], [0x03c2, 'PVALID'], [0x06fd, 'PVALID'], [0x06fe, 'PVALID'], [0x0f0b, 'PVALID'], [0x3007, 'PVALID'],
  [0x00b7, 'CONTEXTO'], [0x0375, 'CONTEXTO'], [0x05f3, 'CONTEXTO'], [0x05f4, 'CONTEXTO'], [0x30fb, 'CONTEXTO'],
  [0x0640, 'DISALLOWED'], [0x07fa, 'DISALLOWED'], [0x302e, 'DISALLOWED'], [0x302f, 'DISALLOWED'],
  [0x3031, 'DISALLOWED'], [0x3032, 'DISALLOWED'], [0x3033, 'DISALLOWED'], [0x3034, 'DISALLOWED'],
  [0x3035, 'DISALLOWED'], [0x303b, 'DISALLOWED'],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');

const RE_UNASSIGNED = /^\p{Cn}$/u;
const RE_NONCHARACTER = /^\p{Noncharacter_Code_Point}$/u;
const RE_PRECIS_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const RE_CONTROL = /^\p{Cc}$/u;
const RE_LETTER_DIGITS = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
const RE_OTHER_LETTER_DIGITS = /^[\p{Lt}\p{Nl}\p{No}\p{Me}]$/u;
const RE_SPACES = /^\p{Zs}$/u;
const RE_SYMBOLS = /^[\p{Sm}\p{Sc}\p{Sk}\p{So}]$/u;
const RE_PUNCTUATION = /^\p{P}$/u;

/** Hangul_Syllable_Type L, V or T (RFC 8264 §9.9, OldHangulJamo); ECMAScript has no property escape for it. */
function isOldHangulJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97c) ||
    (cp >= 0xd7b0 && cp <= 0xd7c6) || (cp >= 0xd7cb && cp <= 0xd7fb);
}

/**
 * RFC 8264 §8. Categories that the base class decides (ID_DIS or FREE_PVAL) come back as
 * FREE_PVAL: valid in FreeformClass, disallowed in IdentifierClass.
 */
function derivedProperty(cp: number): Derived {
  const ex = EXCEPTIONS.get(cp);
  if (ex !== undefined) return ex;
  const ch = String.fromCodePoint(cp);
  // Unassigned excludes noncharacters, which PrecisIgnorableProperties catches below.
  if (RE_UNASSIGNED.test(ch) && !RE_NONCHARACTER.test(ch)) return 'UNASSIGNED';
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID';
  if (cp === 0x200c || cp === 0x200d) return 'CONTEXTJ';
  if (isOldHangulJamo(cp)) return 'DISALLOWED';
  if (RE_PRECIS_IGNORABLE.test(ch)) return 'DISALLOWED';
  if (RE_CONTROL.test(ch)) return 'DISALLOWED';
  if (ch.normalize('NFKC') !== ch) return 'FREE_PVAL'; // HasCompat
  if (RE_LETTER_DIGITS.test(ch)) return 'PVALID';
  if (RE_OTHER_LETTER_DIGITS.test(ch) || RE_SPACES.test(ch) || RE_SYMBOLS.test(ch) || RE_PUNCTUATION.test(ch)) {
    return 'FREE_PVAL';
  }
  return 'DISALLOWED';
}

const RE_GREEK = /^\p{Script=Greek}$/u;
const RE_HEBREW = /^\p{Script=Hebrew}$/u;
const RE_KANA_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

/** RFC 5892 Appendix A.3–A.9: the CONTEXTO rules. */
function contextOk(cps: readonly number[], i: number): boolean {
  const cp = cps[i]!;
  const before = cps[i - 1];
  const after = cps[i + 1];
  switch (cp) {
    case 0x00b7: // MIDDLE DOT only between two 'l' (Catalan l·l)
      return before === 0x6c && after === 0x6c;
    case 0x0375: // GREEK LOWER NUMERAL SIGN before a Greek character
      return after !== undefined && RE_GREEK.test(String.fromCodePoint(after));
    case 0x05f3:
    case 0x05f4: // HEBREW GERESH / GERSHAYIM after a Hebrew character
      return before !== undefined && RE_HEBREW.test(String.fromCodePoint(before));
    case 0x30fb: // KATAKANA MIDDLE DOT with some Hiragana, Katakana or Han in the string
      return cps.some((c) => c !== 0x30fb && RE_KANA_HAN.test(String.fromCodePoint(c)));
  }
  if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9);
  if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669);
  return false;
}

/**
 * Validates against IdentifierClass or FreeformClass. ZWNJ/ZWJ (CONTEXTJ) are rejected outright:
 * their rule needs combining-class and joining-type data that ECMAScript does not expose.
 */
function checkClass(cps: readonly number[], freeform: boolean, what: string): void {
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    const p = derivedProperty(cp);
    if (p === 'PVALID' || (p === 'FREE_PVAL' && freeform)) continue;
    if (p === 'CONTEXTO' && contextOk(cps, i)) continue;
    fail(`${what} contains ${p === 'UNASSIGNED' ? 'unassigned' : 'disallowed'} character ${hex(cp)}`);
  }
}

/**
 * RFC 8264 §7: rules are reapplied until the output is stable; a string still changing after
 * three extra rounds is rejected.
 */
function stabilize(s: string, map: (s: string) => string, what: string): string {
  let cur = map(s);
  for (let i = 0; i < 3; i++) {
    const next = map(cur);
    if (next === cur) return cur;
    cur = next;
  }
  fail(`${what} does not stabilize under preparation`);
}

// ---------------------------------------------------------------------------------------------
// Width mapping (RFC 8265 §3.3.2 rule 1): each <wide> or <narrow> character to its decomposition
// mapping. Runs of [first, last, mapping of first] taken from UnicodeData.txt (Unicode 15.0);
// NFKC cannot stand in for it because some mappings decompose further (U+FFE3, Hangul).

const WIDTH_RUNS: readonly (readonly [number, number, number])[] = [
  [0x3000, 0x3000, 0x20], [0xff01, 0xff5e, 0x21], [0xff5f, 0xff60, 0x2985], [0xff61, 0xff61, 0x3002],
  [0xff62, 0xff63, 0x300c], [0xff64, 0xff64, 0x3001], [0xff65, 0xff65, 0x30fb], [0xff66, 0xff66, 0x30f2],
  [0xff67, 0xff67, 0x30a1], [0xff68, 0xff68, 0x30a3], [0xff69, 0xff69, 0x30a5], [0xff6a, 0xff6a, 0x30a7],
  [0xff6b, 0xff6b, 0x30a9], [0xff6c, 0xff6c, 0x30e3], [0xff6d, 0xff6d, 0x30e5], [0xff6e, 0xff6e, 0x30e7],
  [0xff6f, 0xff6f, 0x30c3], [0xff70, 0xff70, 0x30fc], [0xff71, 0xff71, 0x30a2], [0xff72, 0xff72, 0x30a4],
  [0xff73, 0xff73, 0x30a6], [0xff74, 0xff74, 0x30a8], [0xff75, 0xff76, 0x30aa], [0xff77, 0xff77, 0x30ad],
  [0xff78, 0xff78, 0x30af], [0xff79, 0xff79, 0x30b1], [0xff7a, 0xff7a, 0x30b3], [0xff7b, 0xff7b, 0x30b5],
  [0xff7c, 0xff7c, 0x30b7], [0xff7d, 0xff7d, 0x30b9], [0xff7e, 0xff7e, 0x30bb], [0xff7f, 0xff7f, 0x30bd],
  [0xff80, 0xff80, 0x30bf], [0xff81, 0xff81, 0x30c1], [0xff82, 0xff82, 0x30c4], [0xff83, 0xff83, 0x30c6],
  [0xff84, 0xff84, 0x30c8], [0xff85, 0xff8a, 0x30ca], [0xff8b, 0xff8b, 0x30d2], [0xff8c, 0xff8c, 0x30d5],
  [0xff8d, 0xff8d, 0x30d8], [0xff8e, 0xff8e, 0x30db], [0xff8f, 0xff93, 0x30de], [0xff94, 0xff94, 0x30e4],
  [0xff95, 0xff95, 0x30e6], [0xff96, 0xff9b, 0x30e8], [0xff9c, 0xff9c, 0x30ef], [0xff9d, 0xff9d, 0x30f3],
  [0xff9e, 0xff9f, 0x3099], [0xffa0, 0xffa0, 0x3164], [0xffa1, 0xffbe, 0x3131], [0xffc2, 0xffc7, 0x314f],
  [0xffca, 0xffcf, 0x3155], [0xffd2, 0xffd7, 0x315b], [0xffda, 0xffdc, 0x3161], [0xffe0, 0xffe1, 0xa2],
  [0xffe2, 0xffe2, 0xac], [0xffe3, 0xffe3, 0xaf], [0xffe4, 0xffe4, 0xa6], [0xffe5, 0xffe5, 0xa5],
  [0xffe6, 0xffe6, 0x20a9], [0xffe8, 0xffe8, 0x2502], [0xffe9, 0xffec, 0x2190], [0xffed, 0xffed, 0x25a0],
  [0xffee, 0xffee, 0x25cb],
];
const RE_HAS_WIDE = /[\u3000\uff01-\uffee]/;
const RE_WIDE_CHAR = /[\u3000\uff01-\uffee]/g;

function widthChar(ch: string): string {
  const cp = ch.charCodeAt(0);
  for (const [first, last, to] of WIDTH_RUNS) {
    if (cp >= first && cp <= last) return String.fromCharCode(to + cp - first);
  }
  return ch;
}

function mapWidth(s: string): string {
  return RE_HAS_WIDE.test(s) ? s.replace(RE_WIDE_CHAR, widthChar) : s;
}

// ---------------------------------------------------------------------------------------------
// The Bidi Rule (RFC 5893 §2). ECMAScript exposes no Bidi_Class, so the classes other than L
// come from a table generated from UnicodeData.txt (Unicode 15.0, with the DerivedBidiClass
// defaults for unassigned code points in the right-to-left blocks), with the classes the rule
// treats alike merged: R = R|AL, A = AN, E = EN, O = ES|CS|ET|ON|BN, N = NSM, X = every class the
// rule never allows. Each run is <class><gap from previous run, base 36>.<length - 1, base 36>.

const BIDI_RUNS =
  'O0.8X0.4O0.dX0.4O0.eE0.9O0.6Oq.5Oq.9X0.0O0.zO1.6E0.1O0.0O1.2E0.0O1.4On.0Ov.0Och.1O7.dO2.dO5.8O1.' +
  'gN0.33O4.1O8.0O5.1O1.0O32.0N3w.6O74.0O2.2R0.0N0.18R0.0N0.0R0.0N0.1R0.0N0.1R0.0N0.0R0.1jA0.5O0.1R' +
  '0.0O0.1R0.0O0.0R0.0O0.1N0.aR0.1bN0.kA0.9O0.0A0.1R0.2N0.0R0.2sN0.6A0.0O0.0N0.5R0.1N0.1O0.0N0.3R0.' +
  '1E0.9R0.mN0.0R0.tN0.qR0.2iN0.aR0.1lN0.8R0.1O0.3R0.2N0.0R0.nN0.3R0.0N0.8R0.0N0.2R0.0N0.4R0.16N0.2' +
  'R0.1fA0.1R0.5N0.7R0.15N0.nA0.0N0.vN1j.0N1.0N4.7N4.0N3.6Na.1Nt.0N1m.0N4.3N8.0Nk.1Oe.1O7.0N2.0N2.1' +
  'N1l.0N4.1N4.1N2.2N3.0Nu.1N3.0Nb.1N1l.0N4.4N1.1N4.0Nk.1Od.0N8.5N1.0N1m.0N2.0N1.3N8.0N7.1Nb.1Nu.0N' +
  '1p.0Nc.0O11.7N5.0N3.0N1j.0N1.2N5.2N1.3N7.1Nb.1Ok.6N2.0N1m.0Nf.1Nk.1Ns.1N1l.1N4.3N8.0Nk.1Nt.0N20.' +
  '0N7.2N1.0N2i.0N2.6O4.0N7.7N2q.0N2.8Nb.6N21.1Nr.0N1.0N1.0O0.3N1f.dN1.4N1.1N5.aN1.zN9.0N2u.3N1.5N1' +
  '.1N2.1Np.1N4.2Ng.3Nd.0N2.1N6.0Nf.0Njj.2O1c.9O2u.0Xhr.0Oq.1N39.2Nt.1Nu.1Nu.1N1s.1N1.6N8.0N2.aO7.0' +
  'N1.0Oi.9O6.aN0.2O0.0N0.0N39.1Ny.0N3a.2N4.1N9.0N6.2O4.0O3.1O48.xNn.1N2.0N1m.0N1.6N1.0N1.0N2.7N6.9' +
  'N2.0N1c.uN1d.3N1c.0N1.4N1.0N5.0N14.8Nc.1Nw.3N2.1N1.2N1k.0N1.1N3.0N1.2N1m.7N2.1N48.2N1.cN1.6N4.0N' +
  '6.0N3.1N5i.1rOcd.0O1.2Ob.2Od.2Od.2Od.1X1.aO0.2R1.0O0.nX0.6O0.1bX0.0O0.4X1.3O0.5E0.0E3.5O0.4E1.9O' +
  '0.4Oh.1bN0.wOf.1O1.3O1.1Oa.0O1.2O5.5O1.0O1.0O1.0O4.0Ob.1O4.4O5.3O2.fO15.2O4.bpO1x.pO1.40Op.aOl.1' +
  '3E0.jO26.chO1.9eO74.hfO2.vO1.2wO6d.5N4.2O7.6N3j.0N2o.vO0.2lOy.pO1.2gOc.5xOq.bX4.0O0.3O3.oN9.3O2.' +
  '0O5.1O5.2N2h.1O0.1O3.0O2i.0O5g.zO1l.1O1d.fOs.2O1e.eOc.3O4n.3O2r.1Ov.0O534.1rOh3k.1iO92.2N2n.3O0.' +
  '0N0.9O0.1Nu.1N28.1Oe.xO2u.0N3d.0N3.0N4.0Np.1O1.3N0.0Ob.1O1m.3N24.1Nq.hNd.0N12.7Np.aN1a.2N1c.0N2.' +
  '3N2.1N13.0N1v.5N2.1N2.1Nc.0N8.0N1b.0N1f.0N1.2N2.1N5.1N1.0N16.1N8.0O37.1N3d.0N2.0N4.0Rfn3.0N0.0R0' +
  '.9O0.0R0.erO0.hR0.3iO0.0Rw.cO0.2N0.fO0.9N6.fO0.yO1.iO1.3R4.3yO0.0O1.eE0.9O0.6Oq.5Oq.aO3e.6O1.6Oa' +
  '.4O77.0O1q.24O3.cO3.0N2k.0N6a.0E0.qN3e.4Rw5.7yO0.0R0.68N0.2R0.0N0.1R0.4N0.3R0.13N0.2R0.3N0.0R0.4' +
  'kN0.1R0.29O0.6R0.dfN0.3R0.7A0.9R0.85A0.uR0.17N0.1R0.27N0.2R0.1xN0.aR0.1cN0.3R0.3dN1.0N1i.eOb.jNa' +
  '.0N2.1Na.2N1d.3N2.1N7.0N1p.2N10.4N1.7N1q.0Nc.1N1g.8Na.3N2.0N2n.2N2.0N1.1N6.0N2.0N4d.0N3.7Nl.1N1l' +
  '.1N3.0N11.6N3.4N5f.7N2.2N1.0Nn.0N2c.5N1.0N4.1N1.1N6m.3N6.1N1.1Nr.1N2d.7N2.0N1.1Ov.cN1q.0N1.0N2.5' +
  'N1.0N2t.2N2.3N1.4N77.8N1.1N74.1N1.0N4.0N40.3N2.1N4.0Nw.5N2.1N14.5N2.3N8.0N9.5N2.2N1a.cN1.1Nba.6N' +
  '1.5N2c.lN2.6N1.1N1.1N3e.5N3.0N1.1N1.6N1.0N20.1N3.0N1.0N9n.1Nb.1N1g.4N5.0N1.0O42.sN40e.0N6.eNasa.' +
  '4N1n.6Nt4.0N1r.3O27.0N1.0Nf5k.1O1.3N3mk.19N2.mNf4.2O9.7N0.7N2.6Nu.3O1n.1Ol.1tN0.2O0.0O56.2eOp0.0' +
  'O1l.0O1l.0O1l.0O1l.0Ea.1dNe8.1iN4.1dN8.0Ne.0Nm.4N1.eN11s.6N1.gN2.6N1.1N1.4N2s.0N4g.6Naf.0N1p.3Of' +
  '.0Ndo.3Rls.5rN0.6R0.30N0.6R0.okR1s.drO0.1R0.7hO0.17O4.2rOc.eO2.eO1.eO1.10Ea.aO0.4Ov.0O1m.5O1p.0O' +
  '4y.5O4a.rbO4.gO3.cO3.3aO4.2mO6.bO4.0Of.bO4.1jO8.9O6.13O8.tO2.1O26.9fOc.dO2.cO3.8O7.19O1.6O8.dO4.' +
  '8O7.8O7.42O1.1iE11.9Ogvlz.0Ou.2nN3k.6n';

type BidiClass = 'L' | 'R' | 'A' | 'E' | 'O' | 'N' | 'X';
let bidiStarts: Uint32Array | undefined;
let bidiEnds: Uint32Array | undefined;
let bidiClasses = '';

function loadBidi(): void {
  const re = /([A-Z])([0-9a-z]+)\.([0-9a-z]+)/g;
  const starts: number[] = [];
  const ends: number[] = [];
  let next = 0;
  for (const m of BIDI_RUNS.matchAll(re)) {
    const start = next + parseInt(m[2]!, 36);
    const end = start + parseInt(m[3]!, 36);
    starts.push(start);
    ends.push(end);
    bidiClasses += m[1]!;
    next = end + 1;
  }
  bidiStarts = Uint32Array.from(starts);
  bidiEnds = Uint32Array.from(ends);
}

function bidiClass(cp: number): BidiClass {
  if (bidiStarts === undefined) loadBidi();
  const starts = bidiStarts!;
  let lo = 0;
  let hi = starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (starts[mid]! > cp) hi = mid - 1;
    else if (bidiEnds![mid]! < cp) lo = mid + 1;
    else return bidiClasses[mid] as BidiClass;
  }
  return 'L';
}

/** Applies only to strings holding a right-to-left character (R, AL or AN), per RFC 8265 §3.3.2. */
function checkBidi(cps: readonly number[], what: string): void {
  const classes = cps.map(bidiClass);
  if (!classes.some((c) => c === 'R' || c === 'A')) return;
  const bad = (rule: number): never => fail(`${what} violates rule ${rule} of the Bidi Rule (RFC 5893)`);
  const first = classes[0];
  if (first !== 'L' && first !== 'R') bad(1);
  let end = classes.length - 1;
  while (end > 0 && classes[end] === 'N') end--;
  const last = classes[end];
  if (first === 'R') {
    if (classes.some((c) => c === 'L' || c === 'X')) bad(2);
    if (last !== 'R' && last !== 'E' && last !== 'A') bad(3);
    if (classes.includes('E') && classes.includes('A')) bad(4);
  } else {
    if (classes.some((c) => c === 'R' || c === 'A' || c === 'X')) bad(5);
    if (last !== 'L' && last !== 'E') bad(6);
  }
}

// ---------------------------------------------------------------------------------------------
// Localpart: UsernameCaseMapped (RFC 8265 §3.3) plus RFC 7622 §3.3.1's exclusions.

// Printable ASCII is PVALID in IdentifierClass, already NFC and left-to-right: only case mapping applies.
const RE_ASCII_PRINTABLE = /^[\x21-\x7e]+$/;
const RE_LOCAL_EXCLUDED = /["&'/:<>@]/;

function mapUsername(s: string): string {
  return mapWidth(s).toLowerCase().normalize('NFC');
}

export function prepareLocalpart(s: string): string {
  if (s === '') fail('empty localpart');
  checkInputLength(s, 'localpart');
  let out: string;
  if (RE_ASCII_PRINTABLE.test(s)) {
    out = s.toLowerCase();
  } else {
    out = stabilize(s, mapUsername, 'localpart');
    if (out === '') fail('empty localpart');
    const cps = codePoints(out);
    checkClass(cps, false, 'localpart');
    checkBidi(cps, 'localpart');
  }
  const excluded = RE_LOCAL_EXCLUDED.exec(out);
  if (excluded) fail(`localpart contains '${excluded[0]}'`);
  checkLength(out, 'localpart');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Resourcepart: OpaqueString (RFC 8265 §4.2). Case, '@' and '/' are kept: the resource is opaque.

const RE_ASCII_WITH_SPACE = /^[\x20-\x7e]+$/;
const RE_SPACE_SEPARATOR = /\p{Zs}/gu;

function mapOpaque(s: string): string {
  return s.replace(RE_SPACE_SEPARATOR, ' ').normalize('NFC');
}

export function prepareResourcepart(s: string): string {
  if (s === '') fail('empty resourcepart');
  checkInputLength(s, 'resourcepart');
  if (RE_ASCII_WITH_SPACE.test(s)) {
    checkLength(s, 'resourcepart');
    return s;
  }
  const out = stabilize(s, mapOpaque, 'resourcepart');
  if (out === '') fail('empty resourcepart');
  checkClass(codePoints(out), true, 'resourcepart');
  checkLength(out, 'resourcepart');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Domainpart (RFC 7622 §3.2): an IP literal, an IPv4 address, or an IDNA2008 domain name whose
// labels are kept as U-labels.

const RE_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const RE_ASCII_DOMAIN = /^[A-Za-z0-9.-]+$/;
const RE_ASCII_NOT_LDH = /[\x00-\x2c\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]/;
const RE_LDH_LABEL = /^[a-z0-9-]+$/;
const RE_DIGITS = /^\d+$/;
const RE_TRAILING_DOT = /[.\u3002\uff0e\uff61]$/;
const RE_NON_ASCII = /[^\x00-\x7f]/;
const RE_IDNA_IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{White_Space}\p{Noncharacter_Code_Point}]$/u;

function checkHyphens(label: string): void {
  if (label.startsWith('-') || label.endsWith('-')) fail(`domain label '${label}' starts or ends with '-'`);
  // RFC 5890 §2.3.1: '--' in positions 3 and 4 is reserved, and only 'xn--' is in use.
  if (label.slice(2, 4) === '--' && !label.startsWith('xn--')) fail(`domain label '${label}' is reserved`);
}

/** Checks the A-label form: LDH labels of 1 to 63 octets, no empty label, no all-numeric top label. */
function checkAsciiLabels(ascii: string): void {
  const labels = ascii.split('.');
  for (const label of labels) {
    if (label === '') fail('empty label in domainpart');
    if (label.length > 63) fail('domain label longer than 63 octets');
    if (!RE_LDH_LABEL.test(label)) fail(`domain label '${label}' is not letters, digits and hyphens`);
    checkHyphens(label);
  }
  // RFC 1123 §2.1: a top-level label is never all-numeric, which keeps names apart from IPv4 addresses.
  if (RE_DIGITS.test(labels[labels.length - 1]!)) fail('domainpart is neither an IPv4 address nor a domain name');
}

/**
 * RFC 5892 §3 for a U-label already mapped by UTS #46 (so already NFKC and case folded, which is
 * why the Unstable test is not repeated): letters, digits and marks only, with the CONTEXTO rules.
 * UTS #46 itself lets symbols and punctuation through, which IDNA2008 does not.
 */
function checkULabel(label: string): void {
  checkHyphens(label);
  const cps = codePoints(label);
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    if (cp < 0x80) continue; // LDH, checked on the A-label
    const ex = EXCEPTIONS.get(cp);
    if (ex === 'PVALID' || (ex === 'CONTEXTO' && contextOk(cps, i))) continue;
    // ZWNJ/ZWJ survive domainToASCII only when its CheckJoiners test (RFC 5892 A.1, A.2) passed.
    if (cp === 0x200c || cp === 0x200d) continue;
    const ch = String.fromCodePoint(cp);
    const ok = ex === undefined && !RE_UNASSIGNED.test(ch) && !RE_IDNA_IGNORABLE.test(ch) &&
      !(cp >= 0x20d0 && cp <= 0x20ff) && !(cp >= 0x1d100 && cp <= 0x1d24f) && !isOldHangulJamo(cp) &&
      RE_LETTER_DIGITS.test(ch);
    if (!ok) fail(`domainpart contains disallowed character ${hex(cp)}`);
  }
}

export function prepareDomainpart(s: string): string {
  if (s === '') fail('empty domainpart');
  checkInputLength(s, 'domainpart');
  if (s.startsWith('[')) {
    const inner = s.slice(1, -1);
    // RFC 3986 IP-literal: an IPv6 address, without a zone identifier.
    if (!s.endsWith(']') || inner.includes('%') || !isIPv6(inner)) fail('malformed IP literal in domainpart');
    return s.toLowerCase();
  }
  // RFC 7622 §3.2: a final label separator is stripped before any other canonicalization.
  let d = RE_TRAILING_DOT.test(s) ? s.slice(0, -1) : s;
  if (d === '') fail('empty domainpart');

  if (RE_ASCII_DOMAIN.test(d)) {
    d = d.toLowerCase();
    if (RE_IPV4.test(d)) return d;
    if (!d.includes('xn--')) {
      checkAsciiLabels(d);
      checkLength(d, 'domainpart');
      return d;
    }
  } else {
    if (RE_ASCII_NOT_LDH.test(d)) fail('domainpart contains a character not allowed in a domain name');
    d = stabilize(d, mapUsername, 'domainpart');
    if (RE_ASCII_NOT_LDH.test(d)) fail('domainpart contains a character not allowed in a domain name');
    if (RE_IPV4.test(d)) return d;
  }

  const ascii = domainToASCII(d);
  if (ascii === '') fail('domainpart is not a valid internationalized domain name');
  checkAsciiLabels(ascii);
  const unicode = domainToUnicode(ascii);
  // An A-label must decode to a U-label that encodes back to it (RFC 5891 §5.4).
  if (unicode === '' || domainToASCII(unicode) !== ascii) fail('domainpart holds an invalid A-label');
  for (const label of unicode.split('.')) {
    if (label.startsWith('xn--')) fail('domainpart holds an invalid A-label');
    if (RE_NON_ASCII.test(label)) checkULabel(label);
  }
  checkLength(unicode, 'domainpart');
  return unicode;
}
