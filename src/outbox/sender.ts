// A background sender over the durable outbox: jobs of one kind are sent with bounded concurrency, retried with
// exponential back-off and jitter, and dead-lettered after a number of attempts. Webhooks and push providers
// share it. Routing never waits on it: producers only insert a row and call wake().
import { z } from 'zod';
import type { Logger } from 'pino';
import type { OutboxJob, OutboxStore } from '../storage/types.ts';

/** Time and timers, injectable so tests can drive back-off without waiting. */
export type OutboxClock = {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
};

export const systemClock: OutboxClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending retry must not keep a stopping process alive.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** Thrown by a send function when retrying cannot help (an unreadable payload): the job goes dead at once. */
export class PermanentSendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentSendError';
  }
}

export type OutboxSenderOptions = {
  store: OutboxStore;
  kind: string;
  /** Delivers one job; resolving marks it delivered, throwing records a failed attempt. It must give up when `signal` aborts (stop waits for it). */
  send: (job: OutboxJob, signal: AbortSignal) => Promise<void>;
  /** Jobs in flight at once (default 4). */
  concurrency?: number;
  /** Attempts before a job is dead-lettered (default 8). */
  maxAttempts?: number;
  /** Delay after the first failure; it doubles per attempt up to backoffMaxMs (default 10 s, 1 h). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** How often the queue is looked at when nothing woke the sender (jobs made due elsewhere; default 30 s). */
  pollIntervalMs?: number;
  /** Delivered jobs older than this are purged (default 7 days); the purge runs at most once an hour. */
  purgeAfterMs?: number;
  clock?: OutboxClock;
  /** [0, 1), for jitter. */
  random?: () => number;
  log?: Logger;
};

const HOUR = 3_600_000;

/**
 * The delay before the next attempt after `failures` failed ones: base * 2^(failures-1), capped at max, then
 * "equal jitter" (half fixed, half random) so retries spread out yet still grow.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** The outbox kind of a module on a host. Kinds are per host because `due` is not: one sender per kind then
 * never takes another host's jobs, and each host's options (URL, attempts) apply to its own jobs. */
export function outboxKind(moduleId: string, host: string): string {
  return `${moduleId}:${host}`;
}

/** Live senders by kind, so the admin channel can wake them after an operator's retry. */
const live = new Map<string, OutboxSender>();

/** Wakes the running sender of a kind (or every running sender): jobs were made due outside it. */
export function wakeOutbox(kind?: string): void {
  if (kind === undefined) for (const s of live.values()) s.wake();
  else live.get(kind)?.wake();
}

/** Kinds with a sender running in this process. */
export function activeOutboxKinds(): string[] {
  return [...live.keys()];
}

export type OutboxOutcomes = { sent: number; failed: number; dead: number };

/** Attempts per kind and outcome since the process started (senders come and go with their modules; the
 * counts stay), read by the metrics endpoint. `failed` counts every failed attempt, `dead` the jobs given up. */
const outcomes = new Map<string, OutboxOutcomes>();

export function outboxOutcomes(): ReadonlyMap<string, Readonly<OutboxOutcomes>> {
  return outcomes;
}

function outcomesOf(kind: string): OutboxOutcomes {
  let o = outcomes.get(kind);
  if (!o) {
    o = { sent: 0, failed: 0, dead: 0 };
    outcomes.set(kind, o);
  }
  return o;
}

export class OutboxSender {
  readonly kind: string;
  private readonly store: OutboxStore;
  private readonly sendFn: OutboxSenderOptions['send'];
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly pollMs: number;
  private readonly purgeAfterMs: number;
  private readonly clock: OutboxClock;
  private readonly random: () => number;
  private readonly log: Logger | undefined;

  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly abort = new AbortController();
  private timer: unknown;
  private timerAt = Infinity;
  /** When failed jobs come due again (a min-heap), so the one timer can be set for the earliest of them. */
  private readonly retryAt: number[] = [];
  private passing: Promise<void> | undefined;
  private passAgain = false;
  private nextPurgeAt = 0;
  private started = false;
  private stopped = false;

