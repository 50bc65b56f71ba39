// The XMPP load generator: `node bench/run.ts SCENARIO [options]` (see bench/README.md, "Load generator").
// This process forks the generator processes (bench/worker.ts), keeps them in step at barriers, measures the
// server from /proc, and prints a table on stderr and exactly one JSON line on stdout.
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseOptions, UsageError, USAGE, type BenchOptions } from './lib/options.ts';
import { formatTable, fmt, ProgressBar } from './lib/output.ts';
import type { FromWorker, Progress, ToWorker, WorkerResult } from './lib/protocol.ts';
import { summarize, type Measurements } from './lib/report.ts';
import { CONNECT_CAP_MS } from './lib/scenarios.ts';
import { ownCpuSeconds, processCpuSeconds, processRssBytes, round1, round3 } from './lib/stats.ts';

/** After the last session is up, the server gets this long to settle before its memory is read. */
const SETTLE_MS = 2000;
/** A worker above this share of one core may be holding the figures down. */
const CPU_WARNING = 0.8;

const UNITS: Record<string, string> = { login: 'logins', msg: 'delivered', store: 'accepted', drain: 'delivered', fill: 'accepted', mam: 'pages' };

type Worker = { child: ChildProcess; index: number; progress?: Progress; result?: WorkerResult; done: boolean };

class Coordinator {
  private readonly opts: BenchOptions;
  private readonly bar: ProgressBar;
  private readonly workers: Worker[] = [];
  private readonly arrivals = new Map<string, Map<number, Record<string, number>>>();
  private readonly m: Measurements = { measureWallSeconds: 0 };
  private measureStart = 0;
  private serverCpuStart = 0;
  private phaseStarted = new Map<string, number>();
  private failure: string | undefined;
  private finished!: () => void;
  private readonly done = new Promise<void>((resolve) => {
    this.finished = resolve;
  });

  constructor(opts: BenchOptions, bar: ProgressBar) {
    this.opts = opts;
    this.bar = bar;
  }

  async run(count: number): Promise<{ results: WorkerResult[]; measurements: Measurements; failure?: string | undefined }> {
    const script = fileURLToPath(new URL('./worker.ts', import.meta.url));
    if (this.opts.scenario === 'idle' && this.opts.pid !== undefined) this.m.rssBeforeBytes = processRssBytes(this.opts.pid);
    for (let index = 0; index < count; index++) {
      // The workers' stdout is not ours: exactly one JSON line goes there, from this process.
      const child = fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const w: Worker = { child, index, done: false };
      this.workers.push(w);
      child.on('message', (msg: FromWorker) => {
        void this.onMessage(w, msg).catch((err: unknown) => this.fail(`coordinator: ${(err as Error).message}`));
      });
      // 'close' comes after the IPC channel is drained, so a result sent just before exiting is not missed.
      child.on('close', (code, signal) => {
        w.done = true;
        if (!w.result && !this.failure) this.fail(`generator process ${index + 1} exited (${signal ?? `code ${code}`}) before reporting`);
        if (this.workers.every((x) => x.done)) this.finished();
      });
      const task: ToWorker = { type: 'task', task: { options: this.opts, index, workers: count } };
      child.send(task);
    }
    const o = this.opts;
    const phaseCap = o.scenario === 'login' && o.logins === 0 ? o.duration : o.scenario === 'msg' ? o.duration + 5 : o.cap;
    const watchdogMs = 2 * CONNECT_CAP_MS + phaseCap * 1000 + 60_000;
    const watchdog = setTimeout(() => this.fail(`the run took longer than its cap of ${Math.round(watchdogMs / 1000)} s`), watchdogMs);
    await this.done;
    clearTimeout(watchdog);
    this.bar.clear();
    return { results: this.workers.flatMap((w) => (w.result ? [w.result] : [])), measurements: this.m, failure: this.failure };
  }

  fail(message: string): void {
    if (this.failure) return;
    this.failure = message;
    for (const w of this.workers) if (!w.done) w.child.kill('SIGTERM');
  }

  private async onMessage(w: Worker, msg: FromWorker): Promise<void> {
    switch (msg.type) {
      case 'progress':
        w.progress = msg.progress;
        this.render();
        return;
      case 'failed':
        this.fail(`generator process ${w.index + 1}: ${msg.message}`);
        return;
      case 'result':
        w.result = msg.result;
        return;
      case 'barrier': {
        let arrived = this.arrivals.get(msg.barrier);
        if (!arrived) this.arrivals.set(msg.barrier, (arrived = new Map()));
        arrived.set(w.index, msg.data);
        if (arrived.size < this.workers.length || this.failure) return;
        const data = await this.atBarrier(msg.barrier, [...arrived.values()]);
        if (this.failure) return;
        const release: ToWorker = { type: 'release', barrier: msg.barrier, data };
        for (const x of this.workers) if (!x.done) x.child.send(release);
      }
    }
  }

  /** What happens while every worker waits at a barrier; the answer goes back with the release. */
  private async atBarrier(name: string, data: Array<Record<string, number>>): Promise<Record<string, number>> {
    const pid = this.opts.pid;
    if (name === 'go') {
      if (pid !== undefined) this.serverCpuStart = processCpuSeconds(pid);
      this.measureStart = performance.now();
      return {};
    }
    if (name === 'measured') {
      this.m.measureWallSeconds = (performance.now() - this.measureStart) / 1000;
      if (pid !== undefined) this.m.serverCpuSeconds = processCpuSeconds(pid) - this.serverCpuStart;
      if (this.opts.scenario === 'idle' && pid !== undefined) {
        this.bar.update('settle', 1, `${SETTLE_MS / 1000} s before reading the server's memory`, true);
        await sleep(SETTLE_MS);
        this.m.rssAfterBytes = processRssBytes(pid);
      }
      if (this.opts.scenario === 'offline') {
        const stored = data.reduce((a, d) => a + (d.stored ?? 0), 0);
        return { skipDrain: stored === 0 ? 1 : 0 };
      }
    }
    return {};
  }

