// The hook bus: named events with prioritised handlers. `run` stops at the first handler returning true;
// `fold` threads an accumulator through the handlers.
import type { HookMap, FoldHookMap } from './hook-map.ts';

export const PRIORITY = {
  /** Policy checks that may veto a stanza before anything else sees it. */
  FILTER: 1000,
  /** Features that take a stanza over (offline storage, archives, carbons...). */
  FEATURE: 100,
  DEFAULT: 0,
  /** RFC 6121 delivery rules: they run last, so features slot in above them. */
  DELIVERY: -1000,
} as const;

export type RunHandler<E> = (event: E) => boolean | void | Promise<boolean | void>;
export type FoldHandler<E, A> = (event: E, acc: A) => A | Promise<A>;

type Entry<F> = { fn: F; priority: number; seq: number; owner: string };

export type HookErrorReporter = (hook: string, owner: string, err: unknown, event: unknown) => void;

export class HookBus {
  private readonly runHandlers = new Map<string, Entry<RunHandler<unknown>>[]>();
  private readonly foldHandlers = new Map<string, Entry<FoldHandler<unknown, unknown>>[]>();
  private seq = 0;
  private readonly reportError: HookErrorReporter;

  constructor(reportError: HookErrorReporter) {
    this.reportError = reportError;
  }

  on<K extends keyof HookMap>(name: K, fn: RunHandler<HookMap[K]>, opts?: { priority?: number; owner?: string }): () => void {
    return add(this.runHandlers, name, fn as RunHandler<unknown>, opts, this.seq++);
  }

  onFold<K extends keyof FoldHookMap>(
    name: K,
    fn: FoldHandler<FoldHookMap[K][0], FoldHookMap[K][1]>,
    opts?: { priority?: number; owner?: string },
  ): () => void {
    return add(this.foldHandlers, name, fn as FoldHandler<unknown, unknown>, opts, this.seq++);
  }

  has(name: keyof HookMap): boolean {
    return (this.runHandlers.get(name)?.length ?? 0) > 0;
  }

  /**
   * Runs handlers in priority order until one returns true. A handler that throws is reported and
   * rethrown, so the caller (which knows the stanza) answers with the right error.
   */
  async run<K extends keyof HookMap>(name: K, event: HookMap[K]): Promise<boolean> {
    const list = this.runHandlers.get(name);
    if (!list) return false;
    for (const h of list) {
      let r: boolean | void | Promise<boolean | void>;
      try {
        r = h.fn(event);
        if (r instanceof Promise) r = await r;
      } catch (err) {
        this.reportError(name, h.owner, err, event);
        throw err;
      }
      if (r === true) return true;
    }
    return false;
  }

  async fold<K extends keyof FoldHookMap>(name: K, event: FoldHookMap[K][0], acc: FoldHookMap[K][1]): Promise<FoldHookMap[K][1]> {
    const list = this.foldHandlers.get(name);
    if (!list) return acc;
    for (const h of list) {
      try {
        acc = (await h.fn(event, acc)) as FoldHookMap[K][1];
      } catch (err) {
        this.reportError(name, h.owner, err, event);
        throw err;
      }
    }
    return acc;
  }
}

function add<F>(map: Map<string, Entry<F>[]>, name: string, fn: F, opts: { priority?: number; owner?: string } | undefined, seq: number): () => void {
  const entry: Entry<F> = { fn, priority: opts?.priority ?? PRIORITY.DEFAULT, seq, owner: opts?.owner ?? 'core' };
  const list = map.get(name) ?? [];
  list.push(entry);
  // Higher priority first; ties keep registration order.
  list.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
  map.set(name, list);
  return () => {
    const l = map.get(name);
    if (!l) return;
    const i = l.indexOf(entry);
    if (i >= 0) l.splice(i, 1);
  };
}
