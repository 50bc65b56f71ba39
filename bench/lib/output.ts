// What people see on stderr while the generator runs (a progress bar) and after (a table).

const WIDTH = 30;

/** One line redrawn in place, at most 4 times a second, and only on a terminal. */
export class ProgressBar {
  private readonly enabled: boolean;
  private last = 0;
  private shown = false;

  constructor(enabled: boolean) {
    this.enabled = enabled && process.stderr.isTTY === true;
  }

  update(label: string, fraction: number, detail: string, force = false): void {
    if (!this.enabled) return;
    const t = Date.now();
    if (!force && t - this.last < 250) return;
    this.last = t;
    const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
    const filled = Math.round(f * WIDTH);
    const bar = '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
    const line = `${label.padEnd(16)} [${bar}] ${String(Math.floor(f * 100)).padStart(3)}%  ${detail}`;
    const cols = process.stderr.columns || 100;
    process.stderr.write(`\r${line.slice(0, cols - 1)}\x1b[K`);
    this.shown = true;
  }

  /** Removes the bar so the next line starts clean. */
  clear(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

export type Row = [label: string, value: string];

export function formatTable(title: string, rows: Row[]): string {
  const width = Math.max(...rows.map(([l]) => l.length), 10);
  const lines = [title, '-'.repeat(Math.max(title.length, width + 20))];
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(width)}  ${value}`);
  return lines.join('\n') + '\n';
}

/** 12345.678 -> "12,345.7"; integers keep no decimals. */
export function fmt(n: number | null | undefined, decimals = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { maximumFractionDigits: Number.isInteger(n) ? 0 : decimals });
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const abs = Math.abs(n);
  if (abs >= 1024 * 1024) return `${fmt(n / 1024 / 1024, 1)} MiB`;
  if (abs >= 1024) return `${fmt(n / 1024, 1)} KiB`;
  return `${fmt(n, 0)} B`;
}
