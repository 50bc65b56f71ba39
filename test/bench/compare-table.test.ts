// The side-by-side table of bench/compare.sh (bench/compare-table.ts): medians over runs, ratios to Parley and
// the targets, for every scenario compare.sh runs, offline and mam included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildTable, parseLines } from '../../bench/compare-table.ts';

type Line = Record<string, unknown>;

const meta: Line = {
  meta: 'compare', date: 'Sun Nov 22 05:00:00 UTC 2026', nproc: 2, cpu: 'test cpu', node: 'v24.0.0', runs: 3, quick: false, users: 10000,
  sizes: { duration: 10, sessions: 10000, pairs: 50, window: 8, offlineMessages: 10000, mamMessages: 100000, mamPages: 100, accounts: 13606 },
  command: 'bash bench/compare.sh --runs 3',
  servers: {
    parley: { version: '0.1.0', runtime: 'v24', modules: 'disco roster offline mam; mam (archiving every message) in every scenario' },
    ejabberd: { version: '23.01', runtime: 'OTP 25', modules: 'mod_roster mod_offline; mam only in the mam scenario' },
    prosody: { version: '0.12.3', runtime: 'Lua 5.4', modules: 'roster offline; mam only in the mam scenario' },
  },
};

/** Three runs of a variant on one server, the figures of run r given by fn(r). */
function runs(server: string, variant: string, scenario: string, fn: (r: number) => Line): Line[] {
  return [1, 2, 3].map((run) => ({ scenario, server, variant, run, tls: 'starttls', mech: 'SCRAM-SHA-1', otherCpu0Percent: 0, otherCpu1Percent: 0, ...fn(run) }));
}

function rows(markdown: string, title: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${title}`));
  assert.ok(start >= 0, `a block titled ${title} in:\n${markdown}`);
  const out: string[][] = [];
  for (let i = start; i < lines.length; i++) {
    const l = lines[i] as string;
    if (!l.startsWith('|') || (i > start && !l.startsWith('|  |'))) break;
    out.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return out;
}

const lines: Line[] = [
  meta,
  ...runs('parley', 'offline', 'offline', (r) => ({ messages: 10000, storePerSec: 9000 + r * 1000, drainPerSec: 40000, drainSeconds: 0.25, delivered: 10000 })),
  ...runs('ejabberd', 'offline', 'offline', () => ({ messages: 10000, storePerSec: 2500, drainPerSec: 10000, drainSeconds: 1, delivered: 10000 })),
  ...runs('prosody', 'offline', 'offline', () => ({ messages: 10000, storePerSec: 5000, drainPerSec: 20000, drainSeconds: 0.5, delivered: 10000 })),
  { scenario: 'mam-fill', server: 'parley', variant: 'mam-fill', run: 1, messages: 100000, fillPerSec: 20000, accepted: 100000, bounced: 0 },
  { scenario: 'mam-fill', server: 'ejabberd', variant: 'mam-fill', run: 1, messages: 100000, fillPerSec: 400, accepted: 100000, bounced: 0 },
  { scenario: 'mam-fill', server: 'prosody', variant: 'mam-fill', run: 1, messages: 100000, fillPerSec: 200, accepted: 100000, bounced: 0 },
  ...runs('parley', 'mam', 'mam', (r) => ({ archiveSize: 100000, pages: 100, pageP50Ms: r, pageP99Ms: 4 })),
  ...runs('ejabberd', 'mam', 'mam', () => ({ archiveSize: 100000, pages: 100, pageP50Ms: 8, pageP99Ms: 16 })),
  // Prosody: one run failed; the other two give the figures, and the table says so.
  ...runs('prosody', 'mam', 'mam', (r) => (r === 3 ? { error: 'timed out after 310s' } : { archiveSize: 100000, pages: 100, pageP50Ms: 3, pageP99Ms: 6 })),
  ...runs('parley', 'msg-sm', 'msg', (r) => ({ pairs: 50, mode: 'closed', msgsPerSec: 30000 + r, p99Ms: 20, lost: 0 })),
  ...runs('ejabberd', 'msg-sm', 'msg', () => ({ pairs: 50, mode: 'closed', msgsPerSec: 7500, p99Ms: 170, lost: 0 })),
];

test('offline and mam land in the table with medians, ratios and targets', () => {
  const { markdown, targets } = buildTable(lines);

  const offline = rows(markdown, 'offline (10,000 messages)');
  assert.deepEqual(offline[0], ['offline (10,000 messages)', 'stored msgs/s', '11,000', '2,500', '5,000', '4.40×', '2.20×', '≥ 2× ejabberd: **met**']);
  assert.deepEqual(offline[1]?.slice(1), ['drained msgs/s', '40,000', '10,000', '20,000', '4.00×', '2.00×', '≥ 2× ejabberd: **met**']);

  const fill = rows(markdown, 'mam archive fill');
  assert.deepEqual(fill[0]?.slice(1, 7), ['archived msgs/s', '20,000', '400', '200', '50×', '100×']);

  const mam = rows(markdown, 'mam (archive of 100,000)');
  // Parley's median of 1, 2, 3 ms against ejabberd's 8: 0.25×, which meets "≤ 0.5× ejabberd".
  assert.deepEqual(mam[0]?.slice(1), ['page p50 ms', '2.00', '8.00', '3.00 (2/3 runs)', '0.25×', '0.67×', '≤ 0.5× ejabberd: **met**']);
  assert.deepEqual(mam[1]?.slice(1), ['page p99 ms', '4.00', '16.0', '6.00 (2/3 runs)', '0.25×', '0.67×', '≤ 0.5× ejabberd: **met**']);
  assert.match(markdown, /- prosody, mam: 1 of 3 run\(s\) without figures: timed out after 310s/);

  // A variant a server did not run says so, and has no ratio.
  const sm = rows(markdown, 'msg closed loop with stream management');
  assert.deepEqual(sm[0]?.slice(1), ['delivered msgs/s', '30,002', '7,500', 'not run', '4.00×', '–', '≥ 3× ejabberd: **met**']);

  assert.ok(targets.some((t) => t.variant === 'offline' && t.metric === 'stored msgs/s' && t.met === true));
  assert.ok(targets.some((t) => t.variant === 'mam' && t.metric === 'page p50 ms' && t.met === true));
});

test('the header says what was measured: sizes, modules, and who archived when', () => {
  const { markdown } = buildTable(lines);
  assert.match(markdown, /- Sizes: 10 s per login and msg run, 10,000 idle sessions, 50 msg pairs \(window 8\), 10,000 offline messages, an archive of 100,000 messages paged 100 pages of 50; 13,606 accounts/);
  assert.match(markdown, /- Modules on in parley: disco roster offline mam; mam \(archiving every message\) in every scenario\./);
  assert.match(markdown, /Archives: parley archived every message \(XEP-0313, on by default\) in every scenario; ejabberd and prosody only in the mam scenario/);
});

test('a missed target is marked as missed', () => {
  const slow = lines.map((l) => (l.server === 'parley' && l.variant === 'offline' ? { ...l, storePerSec: 3000 } : l));
  const { markdown, targets } = buildTable(slow);
  assert.equal(rows(markdown, 'offline (10,000 messages)')[0]?.[7], '≥ 2× ejabberd: **missed**');
  assert.ok(targets.some((t) => t.variant === 'offline' && t.metric === 'stored msgs/s' && t.met === false));
});

test('JSON lines are read back as compare.sh writes them', () => {
  const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\nnot json\n';
  const parsed = parseLines(text);
  assert.equal(parsed.length, lines.length);
  assert.equal(buildTable(parsed).markdown, buildTable(lines).markdown);
});
