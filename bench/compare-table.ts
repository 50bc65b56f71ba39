// Turns the JSON lines of bench/compare.sh into one side-by-side Markdown table, with medians over runs and
// each figure of Parley divided by the same figure of the other servers (the issue's targets are stated so).
//
//   node bench/compare-table.ts .bench-out/compare-STAMP.jsonl [more.jsonl ...]   (or JSON lines on stdin)
import { readFileSync } from 'node:fs';

type Line = Record<string, unknown>;

type Better = 'higher' | 'lower' | 'none';
type Unit = 'count' | 'rate' | 'ms' | 'bytes' | 'pct';
/** A target on parley ÷ ejabberd (the issue's targets are all against ejabberd), and optionally an absolute one. */
type Target = { op: '>=' | '<='; factor: number; absMax?: number; text: string };
type Metric = { path: string; label: string; better: Better; unit: Unit; target?: Target };
type Variant = { title: (l: Line) => string; metrics: Metric[] };

const GEN_CPU: Metric = { path: 'generator.cpuPercent', label: 'generator CPU %', better: 'none', unit: 'pct' };
const SERVER_CPU: Metric = { path: 'serverCpuPercent', label: 'server CPU %', better: 'none', unit: 'pct' };
/** What other processes on the machine took of the server's CPU during the run (measured by compare.sh). */
const OTHER_CPU0: Metric = { path: 'otherCpu0Percent', label: 'others on the server\'s CPU %', better: 'none', unit: 'pct' };

