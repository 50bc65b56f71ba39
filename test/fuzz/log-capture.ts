// A pino logger that keeps the server's warnings and errors in memory, so a fuzzer can assert that no input made
// the server log an error (an exception it did not expect) besides the ones a test expects.
import { pino, type Logger } from 'pino';

export type LogLine = { level: number; msg?: string; err?: { message?: string; stack?: string }; [k: string]: unknown };

/** pino's numeric levels. */
export const WARN = 40;
export const ERROR = 50;

export class LogCapture {
  readonly lines: LogLine[] = [];
  readonly logger: Logger;
  /** How many lines have been looked at by `newErrors`. */
  private seen = 0;

  constructor() {
    // A synchronous destination: a line is in `lines` as soon as the server logged it.
    this.logger = pino({ level: 'warn' }, { write: (line: string) => { this.lines.push(JSON.parse(line) as LogLine); } });
  }

  /** Error-level lines logged since the last call, except those `expected` accepts. */
  newErrors(expected: (l: LogLine) => boolean = () => false): LogLine[] {
    const fresh = this.lines.slice(this.seen);
    this.seen = this.lines.length;
    return fresh.filter((l) => l.level >= ERROR && !expected(l));
  }

  /** One line per distinct warning or error message, with its count (for the test's diagnostics). */
  summary(): string {
    const counts = new Map<string, number>();
    for (const l of this.lines) {
      const key = `${l.level >= ERROR ? 'error' : 'warn'}: ${l.msg ?? ''}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].map(([k, n]) => `${n} × ${k}`).join('\n');
  }
}

/** A log line as text for an assertion message. */
export function describeLine(l: LogLine): string {
  return `${l.msg ?? ''} ${l.err?.stack ?? l.err?.message ?? ''}`.trim();
}
