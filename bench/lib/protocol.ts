// Messages between the coordinator (bench/run.ts) and its generator processes (bench/worker.ts), over IPC.
import type { HistogramData } from './stats.ts';
import type { BenchOptions } from './options.ts';

export type WorkerTask = { options: BenchOptions; index: number; workers: number };

export type ToWorker =
  | { type: 'task'; task: WorkerTask }
  /** Every worker reached the barrier; data is what the coordinator decided there. */
  | { type: 'release'; barrier: string; data: Record<string, number> };

/** done/total drive the bar (milliseconds for timed phases); count is the figure shown beside it. */
export type Progress = { phase: string; done: number; total: number; failures: number; count: number };

export type WorkerResult = {
  counters: Record<string, number>;
  histograms: Record<string, HistogramData>;
  errors: string[];
  /** CPU seconds of the whole run, and of the measured phase with its wall time. */
  cpuSeconds: number;
  measuredCpuSeconds: number;
  measuredWallSeconds: number;
};

export type FromWorker =
  | { type: 'barrier'; barrier: string; data: Record<string, number> }
  | { type: 'progress'; progress: Progress }
  | { type: 'result'; result: WorkerResult }
  | { type: 'failed'; message: string };
