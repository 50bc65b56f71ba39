// Turns the workers' counters and histograms into each scenario's figures (names fixed by the bench contract).
import type { BenchOptions } from './options.ts';
import type { WorkerResult } from './protocol.ts';
import { Histogram, round1, round3 } from './stats.ts';
import { fmt, fmtBytes, type Row } from './output.ts';
import { DRAIN_MS } from './scenarios.ts';

/** What the coordinator measured itself. */
export type Measurements = {
  /** Wall time of the measured phase, from the 'go' release to the last worker reaching 'measured'. */
  measureWallSeconds: number;
  serverCpuSeconds?: number | undefined;
  rssBeforeBytes?: number | undefined;
  rssAfterBytes?: number | undefined;
};

export type Report = {
  figures: Record<string, unknown>;
  rows: Row[];
  warnings: string[];
  /** Set when the run measured nothing useful; 'unsupported' when the server lacks the feature. */
  error?: string | undefined;
};

const sum = (results: WorkerResult[], key: string): number => results.reduce((a, r) => a + (r.counters[key] ?? 0), 0);
const max = (results: WorkerResult[], key: string): number => results.reduce((a, r) => Math.max(a, r.counters[key] ?? 0), 0);

function merged(results: WorkerResult[], name: string): Histogram {
  const h = new Histogram();
  for (const r of results) {
    const data = r.histograms[name];
    if (data) h.merge(data);
  }
  return h;
}

function firstErrors(results: WorkerResult[]): string[] {
  return results.flatMap((r) => r.errors).slice(0, 3);
}

export function summarize(opts: BenchOptions, results: WorkerResult[], m: Measurements): Report {
  switch (opts.scenario) {
    case 'login': return login(opts, results);
    case 'idle': return idle(opts, results, m);
    case 'msg': return msg(opts, results);
    case 'offline': return offline(opts, results);
    case 'mam': return mam(opts, results);
    case 'mam-fill': return mamFill(opts, results);
  }
}

function login(opts: BenchOptions, results: WorkerResult[]): Report {
  const h = merged(results, 'login');
  const logins = sum(results, 'logins');
  const failures = sum(results, 'failures');
  const seconds = opts.logins > 0 ? max(results, 'elapsedMs') / 1000 : opts.duration;
  const figures = {
    loginsPerSec: seconds > 0 ? round1(logins / seconds) : 0,
    logins, failures, p50Ms: h.percentileMs(50), p99Ms: h.percentileMs(99), maxMs: h.maxMs,
    concurrency: opts.concurrency, duration: round3(seconds),
  };
  const warnings = failures > 0 ? [`${failures} login(s) failed, e.g.: ${firstErrors(results).join(' | ')}`] : [];
  return {
    figures,
    rows: [
      ['logins/s', fmt(figures.loginsPerSec)],
      ['logins', fmt(logins)],
      ['failures', fmt(failures)],
      ['latency p50', `${fmt(figures.p50Ms, 2)} ms`],
      ['latency p99', `${fmt(figures.p99Ms, 2)} ms`],
      ['latency max', `${fmt(figures.maxMs, 2)} ms`],
      ['concurrency', fmt(opts.concurrency)],
    ],
    warnings,
    error: logins === 0 ? `no login succeeded: ${firstErrors(results).join(' | ') || 'no attempt finished'}` : undefined,
  };
}

function idle(opts: BenchOptions, results: WorkerResult[], m: Measurements): Report {
  const sessions = sum(results, 'sessions');
  const before = m.rssBeforeBytes ?? null;
  const after = m.rssAfterBytes ?? null;
  const perSession = before !== null && after !== null && sessions > 0 ? Math.round((after - before) / sessions) : null;
  const lost = sum(results, 'lostBeforeMeasure');
  const warnings: string[] = [];
  if (opts.pid === undefined) warnings.push('no --pid: the server memory was not measured');
  if (lost > 0) warnings.push(`${lost} session(s) were closed by the server before the measurement`);
  const figures = { sessions, rssBeforeBytes: before, rssAfterBytes: after, bytesPerSession: perSession };
  return {
    figures,
    rows: [
      ['sessions', fmt(sessions)],
      ['server RSS before', fmtBytes(before)],
      ['server RSS after', fmtBytes(after)],
      ['bytes per session', perSession === null ? '-' : `${fmt(perSession)} (${fmtBytes(perSession)})`],
    ],
    warnings,
    error: lost > 0 ? `${lost} of ${sessions} sessions were lost before the measurement` : undefined,
  };
}

