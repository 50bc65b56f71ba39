// XEP-0198: Stream Management <https://xmpp.org/extensions/xep-0198.html> 1.6.3 — the counters: 'h' is an
// xs:unsignedInt that wraps from 2^32-1 back to 0 (§4), so every count here is kept modulo 2^32.

const MAX_COUNT = 0xffffffff;

/** The next value of a handled-stanza counter. */
export function nextCount(n: number): number {
  return (n + 1) >>> 0;
}

/** An 'h' attribute as the XEP's schema has it (xs:unsignedInt, decimal digits only), or undefined. */
export function parseCount(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= MAX_COUNT ? n : undefined;
}

/**
 * Stanzas sent to the peer and not yet acknowledged, oldest first, with the time each was sent. The count of
 * stanzas sent is the count acknowledged plus what is queued, so one counter is enough.
 */
export class AckQueue<T> {
  /** The last 'h' the peer acknowledged (stanzas handled so far, modulo 2^32). */
  acked: number;
  private items: T[] = [];
  private times: number[] = [];

  constructor(acked = 0) {
    this.acked = acked >>> 0;
  }

  get length(): number {
    return this.items.length;
  }

  /** Stanzas sent so far, modulo 2^32: what an 'h' may acknowledge at most. */
  get sent(): number {
    return (this.acked + this.items.length) >>> 0;
  }

  push(item: T, at: number): void {
    this.items.push(item);
    this.times.push(at);
  }

  /**
   * Applies an acknowledgement: returns the stanzas it newly covers (none when it repeats the last one), or
   * undefined when it acknowledges more than was sent (or goes backwards, which is the same modulo 2^32).
   */
  ack(h: number): T[] | undefined {
    const n = (h - this.acked) >>> 0;
    if (n > this.items.length) return undefined;
    this.acked = h >>> 0;
    if (n === 0) return [];
    this.times.splice(0, n);
    return this.items.splice(0, n);
  }

  /** The unacknowledged stanzas, oldest first (for replay; the queue keeps them). */
  pending(): readonly T[] {
    return this.items;
  }

  /** Empties the queue: the unacknowledged stanzas with the time each was sent, oldest first. */
  takeAll(): Array<{ item: T; at: number }> {
    const out = this.items.map((item, i) => ({ item, at: this.times[i] as number }));
    this.acked = this.sent;
    this.items = [];
    this.times = [];
    return out;
  }
}
