// Read shaping of one connection, whatever its transport: a token bucket over the bytes read, and pauses of the
// input that the shared tick ends (no timer per connection).
import { TokenBucket } from './token-bucket.ts';
import { unwait, wait, type Waiting } from './tick.ts';

/** Sustained bytes per second (0: off) and the bytes that may arrive at once. */
export type ReadRate = { bytes_per_second: number; burst: number };

/** What the shaper pauses: the transport's input. */
export interface PausableInput {
  pauseInput(): void;
  resumeInput(): void;
  /** False once the connection is gone: a pause then just ends, without resuming anything. */
  readonly inputLive: boolean;
}

export class ReadShaper implements Waiting {
  private readonly input: PausableInput;
  /** Absent while shaping is off. */
  private bucket: TokenBucket | undefined;
  /** Input is paused until then (ms since the epoch); 0 while reading. */
  private pausedUntil = 0;

  constructor(input: PausableInput, rate?: ReadRate) {
    this.input = input;
    if (rate) this.setRate(rate);
  }

  setRate(rate: ReadRate): void {
    if (rate.bytes_per_second === 0) this.bucket = undefined;
    else if (this.bucket) this.bucket.reset(rate.bytes_per_second, rate.burst, Date.now());
    else this.bucket = new TokenBucket(rate.bytes_per_second, rate.burst, Date.now());
  }

  /** Bytes already read: they are handled, and the debt they leave is paid by not reading for a while. */
  read(bytes: number, now: number): void {
    if (this.bucket && this.bucket.take(bytes, now) > 0) this.pause(this.bucket.waitMs());
  }

  /** Stops reading for `ms` (or longer, if already paused longer): the peer's sending slows to TCP's pace. */
  pause(ms: number): void {
    if (ms <= 0 || !this.input.inputLive) return;
    const until = Date.now() + ms;
    if (until <= this.pausedUntil) return;
    if (this.pausedUntil === 0) this.input.pauseInput();
    this.pausedUntil = until;
    wait(this);
  }

  /** The shared tick: reading resumes once the pause is over. */
  onTick(now: number): boolean {
    if (this.pausedUntil === 0 || !this.input.inputLive) return true;
    if (now < this.pausedUntil) return false;
    this.resume();
    return true;
  }

  /** Reading resumes now (a closing connection must see its peer's close; a TLS handshake must not wait). */
  resume(): void {
    if (this.pausedUntil === 0) return;
    this.pausedUntil = 0;
    unwait(this);
    this.input.resumeInput();
  }

  /** The connection is gone: the shaper leaves the tick. */
  stop(): void {
    unwait(this);
  }
}