function msg(opts: BenchOptions, results: WorkerResult[]): Report {
  const h = merged(results, 'latency');
  const open = opts.rate > 0;
  const sent = sum(results, 'sent');
  const delivered = sum(results, 'delivered');
  const bounced = sum(results, 'bounced');
  const dropped = sum(results, 'dropped');
  const seconds = max(results, 'elapsedMs') / 1000;
  const msgsPerSec = seconds > 0 ? round1(sum(results, 'deliveredInWindow') / seconds) : 0;
  const figures: Record<string, unknown> = { mode: open ? 'open' : 'closed', pairs: opts.pairs };
  if (open) figures.rate = opts.rate;
  else figures.window = opts.window;
  Object.assign(figures, {
    delivered, sent, msgsPerSec, p50Ms: h.percentileMs(50), p99Ms: h.percentileMs(99), maxMs: h.maxMs,
    lost: sent - delivered, bounced, duration: opts.duration,
  });
  if (open) figures.maxScheduleLagMs = round3(max(results, 'maxLagUs') / 1000);
  const warnings: string[] = [];
  if (bounced > 0) warnings.push(`${bounced} message(s) bounced, e.g.: ${firstErrors(results).join(' | ')}`);
  if (sent - delivered > 0) warnings.push(`${sent - delivered} message(s) did not arrive within ${DRAIN_MS / 1000} s after the sending stopped`);
  if (open && (figures.maxScheduleLagMs as number) > 10) warnings.push(`the generator fell up to ${fmt(figures.maxScheduleLagMs as number)} ms behind its schedule`);
  let error: string | undefined;
  if (dropped > 0) error = `${dropped} session(s) were closed by the server during the run: ${firstErrors(results).join(' | ')}`;
  else if (delivered === 0) error = `no message was delivered${bounced > 0 ? `: ${firstErrors(results).join(' | ')}` : ''}`;
  const rows: Row[] = [
    ['mode', open ? `open loop, ${fmt(opts.rate)} msgs/s` : `closed loop, window ${opts.window}`],
    ['pairs', fmt(opts.pairs)],
    ['delivered/s', fmt(msgsPerSec)],
    ['sent', fmt(sent)],
    ['delivered', fmt(delivered)],
    ['lost', fmt(sent - delivered)],
    ['latency p50', `${fmt(figures.p50Ms as number, 3)} ms`],
    ['latency p99', `${fmt(figures.p99Ms as number, 3)} ms`],
    ['latency max', `${fmt(figures.maxMs as number, 3)} ms`],
  ];
  if (open) rows.push(['schedule lag max', `${fmt(figures.maxScheduleLagMs as number, 3)} ms`]);
  return { figures, rows, warnings, error };
}

function offline(opts: BenchOptions, results: WorkerResult[]): Report {
  const messages = sum(results, 'messages');
  const stored = sum(results, 'stored');
  const bounced = sum(results, 'bounced');
  const delivered = sum(results, 'delivered');
  const storeSeconds = max(results, 'storeMs') / 1000;
  const drainSeconds = max(results, 'drainMs') / 1000;
  const figures = {
    messages,
    storePerSec: storeSeconds > 0 ? round1(stored / storeSeconds) : 0,
    drainSeconds: round3(drainSeconds),
    drainPerSec: drainSeconds > 0 ? round1(delivered / drainSeconds) : 0,
    stored, delivered, bounced, pairs: opts.pairs,
  };
  const warnings: string[] = [];
  const errs = firstErrors(results);
  if (bounced > 0 && stored > 0) warnings.push(`${bounced} message(s) were bounced, e.g.: ${errs.join(' | ')}`);
  if (stored === 0) warnings.push(`all ${bounced} message(s) to offline users were bounced, e.g.: ${errs.join(' | ')}`);
  if (stored > 0 && delivered < stored) warnings.push(`${stored - delivered} stored message(s) never arrived`);
  let error: string | undefined;
  if (stored === 0) error = 'unsupported';
  return {
    figures,
    rows: [
      ['messages', fmt(messages)],
      ['stored', fmt(stored)],
      ['bounced', fmt(bounced)],
      ['store rate', `${fmt(figures.storePerSec)} msgs/s`],
      ['delivered', fmt(delivered)],
      ['drain time', `${fmt(figures.drainSeconds, 3)} s`],
      ['drain rate', `${fmt(figures.drainPerSec)} msgs/s`],
    ],
    warnings,
    error,
  };
}

function mam(opts: BenchOptions, results: WorkerResult[]): Report {
  const h = merged(results, 'page');
  const size = max(results, 'archiveSize');
  const figures = {
    archiveSize: size > 0 ? size : null,
    pages: sum(results, 'pages'),
    pageP50Ms: h.percentileMs(50), pageP99Ms: h.percentileMs(99), pageMaxMs: h.maxMs,
    pageSize: opts.pageSize, messagesFetched: sum(results, 'fetched'),
  };
  const unsupported = sum(results, 'unsupported') > 0;
  return {
    figures,
    rows: [
      ['archive size', fmt(figures.archiveSize)],
      ['pages', fmt(figures.pages)],
      ['messages fetched', fmt(figures.messagesFetched)],
      ['page p50', `${fmt(figures.pageP50Ms, 3)} ms`],
      ['page p99', `${fmt(figures.pageP99Ms, 3)} ms`],
    ],
    warnings: unsupported ? firstErrors(results) : [],
    error: unsupported ? 'unsupported' : figures.pages === 0 ? 'no page was fetched' : undefined,
  };
}

function mamFill(_opts: BenchOptions, results: WorkerResult[]): Report {
  const accepted = sum(results, 'accepted');
  const bounced = sum(results, 'bounced');
  const seconds = max(results, 'fillMs') / 1000;
  const figures = {
    messages: sum(results, 'messages'), accepted, bounced, delivered: sum(results, 'delivered'),
    seconds: round3(seconds), fillPerSec: seconds > 0 ? round1(accepted / seconds) : 0,
  };
  return {
    figures,
    rows: [
      ['messages accepted', fmt(accepted)],
      ['bounced', fmt(bounced)],
      ['seconds', fmt(figures.seconds, 3)],
      ['fill rate', `${fmt(figures.fillPerSec)} msgs/s`],
    ],
    warnings: bounced > 0 ? [`${bounced} message(s) bounced, e.g.: ${firstErrors(results).join(' | ')}`] : [],
    error: accepted === 0 ? 'no message was accepted' : undefined,
  };
}
