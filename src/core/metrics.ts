// Prometheus text exposition format 0.0.4 <https://prometheus.io/docs/instrumenting/exposition_formats/>
//
// The server's metrics registry. Values on the stanza path are plain number fields (an increment per stanza, no
// label lookup); labelled counters are for rare events; anything read from storage or the process is produced
// by a collector when the registry is scraped. Modules reach it as ctx.server.metrics.

export type Labels = Readonly<Record<string, string>>;
export type Sample = { labels?: Labels | undefined; value: number };
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Upper bounds (seconds) of the routing latency buckets: from a fast in-memory delivery to a slow storage write. */
export const ROUTING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** A count per stanza kind: three fields, so counting is a comparison and an increment. */
export class KindCounts {
  message = 0;
  presence = 0;
  iq = 0;

  count(kind: string): void {
    if (kind === 'message') this.message++;
    else if (kind === 'presence') this.presence++;
    else if (kind === 'iq') this.iq++;
  }
}

/** A monotonic count without labels. */
export class Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

/** A counter per value of one label, for rare events (failures): one map lookup per event. */
export class CounterVec {
  readonly label: string;
  private readonly values = new Map<string, number>();
  constructor(label: string) {
    this.label = label;
  }
  inc(value: string, n = 1): void {
    this.values.set(value, (this.values.get(value) ?? 0) + n);
  }
  get(value: string): number {
    return this.values.get(value) ?? 0;
  }
  samples(): Sample[] {
    return [...this.values].map(([v, n]) => ({ labels: { [this.label]: v }, value: n }));
  }
}

/** Observations in fixed buckets; an observation costs a short scan of the bounds and two additions. */
export class Histogram {
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last bucket is +Inf. */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = [...bounds].sort((a, b) => a - b);
    this.counts = new Float64Array(this.bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per upper bound, +Inf last. */
  cumulative(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    let acc = 0;
    for (let i = 0; i <= this.bounds.length; i++) {
      acc += this.counts[i] as number;
      out.push([i < this.bounds.length ? formatValue(this.bounds[i] as number) : '+Inf', acc]);
    }
    return out;
  }
}

/** Routing latency per stanza kind. */
export class KindHistograms {
  readonly message: Histogram;
  readonly presence: Histogram;
  readonly iq: Histogram;

  constructor(bounds: readonly number[]) {
    this.message = new Histogram(bounds);
    this.presence = new Histogram(bounds);
    this.iq = new Histogram(bounds);
  }

