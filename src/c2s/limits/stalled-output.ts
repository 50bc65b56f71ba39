// Output held back from a client that does not take what it is sent. Past limits.send_queue.max_bytes written
// and not yet read, stanzas wait here unserialized (in order) instead of growing the socket's buffer; they are
// written as the client drains it. A client that leaves them waiting past stall_timeout is closed with
// connection-timeout (RFC 6120 §4.9.3.4), one that lets more than max_stanzas pile up with resource-constraint
// (§4.9.3.17). Nothing held is lost on close: stream management hands what it tracks to offline storage, and the
// session routes the rest again (see ClientSession).
import type { Element } from '../../xml/element.ts';
import { unwait, wait, type Waiting } from './tick.ts';

export interface StallOwner {
  stallTimedOut(): void;
}

export class StalledOutput implements Waiting {
  readonly stanzas: Element[] = [];
  /** How many of the first stanzas no tracker (stream management) was told of: the session routes them again. */
  untracked = 0;
  private readonly owner: StallOwner;
  private readonly since: number;
  private readonly timeoutMs: number;

  constructor(owner: StallOwner, timeoutMs: number, now: number) {
    this.owner = owner;
    this.timeoutMs = timeoutMs;
    this.since = now;
    wait(this);
  }

  onTick(now: number): boolean {
    if (this.stanzas.length === 0) return true;
    if (now - this.since < this.timeoutMs) return false;
    this.owner.stallTimedOut();
    return true;
  }

  /** Stops waiting; returns the stanzas no tracker knows of (the caller routes or writes them). */
  end(): Element[] {
    unwait(this);
    const untracked = this.stanzas.slice(0, this.untracked);
    this.stanzas.length = 0;
    this.untracked = 0;
    return untracked;
  }
}
