// One shared timer for every connection that waits on a limit: paused reads to resume, stalled output to give up
// on. Connections join a set; nothing is scheduled per connection, and the timer runs only while the set is not
// empty (and never holds the process open).

export interface Waiting {
  /** Called on every tick with the current time; returns true when the entry is done waiting (it leaves the set). */
  onTick(now: number): boolean;
}

/** Resolution of the shared timer: pauses end at most this late. */
export const TICK_MS = 100;

const waiting = new Set<Waiting>();
let timer: NodeJS.Timeout | undefined;

function tick(): void {
  const now = Date.now();
  for (const w of waiting) {
    let done = true;
    try {
      done = w.onTick(now);
    } catch {
      // One entry's failure must not stop the others; it leaves the set.
    }
    if (done) waiting.delete(w);
  }
  if (waiting.size === 0 && timer) {
    clearInterval(timer);
    timer = undefined;
  }
}

export function wait(w: Waiting): void {
  waiting.add(w);
  if (!timer) {
    timer = setInterval(tick, TICK_MS);
    timer.unref();
  }
}

export function unwait(w: Waiting): void {
  waiting.delete(w);
}

/** Entries waiting now (for tests and status). */
export function waitingCount(): number {
  return waiting.size;
}