  observe(kind: string, seconds: number): void {
    if (kind === 'message') this.message.observe(seconds);
    else if (kind === 'presence') this.presence.observe(seconds);
    else if (kind === 'iq') this.iq.observe(seconds);
  }
}

type Family = {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** Appends the family's sample lines (without HELP and TYPE). */
  render(out: string[]): void | Promise<void>;
};

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Metrics {
  /** Stanzas received from client sessions, counted as the router takes them. */
  readonly stanzasReceived = new KindCounts();
  /** Stanzas written to client sessions. */
  readonly stanzasSent = new KindCounts();
  /** Time from a stanza entering the router to its hand-over to a session, storage or a service. */
  readonly routingLatency = new KindHistograms(ROUTING_BUCKETS);
  /** Failed authentication attempts by SASL failure condition. */
  readonly authFailures = new CounterVec('reason');

  private readonly families = new Map<string, Family>();
  private renders = 0;
  /** Instruments created by name, so a module loaded again keeps counting where it left off. */
  private readonly instruments = new Map<string, Counter | CounterVec | Histogram>();

  constructor() {
    const kinds = (k: KindCounts): Sample[] => [
      { labels: { kind: 'message' }, value: k.message },
      { labels: { kind: 'presence' }, value: k.presence },
      { labels: { kind: 'iq' }, value: k.iq },
    ];
    this.collect('parley_stanzas_received_total', 'Stanzas received from client sessions', 'counter', () => kinds(this.stanzasReceived));
    this.collect('parley_stanzas_sent_total', 'Stanzas written to client sessions', 'counter', () => kinds(this.stanzasSent));
    this.collect('parley_auth_failures_total', 'Failed authentication attempts by SASL condition', 'counter', () => this.authFailures.samples());
    this.add({
      name: 'parley_routing_latency_seconds',
      help: 'Time from a stanza entering the router to its hand-over to a session, storage or service',
      type: 'histogram',
      render: (out) => {
        const r = this.routingLatency;
        renderHistogram(out, 'parley_routing_latency_seconds', { kind: 'message' }, r.message);
        renderHistogram(out, 'parley_routing_latency_seconds', { kind: 'presence' }, r.presence);
        renderHistogram(out, 'parley_routing_latency_seconds', { kind: 'iq' }, r.iq);
      },
    });
  }

  /** A counter without labels (created on first use, the same one after). */
  counter(name: string, help: string): Counter {
    return this.instrument(name, help, 'counter', Counter, () => new Counter(), (c) => (out) => {
      out.push(`${name} ${formatValue(c.value)}`);
    });
  }

  /** A counter with one label, for events rare enough to afford a map lookup. */
  counterVec(name: string, help: string, label: string): CounterVec {
    if (!LABEL.test(label)) throw new Error(`invalid metric label name ${label}`);
    return this.instrument(name, help, 'counter', CounterVec, () => new CounterVec(label), (c) => (out) => {
      for (const s of c.samples()) out.push(sampleLine(name, s));
    });
  }

  /** A histogram without labels, with fixed bucket bounds. */
  histogram(name: string, help: string, bounds: readonly number[]): Histogram {
    return this.instrument(name, help, 'histogram', Histogram, () => new Histogram(bounds), (h) => (out) => {
      renderHistogram(out, name, undefined, h);
    });
  }

  /**
   * A family whose samples are produced when scraped (gauges read from storage, process figures, counters kept
   * elsewhere). Returns the function that removes it.
   */
  collect(name: string, help: string, type: Exclude<MetricType, 'histogram'>, samples: () => Sample[] | Promise<Sample[]>): () => void {
    const family: Family = {
      name, help, type,
      render: async (out) => {
        for (const s of await samples()) out.push(sampleLine(name, s));
      },
    };
    this.add(family);
    return () => {
      if (this.families.get(name) === family) this.families.delete(name);
    };
  }

  /** The registry in the text exposition format. A collector that fails is left out (and reported to `onError`). */
  async render(onError?: (name: string, err: unknown) => void): Promise<string> {
    this.renders++;
    const out: string[] = [];
    for (const f of this.families.values()) {
      const lines: string[] = [];
      try {
        await f.render(lines);
      } catch (err) {
        onError?.(f.name, err);
        continue;
      }
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`, ...lines);
    }
    out.push('');
    return out.join('\n');
  }

  /**
   * Wraps a reading so collectors of one scrape share it (several figures from one memoryUsage() call, a
   * histogram read once and reset): it is taken again on the next scrape.
   */
  perScrape<T>(read: () => T): () => T {
    let at = -1;
    let value: T | undefined;
    return () => {
      if (at !== this.renders) {
        value = read();
        at = this.renders;
      }
      return value as T;
    };
  }

  private add(family: Family): void {
    if (!NAME.test(family.name)) throw new Error(`invalid metric name ${family.name}`);
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} is already registered`);
    this.families.set(family.name, family);
  }

  private instrument<T extends Counter | CounterVec | Histogram>(
    name: string, help: string, type: MetricType, cls: abstract new (...args: never[]) => T, make: () => T, render: (i: T) => Family['render'],
  ): T {
    const existing = this.instruments.get(name);
    if (existing) {
      if (!(existing instanceof cls)) throw new Error(`metric ${name} is already registered with another type`);
      return existing;
    }
    const instrument = make();
    this.add({ name, help, type, render: render(instrument) });
    this.instruments.set(name, instrument);
    return instrument;
  }
}

function renderHistogram(out: string[], name: string, labels: Labels | undefined, h: Histogram): void {
  for (const [le, n] of h.cumulative()) out.push(sampleLine(`${name}_bucket`, { labels: { ...labels, le }, value: n }));
  out.push(sampleLine(`${name}_sum`, { labels, value: h.sum }));
  out.push(sampleLine(`${name}_count`, { labels, value: h.count }));
}

function sampleLine(name: string, s: Sample): string {
  let labels = '';
  if (s.labels) {
    for (const [k, v] of Object.entries(s.labels)) {
      // An empty label value is the same as no label to Prometheus.
      if (v === '') continue;
      labels += `${labels === '' ? '' : ','}${k}="${escapeLabel(v)}"`;
    }
  }
  return labels === '' ? `${name} ${formatValue(s.value)}` : `${name}{${labels}} ${formatValue(s.value)}`;
}

export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/** Label values escape backslash, double quote and line feed. */
function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}
