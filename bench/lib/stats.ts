// Latency histograms with bounded memory, and CPU accounting for the generator and the server under test.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/**
 * An HDR-like histogram of microseconds: exact below 256 µs, then 128 sub-buckets per power of two (under 0.8%
 * relative error, about 8 µs at 1 ms), up to 2^24 µs (16.7 s); larger values land in the last bucket and
 * still count toward max. A few thousand counters, cheap to send between processes and to merge.
 */
const SUB = 128;
const EXACT = 2 * SUB;
const MAX_SHIFT = 24 - 8; // top magnitude: values below 2^24
const BUCKETS = EXACT + MAX_SHIFT * SUB;

export type HistogramData = { counts: number[]; count: number; sum: number; min: number; max: number };

export class Histogram {
  private counts = new Uint32Array(BUCKETS);
  count = 0;
  /** Sum of microseconds, for the mean. */
  sum = 0;
  min = Infinity;
  max = 0;

  /** Records one value in microseconds. */
  record(us: number): void {
    const v = us < 0 ? 0 : Math.round(us);
    this.counts[indexOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  recordMs(ms: number): void {
    this.record(ms * 1000);
  }

  merge(other: Histogram | HistogramData): void {
    const counts = other instanceof Histogram ? other.counts : other.counts;
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += counts[i] ?? 0;
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      this.min = Math.min(this.min, other.min);
      this.max = Math.max(this.max, other.max);
    }
  }

  /** The value (µs) at or below which q (0..1) of the samples fall; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(Math.max(valueOf(i), this.min), this.max);
    }
    return this.max;
  }

  /** Percentile in milliseconds, rounded to microseconds. */
  percentileMs(p: number): number {
    return round3(this.quantile(p / 100) / 1000);
  }

  get maxMs(): number {
    return round3(this.max / 1000);
  }

  get meanMs(): number {
    return this.count === 0 ? 0 : round3(this.sum / this.count / 1000);
  }

  toJSON(): HistogramData {
    // Sparse arrays do not survive JSON; a dense array of a few thousand small numbers is fine.
    return { counts: Array.from(this.counts), count: this.count, sum: this.sum, min: this.count === 0 ? 0 : this.min, max: this.max };
  }

  static from(data: HistogramData): Histogram {
    const h = new Histogram();
    h.merge(data);
    return h;
  }
}

function indexOf(v: number): number {
  if (v < EXACT) return v;
  const magnitude = 31 - Math.clz32(v); // floor(log2 v) >= 8
  const shift = magnitude - 7; // v >> shift is in [128, 256)
  if (shift > MAX_SHIFT) return BUCKETS - 1;
  return EXACT + (shift - 1) * SUB + ((v >> shift) - SUB);
}

/** The middle of a bucket's range. */
function valueOf(i: number): number {
  if (i < EXACT) return i;
  const shift = Math.floor((i - EXACT) / SUB) + 1;
  const sub = ((i - EXACT) % SUB) + SUB;
  return (sub << shift) + (1 << (shift - 1));
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** CPU seconds (user + system) this process has used so far. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

let clockTicks: number | undefined;

/** USER_HZ, the unit of /proc/PID/stat times (100 on practically every Linux). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU seconds (utime + stime, threads included) of another process, from /proc/PID/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may contain spaces: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14 of the full line
  const stime = Number(fields[12]); // field 15
  return (utime + stime) / ticksPerSecond();
}

/** Resident set size in bytes (VmRSS) of a process, from /proc/PID/status. */
export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