  constructor(opts: OutboxSenderOptions) {
    this.kind = opts.kind;
    this.store = opts.store;
    this.sendFn = opts.send;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 8);
    this.baseMs = opts.backoffBaseMs ?? 10_000;
    this.maxMs = Math.max(this.baseMs, opts.backoffMaxMs ?? HOUR);
    this.pollMs = opts.pollIntervalMs ?? 30_000;
    this.purgeAfterMs = opts.purgeAfterMs ?? 7 * 24 * HOUR;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.log = opts.log;
  }

  /** Starts polling; jobs left pending by an earlier run are picked up at once. */
  start(): void {
    if (this.started) return;
    if (live.has(this.kind)) throw new Error(`an outbox sender for ${this.kind} is already running`);
    this.started = true;
    live.set(this.kind, this);
    this.wake();
  }

  /** A job was added or made due: look at the queue soon (calls coalesce into one pass). */
  wake(): void {
    if (this.started && !this.stopped) this.armAt(this.clock.now());
  }

  /** One pass over the queue: purges if it is time, then launches due jobs into free slots. Resolves when the pass (not its sends) is done. */
  poll(): Promise<void> {
    if (this.passing) {
      this.passAgain = true;
      return this.passing;
    }
    this.passing = this.pass().finally(() => {
      this.passing = undefined;
      if (this.passAgain && !this.stopped) {
        this.passAgain = false;
        void this.poll();
      }
    });
    return this.passing;
  }

  /** Resolves when no pass runs and no send is in flight (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.passing || this.inFlight.size > 0) {
      await this.passing;
      await Promise.all(this.inFlight.values());
    }
  }

  /** Stops polling and aborts sends in flight; an aborted job stays pending and is sent after the next start. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (live.get(this.kind) === this) live.delete(this.kind);
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort(new Error('outbox sender stopped'));
    await this.idle();
  }

  private armAt(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      // Only retries due before the pass began were covered by it; one that came due during the pass keeps its
      // place, or it would wait a whole poll interval.
      const passStart = this.clock.now();
      void this.poll().then(() => {
        while (this.retryAt.length > 0 && (this.retryAt[0] as number) <= passStart) heapPop(this.retryAt);
        const now = this.clock.now();
        this.armAt(Math.min(now + this.pollMs, this.retryAt[0] ?? Infinity));
      });
    }, Math.max(0, at - this.clock.now()));
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    const now = this.clock.now();
    try {
      if (now >= this.nextPurgeAt) {
        this.nextPurgeAt = now + HOUR;
        const purged = await this.store.purgeDelivered(now - this.purgeAfterMs);
        if (purged > 0) this.log?.debug({ kind: this.kind, purged }, 'purged delivered outbox jobs');
      }
      if (this.stopped || this.inFlight.size >= this.concurrency) return;
      // Jobs in flight are still pending (and due) in the store, so ask for enough rows to fill every slot past them.
      const jobs = await this.store.due(this.kind, now, this.concurrency);
      for (const job of jobs) {
        if (this.stopped || this.inFlight.size >= this.concurrency) break;
        if (!this.inFlight.has(job.id)) this.launch(job);
      }
    } catch (err) {
      this.log?.error({ err, kind: this.kind }, 'outbox poll failed');
    }
  }

  private launch(job: OutboxJob): void {
    const run = this.attempt(job).finally(() => {
      this.inFlight.delete(job.id);
      // A slot is free: there may be more due jobs waiting for one.
      this.wake();
    });
    this.inFlight.set(job.id, run);
  }

  private async attempt(job: OutboxJob): Promise<void> {
    let error: unknown;
    try {
      await this.sendFn(job, this.abort.signal);
    } catch (err) {
      error = err;
    }
    // Stopping cut this attempt short: it is not the receiver's failure, and the job stays pending for the next run.
    if (this.stopped && this.abort.signal.aborted && error !== undefined) return;
    const counts = outcomesOf(this.kind);
    try {
      if (error === undefined) {
        counts.sent++;
        await this.store.markDelivered(job.id);
        return;
      }
      const message = describe(error);
      const failures = job.attempts + 1;
      const now = this.clock.now();
      const dead = failures >= this.maxAttempts || error instanceof PermanentSendError;
      counts.failed++;
      if (dead) counts.dead++;
      const next = dead ? now : now + backoffDelay(failures, this.baseMs, this.maxMs, this.random);
      await this.store.markFailed(job.id, message, next, dead);
      if (dead) this.log?.warn({ kind: this.kind, job: job.id, attempts: failures, error: message }, 'outbox job dead-lettered');
      else {
        this.log?.debug({ kind: this.kind, job: job.id, attempts: failures, error: message, retryAt: next }, 'outbox job failed, will retry');
        heapPush(this.retryAt, next);
        this.armAt(next);
      }
    } catch (err) {
      this.log?.error({ err, kind: this.kind, job: job.id }, 'outbox state update failed');
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    if (cause && typeof cause.code === 'string') return `${err.message}: ${cause.code}`;
    if (cause && typeof cause.message === 'string') return `${err.message}: ${cause.message}`;
    return err.message;
  }
  return String(err);
}

function heapPush(h: number[], v: number): void {
  h.push(v);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if ((h[p] as number) <= v) break;
    h[i] = h[p] as number;
    i = p;
  }
  h[i] = v;
}

function heapPop(h: number[]): void {
  const last = h.pop();
  if (last === undefined || h.length === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const r = l + 1;
    const c = r < h.length && (h[r] as number) < (h[l] as number) ? r : l;
    if ((h[c] as number) >= last) break;
    h[i] = h[c] as number;
    i = c;
  }
  h[i] = last;
}

/**
 * The retry options every outbox-backed module offers, with its own defaults and wording: spread into the module's
 * schema, and check it with `backoffOrder`.
 */
export function outboxOptions(o: { item: string; concurrency: number; keepDeliveredDays: number; keepWhy: string }) {
  return {
    timeout: z.number().positive().default(10).describe(`seconds to wait for an answer to one ${o.item}`),
    max_attempts: z.number().int().min(1).max(100).default(8).describe(`attempts before a ${o.item} is dead-lettered`),
    backoff_base: z.number().positive().default(10).describe('seconds before the first retry; doubled per attempt, with jitter'),
    backoff_max: z.number().positive().default(3600).describe('longest wait between two attempts, in seconds'),
    concurrency: z.number().int().min(1).max(64).default(o.concurrency).describe(`${o.item}s in flight at once`),
    keep_delivered: z.number().positive().default(o.keepDeliveredDays).describe(`days delivered ${o.item}s stay in the outbox (${o.keepWhy})`),
  };
}

/** The sender settings that the options of outboxOptions() describe, in the units OutboxSender takes. */
export function outboxTiming(o: { max_attempts: number; backoff_base: number; backoff_max: number; concurrency: number; keep_delivered: number }) {
  return {
    concurrency: o.concurrency,
    maxAttempts: o.max_attempts,
    backoffBaseMs: o.backoff_base * 1000,
    backoffMaxMs: o.backoff_max * 1000,
    purgeAfterMs: o.keep_delivered * 86_400_000,
  };
}

export const backoffOrder: [(o: { backoff_base: number; backoff_max: number }) => boolean, { message: string; path: string[] }] = [
  (o) => o.backoff_max >= o.backoff_base,
  { message: 'must not be less than backoff_base', path: ['backoff_max'] },
];