/** The figures shown per variant (compare.sh's labels), in the contract's field names. */
export const VARIANTS: Record<string, Variant> = {
  login: {
    title: (l) => `login (${str(l.tls)}, ${str(l.mech)}${l.concurrency ? `, ${str(l.concurrency)} at once` : ''})`,
    metrics: [
      { path: 'loginsPerSec', label: 'logins/s', better: 'higher', unit: 'rate', target: { op: '>=', factor: 1.5, text: '≥ 1.5× ejabberd' } },
      { path: 'p50Ms', label: 'login p50 ms', better: 'lower', unit: 'ms' },
      { path: 'p99Ms', label: 'login p99 ms', better: 'lower', unit: 'ms' },
      { path: 'failures', label: 'failed logins', better: 'lower', unit: 'count' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
  idle: {
    title: (l) => `idle (${str(l.tls)}, ${fmt(num(l.sessions), 'count')} sessions)`,
    metrics: [
      { path: 'bytesPerSession', label: 'server RSS per session', better: 'lower', unit: 'bytes', target: { op: '<=', factor: 0.5, text: '≤ 0.5× ejabberd' } },
      { path: 'sessions', label: 'sessions held', better: 'higher', unit: 'count' },
      { path: 'rssAfterBytes', label: 'server RSS with sessions', better: 'lower', unit: 'bytes' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
  'msg-closed': {
    title: (l) => `msg closed loop (${str(l.tls)}, ${str(l.pairs)} pairs, max rate)`,
    metrics: [
      { path: 'msgsPerSec', label: 'delivered msgs/s', better: 'higher', unit: 'rate', target: { op: '>=', factor: 3, text: '≥ 3× ejabberd' } },
      { path: 'p50Ms', label: 'latency p50 ms', better: 'lower', unit: 'ms' },
      { path: 'p99Ms', label: 'latency p99 ms', better: 'lower', unit: 'ms' },
      { path: 'lost', label: 'lost', better: 'lower', unit: 'count' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
  'msg-sm': {
    title: (l) => `msg closed loop with stream management (${str(l.tls)}, ${str(l.pairs)} pairs)`,
    metrics: [
      { path: 'msgsPerSec', label: 'delivered msgs/s', better: 'higher', unit: 'rate', target: { op: '>=', factor: 3, text: '≥ 3× ejabberd' } },
      { path: 'p99Ms', label: 'latency p99 ms', better: 'lower', unit: 'ms' },
      { path: 'lost', label: 'lost', better: 'lower', unit: 'count' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
  'msg-open': {
    title: (l) => `msg open loop (${str(l.tls)}, ${str(l.pairs)} pairs, ${fmt(num(l.rate), 'count')} msgs/s)`,
    metrics: [
      { path: 'p99Ms', label: 'latency p99 ms', better: 'lower', unit: 'ms', target: { op: '<=', factor: 1, absMax: 2, text: '≤ 2 ms and ≤ ejabberd' } },
      { path: 'p50Ms', label: 'latency p50 ms', better: 'lower', unit: 'ms' },
      { path: 'maxMs', label: 'latency max ms', better: 'lower', unit: 'ms' },
      { path: 'maxScheduleLagMs', label: 'generator behind schedule, max ms', better: 'none', unit: 'ms' },
      { path: 'msgsPerSec', label: 'delivered msgs/s', better: 'higher', unit: 'rate' },
      { path: 'lost', label: 'lost', better: 'lower', unit: 'count' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
  offline: {
    title: (l) => `offline (${fmt(num(l.messages), 'count')} messages)`,
    metrics: [
      { path: 'storePerSec', label: 'stored msgs/s', better: 'higher', unit: 'rate', target: { op: '>=', factor: 2, text: '≥ 2× ejabberd' } },
      { path: 'drainPerSec', label: 'drained msgs/s', better: 'higher', unit: 'rate', target: { op: '>=', factor: 2, text: '≥ 2× ejabberd' } },
      { path: 'drainSeconds', label: 'drain s', better: 'lower', unit: 'ms' },
      { path: 'delivered', label: 'delivered', better: 'higher', unit: 'count' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
  mam: {
    title: (l) => `mam (archive of ${fmt(num(l.archiveSize), 'count')})`,
    metrics: [
      { path: 'pageP50Ms', label: 'page p50 ms', better: 'lower', unit: 'ms', target: { op: '<=', factor: 0.5, text: '≤ 0.5× ejabberd' } },
      { path: 'pageP99Ms', label: 'page p99 ms', better: 'lower', unit: 'ms', target: { op: '<=', factor: 0.5, text: '≤ 0.5× ejabberd' } },
      { path: 'pages', label: 'pages', better: 'higher', unit: 'count' },
      SERVER_CPU,
      GEN_CPU,
      OTHER_CPU0,
    ],
  },
};

function errorText(l: Line): string {
  return typeof l.detail === 'string' && l.detail !== '' ? `${String(l.error)} (${l.detail})` : String(l.error);
}

// Without TLS the figures and targets are the same ("without TLS as well", "for plain TCP and for TLS separately").
VARIANTS['login-plain'] = VARIANTS.login as Variant;
VARIANTS['idle-plain'] = VARIANTS.idle as Variant;
VARIANTS['mam-fill'] = {
  title: (l) => `mam archive fill (${fmt(num(l.messages), 'count')} messages from one account to another)`,
  metrics: [
    { path: 'fillPerSec', label: 'archived msgs/s', better: 'higher', unit: 'rate' },
    { path: 'accepted', label: 'accepted', better: 'higher', unit: 'count' },
    { path: 'bounced', label: 'bounced', better: 'lower', unit: 'count' },
    SERVER_CPU,
    GEN_CPU,
  ],
};

function str(v: unknown): string {
  return v === undefined || v === null ? '?' : String(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function get(line: Line, path: string): number | undefined {
  let cur: unknown = line;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return num(cur);
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

export function fmt(v: number | undefined, unit: Unit): string {
  if (v === undefined) return '–';
  if (unit === 'bytes') {
    if (Math.abs(v) >= 1024 * 1024 * 10) return `${(v / 1024 / 1024).toFixed(0)} MiB`;
    if (Math.abs(v) >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
    return `${Math.round(v)} B`;
  }
  if (unit === 'ms' || unit === 'pct') {
    if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
    if (Math.abs(v) >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }
  if (Math.abs(v) >= 100 || unit === 'count') return Math.round(v).toLocaleString('en-US');
  return v.toFixed(1);
}

function ratioText(r: number): string {
  if (!Number.isFinite(r)) return '–';
  return `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`;
}

/** The generator says "unsupported", or a login failed on a feature the server does not offer. */
function isUnsupported(error: string): boolean {
  return error.includes('unsupported') || error.includes('does not offer');
}

type Cell = { values: number[]; runs: number; errors: string[] };

export type Table = { markdown: string; targets: Array<{ variant: string; metric: string; met: boolean | undefined }> };

export function buildTable(lines: Line[]): Table {
  const meta = lines.find((l) => l.meta === 'compare');
  const results = lines.filter((l) => typeof l.scenario === 'string');
  const servers: string[] = [];
  const metaServers = meta?.servers as Record<string, { version?: string; runtime?: string }> | undefined;
  for (const s of Object.keys(metaServers ?? {})) servers.push(s);
  for (const l of results) if (typeof l.server === 'string' && !servers.includes(l.server)) servers.push(l.server);
  // Parley first: every ratio is against it.
  servers.sort((a, b) => (a === 'parley' ? -1 : b === 'parley' ? 1 : 0));
  const others = servers.includes('parley') ? servers.filter((s) => s !== 'parley') : [];

  const variants: string[] = [];
  const sample = new Map<string, Line>();
  const byKey = new Map<string, Line[]>();
  for (const l of results) {
    const variant = typeof l.variant === 'string' ? l.variant
      : l.scenario === 'msg' ? `msg-${l.mode === 'open' ? 'open' : 'closed'}` : String(l.scenario);
    if (!variants.includes(variant)) variants.push(variant);
    const key = `${variant}\u0000${String(l.server)}`;
    const list = byKey.get(key) ?? [];
    list.push(l);
    byKey.set(key, list);
    if (l.error === undefined && !sample.has(variant)) sample.set(variant, l);
  }

  const out: string[] = [];
  const targets: Table['targets'] = [];
  if (meta) {
    out.push(`- Run on ${str(meta.date)}, ${str(meta.nproc)} cores (${str(meta.cpu)}), Node ${str(meta.node)}; ` +
      `median of ${str(meta.runs)} run(s) per figure${meta.quick === true ? ' (--quick: a smoke test, not a measurement)' : ''}.`);
    if (metaServers) {
      out.push('- Servers: ' + Object.entries(metaServers)
        .map(([s, v]) => `${s} ${v.version ?? '?'} (${v.runtime ?? '?'})`).join(', ') + '.');
    }
    for (const [s, v] of Object.entries(metaServers ?? {})) {
      const mods = (v as { modules?: string }).modules;
      if (mods) out.push(`- Modules on in ${s}: ${mods}.`);
    }
    const sizes = meta.sizes as Record<string, unknown> | undefined;
    if (sizes && typeof sizes === 'object') {
      const n = (k: string): string => fmt(num(sizes[k]), 'count');
      out.push(`- Sizes: ${n('duration')} s per login and msg run, ${n('sessions')} idle sessions, ${n('pairs')} msg pairs ` +
        `(window ${n('window')}), ${n('offlineMessages')} offline messages, an archive of ${n('mamMessages')} messages ` +
        `paged ${n('mamPages')} pages of 50; ${n('accounts')} accounts, each msg, offline and mam-fill run on accounts of its own.`);
    }
    if (typeof meta.command === 'string') out.push(`- Command: \`${meta.command}\``);
    out.push('');
  }

  const header = ['scenario', 'figure', ...servers, ...others.map((o) => `parley ÷ ${o}`), 'target'];
  out.push(`| ${header.join(' | ')} |`);
  out.push(`|${header.map((_, i) => (i < 2 || i === header.length - 1 ? '---' : '---:')).join('|')}|`);

  const problems: string[] = [];
  for (const variant of variants) {
    const spec = VARIANTS[variant];
    const first = sample.get(variant) ?? results.find((l) => (l.variant ?? l.scenario) === variant) ?? {};
    const title = spec ? spec.title(first) : variant;
    const metrics: Metric[] = spec?.metrics ?? Object.keys(first)
      .filter((k) => typeof first[k] === 'number' && k !== 'run')
      .map((k) => ({ path: k, label: k, better: 'none' as Better, unit: 'rate' as Unit }));

    const cells = new Map<string, Map<string, Cell>>();
    for (const server of servers) {
      const runs = byKey.get(`${variant}\u0000${server}`) ?? [];
      const perMetric = new Map<string, Cell>();
      for (const m of metrics) {
        const cell: Cell = { values: [], runs: runs.length, errors: [] };
        for (const r of runs) {
          if (r.error !== undefined) {
            cell.errors.push(errorText(r));
            continue;
          }
          const v = get(r, m.path);
          if (v !== undefined) cell.values.push(v);
        }
        perMetric.set(m.path, cell);
      }
      cells.set(server, perMetric);
      const errs = runs.filter((r) => r.error !== undefined);
      if (errs.length > 0) {
        const reasons = [...new Set(errs.map(errorText))];
        problems.push(`- ${server}, ${variant}: ${errs.length} of ${runs.length} run(s) without figures: ${reasons.join('; ')}`);
      }
    }

    metrics.forEach((m, i) => {
      const row: string[] = [i === 0 ? title : '', m.label];
      const med = new Map<string, number | undefined>();
      for (const server of servers) {
        const cell = cells.get(server)?.get(m.path);
        const v = cell ? median(cell.values) : undefined;
        med.set(server, v);
        if (!cell || cell.runs === 0) row.push('not run');
        else if (v === undefined) row.push(cell.errors.some(isUnsupported) ? 'unsupported' : cell.errors.length > 0 ? 'failed' : '–');
        else row.push(fmt(v, m.unit) + (cell.values.length < cell.runs ? ` (${cell.values.length}/${cell.runs} runs)` : ''));
      }
      const p = med.get('parley');
      for (const o of others) {
        const v = med.get(o);
        row.push(p !== undefined && v !== undefined && v !== 0 && m.better !== 'none' ? ratioText(p / v) : '–');
      }
      let targetText = '';
      if (m.target) {
        const e = med.get('ejabberd');
        let met: boolean | undefined;
        if (p !== undefined && e !== undefined && e !== 0) {
          const r = p / e;
          met = m.target.op === '>=' ? r >= m.target.factor : r <= m.target.factor;
          if (m.target.absMax !== undefined) met = met && p <= m.target.absMax;
        }
        targets.push({ variant, metric: m.label, met });
        targetText = `${m.target.text}: ${met === undefined ? 'not measured' : met ? '**met**' : '**missed**'}`;
      }
      row.push(targetText);
      out.push(`| ${row.join(' | ')} |`);
    });
  }
  out.push('');
  // Which servers archived outside the mam scenario (compare.sh writes it into the module lists).
  const archiving = Object.entries(metaServers ?? {})
    .filter(([, v]) => typeof (v as { modules?: string }).modules === 'string' && /mam[^;]*in every scenario/.test((v as { modules: string }).modules))
    .map(([s]) => s);
  if (archiving.length > 0) {
    const rest = servers.filter((s) => !archiving.includes(s));
    out.push(`Archives: ${archiving.join(', ')} archived every message (XEP-0313, on by default) in every scenario` +
      (rest.length > 0 ? `; ${rest.join(' and ')} only in the mam scenario (their archives are off by default).` : '.'));
    out.push('');
  }
  out.push('Ratios are Parley\'s figure divided by the other server\'s: above 1 is better for rates (logins/s, msgs/s), ' +
    'below 1 is better for latencies and memory. "generator CPU %" is the load generator\'s own use of its core: ' +
    'near 100 means the generator, not the server, may be the limit.');
  const disturbed = results.filter((l) => (num(l.otherCpu0Percent) ?? 0) > 10 || (num(l.otherCpu1Percent) ?? 0) > 10);
  if (disturbed.length > 0) {
    out.push('');
    out.push(`Caution: in ${disturbed.length} of ${results.length} run(s) other processes took more than 10% of the ` +
      `server's CPU (0) or the generator's (1) (${disturbed.map((l) => `${String(l.server)} ${String(l.variant ?? l.scenario)} ` +
      `#${String(l.run)}: ${String(l.otherCpu0Percent)}%/${String(l.otherCpu1Percent)}%`).join(', ')}); their figures may be off.`);
  }
  if (problems.length > 0) {
    out.push('');
    out.push('Runs without figures:');
    out.push(...problems);
  }
  return { markdown: out.join('\n') + '\n', targets };
}

export function parseLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    const t = raw.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v: unknown = JSON.parse(t);
      if (v && typeof v === 'object' && !Array.isArray(v)) lines.push(v as Line);
    } catch {
      process.stderr.write(`compare-table: skipping a line that is not JSON: ${t.slice(0, 80)}\n`);
    }
  }
  return lines;
}

async function main(): Promise<number> {
  const files = process.argv.slice(2);
  let text = '';
  if (files.length === 0) {
    for await (const chunk of process.stdin) text += String(chunk);
  } else {
    for (const f of files) text += readFileSync(f, 'utf8') + '\n';
  }
  const lines = parseLines(text);
  if (!lines.some((l) => typeof l.scenario === 'string')) {
    process.stderr.write('compare-table: no results in the input\n');
    return 1;
  }
  process.stdout.write(buildTable(lines).markdown);
  return 0;
}

if (import.meta.main) {
  main().then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`compare-table: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