  private render(): void {
    const ps = this.workers.flatMap((w) => (w.progress ? [w.progress] : []));
    const phase = ps[0]?.phase;
    if (phase === undefined) return;
    const same = ps.filter((p) => p.phase === phase);
    const done = same.reduce((a, p) => a + p.done, 0);
    const total = same.reduce((a, p) => a + p.total, 0);
    const count = same.reduce((a, p) => a + p.count, 0);
    const failures = same.reduce((a, p) => a + p.failures, 0);
    if (!this.phaseStarted.has(phase)) this.phaseStarted.set(phase, performance.now());
    const timed = phase === 'login' && this.opts.logins === 0 || phase === 'msg';
    const unit = UNITS[phase] ?? (phase.startsWith('connect') ? 'sessions' : 'done');
    const elapsed = (performance.now() - (this.phaseStarted.get(phase) as number)) / 1000;
    const detail = timed
      ? `${(done / same.length / 1000).toFixed(1)}/${this.opts.duration} s  ${fmt(count)} ${unit}`
      : `${fmt(count)}/${fmt(total)} ${unit}  ${elapsed.toFixed(1)} s`;
    this.bar.update(phase, total > 0 ? done / total : 0, failures > 0 ? `${detail}  (${fmt(failures)} failed)` : detail);
  }
}

async function main(argv: string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message === '') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  const cpu0 = ownCpuSeconds();
  // One user's archive is one client's work: more processes would only sit idle.
  const workers = opts.scenario === 'mam' || opts.scenario === 'mam-fill' ? 1 : opts.workers;
  // The account range goes with the figures when it is not the default one, so a run can be traced to its users.
  const head = { scenario: opts.scenario, server: opts.server, tls: opts.tls, mech: opts.mech, ...(opts.offset > 0 ? { offset: opts.offset } : {}) };
  const bar = new ProgressBar(!opts.jsonOnly);
  const coordinator = new Coordinator(opts, bar);
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    coordinator.fail('interrupted');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let run;
  try {
    run = await coordinator.run(workers);
  } catch (err) {
    coordinator.fail((err as Error).message);
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.stdout.write(JSON.stringify({ ...head, error: (err as Error).message }) + '\n');
    return 1;
  }
  if (run.failure) {
    process.stderr.write(`error: ${run.failure}\n`);
    process.stdout.write(JSON.stringify({ ...head, error: run.failure }) + '\n');
    return interrupted ? 130 : 1;
  }

  const report = summarize(opts, run.results, run.measurements);
  const workerCpu = run.results.map((r) => (r.measuredWallSeconds > 0 ? r.measuredCpuSeconds / r.measuredWallSeconds : 0));
  const generator = {
    workers,
    cpuSeconds: round3(run.results.reduce((a, r) => a + r.cpuSeconds, 0) + ownCpuSeconds() - cpu0),
    cpuPercent: round1(workerCpu.reduce((a, x) => a + x, 0) * 100),
    maxWorkerCpuPercent: round1(Math.max(0, ...workerCpu) * 100),
  };
  const warnings = [...report.warnings];
  // For idle the figure is memory, which a busy generator cannot distort.
  if (opts.scenario !== 'idle' && workerCpu.some((x) => x > CPU_WARNING)) {
    warnings.push(`a generator process used ${generator.maxWorkerCpuPercent}% of a core while measuring: the generator may be the bottleneck (try --workers ${workers + 1})`);
  }
  const server: Record<string, number> = {};
  const m = run.measurements;
  if (m.serverCpuSeconds !== undefined) {
    server.serverCpuSeconds = round3(m.serverCpuSeconds);
    // /proc counts in 10 ms ticks: over a shorter window a percentage would be noise.
    if (m.measureWallSeconds >= 0.5) server.serverCpuPercent = round1((m.serverCpuSeconds / m.measureWallSeconds) * 100);
  }
  const out: Record<string, unknown> = report.error === undefined
    ? { ...head, ...report.figures, generator, ...server }
    : { ...head, error: report.error, ...(report.error === 'unsupported' ? { detail: warnings.join(' | ') || undefined } : {}), ...report.figures, generator, ...server };

  if (!opts.jsonOnly) {
    const rows = [...report.rows];
    rows.push(['generator CPU', `${generator.cpuPercent}% of a core (${workers} process${workers > 1 ? 'es' : ''}, max ${generator.maxWorkerCpuPercent}% each), ${generator.cpuSeconds} s in all`]);
    if (server.serverCpuSeconds !== undefined) {
      const percent = server.serverCpuPercent === undefined ? '' : `${server.serverCpuPercent}% of a core, `;
      rows.push(['server CPU', `${percent}${server.serverCpuSeconds} s while measuring`]);
    }
    const title = `${opts.scenario} · ${opts.server} · ${opts.host}:${opts.port} · tls ${opts.tls} · ${opts.mech}${opts.sm ? ' · sm' : ''}`;
    process.stderr.write('\n' + formatTable(title, rows));
  }
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (report.error !== undefined && report.error !== 'unsupported') process.stderr.write(`error: ${report.error}\n`);
  if (report.error === 'unsupported') process.stderr.write(`the server does not support this scenario${warnings.length ? ` (${warnings[0]})` : ''}\n`);
  process.stdout.write(JSON.stringify(out) + '\n');
  return report.error === undefined || report.error === 'unsupported' ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
