// Server-wide figures read when /metrics is scraped: sessions per transport, accounts and offline messages per
// host (one COUNT each), outbox delivery outcomes, event-loop delay, process memory and CPU, uptime.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Metrics, Sample } from '../core/metrics.ts';
import { outboxOutcomes } from '../outbox/sender.ts';
import type { ParleyServer } from '../server.ts';

/** Transports reported even with no session, so dashboards show a zero rather than a gap. */
const TRANSPORTS = ['tcp', 'tls', 'websocket', 'bosh'];

/** Sampling interval of the event-loop delay monitor; a timer due every interval that fires late shows the lag. */
const LAG_RESOLUTION_MS = 10;

/** Registers the collectors; returns the function that removes them and stops the event-loop monitor. */
export function addServerCollectors(server: ParleyServer, metrics: Metrics): () => void {
  const removers: Array<() => void> = [];
  const gauge = (name: string, help: string, samples: () => Sample[] | Promise<Sample[]>): void => {
    removers.push(metrics.collect(name, help, 'gauge', samples));
  };
  const counter = (name: string, help: string, samples: () => Sample[] | Promise<Sample[]>): void => {
    removers.push(metrics.collect(name, help, 'counter', samples));
  };
  const hostNames = (): string[] => [...server.hosts.values()].map((h) => h.name);

  gauge('parley_sessions', 'Bound client sessions by transport (detached stream-management sessions included)', () => {
    const counts = new Map<string, number>(TRANSPORTS.map((t) => [t, 0]));
    for (const s of server.sessions.sessions()) counts.set(s.transport, (counts.get(s.transport) ?? 0) + 1);
    return [...counts].map(([transport, value]) => ({ labels: { transport }, value }));
  });
  gauge('parley_accounts', 'Accounts stored in the database, by host', async () => {
    const out: Sample[] = [];
    for (const host of hostNames()) out.push({ labels: { host }, value: await server.storage.accounts.count(host) });
    return out;
  });
  gauge('parley_offline_messages', 'Messages stored for offline delivery, by host', async () => {
    const out: Sample[] = [];
    for (const host of hostNames()) out.push({ labels: { host }, value: await server.storage.offline.total(host) });
    return out;
  });
  counter('parley_outbox_attempts_total', 'Delivery attempts of push notifications and webhooks by outcome (sent, failed; dead: given up)', () => {
    const out: Sample[] = [];
    for (const [kind, o] of outboxOutcomes()) {
      // Kinds are module:host, with the push provider after them (see outboxKind).
      const [module = kind, host = '', ...rest] = kind.split(':');
      const labels = { module, host, provider: rest.join(':') };
      out.push({ labels: { ...labels, outcome: 'sent' }, value: o.sent });
      out.push({ labels: { ...labels, outcome: 'failed' }, value: o.failed });
      out.push({ labels: { ...labels, outcome: 'dead' }, value: o.dead });
    }
    return out;
  });
  gauge('parley_uptime_seconds', 'Seconds since the server started', () => [{ value: (Date.now() - server.startedAt) / 1000 }]);

  // Event-loop delay since the previous scrape; the monitor's own interval is taken off, so an idle loop shows 0.
  const loop = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
  loop.enable();
  removers.push(() => loop.disable());
  const lag = (ns: number): number => Math.max(0, Math.round(ns) - LAG_RESOLUTION_MS * 1e6) / 1e9;
  const loopDelay = metrics.perScrape(() => {
    const r = loop.count === 0
      ? { mean: 0, p50: 0, p99: 0, max: 0 }
      : { mean: lag(loop.mean), p50: lag(loop.percentile(50)), p99: lag(loop.percentile(99)), max: lag(loop.max) };
    loop.reset();
    return r;
  });
  gauge('nodejs_eventloop_lag_mean_seconds', 'Mean event-loop delay since the previous scrape', () => [{ value: loopDelay().mean }]);
  gauge('nodejs_eventloop_lag_p50_seconds', 'Median event-loop delay since the previous scrape', () => [{ value: loopDelay().p50 }]);
  gauge('nodejs_eventloop_lag_p99_seconds', '99th percentile of the event-loop delay since the previous scrape', () => [{ value: loopDelay().p99 }]);
  gauge('nodejs_eventloop_lag_max_seconds', 'Longest event-loop delay since the previous scrape', () => [{ value: loopDelay().max }]);

  const cpu = metrics.perScrape(() => process.cpuUsage());
  const memory = metrics.perScrape(() => process.memoryUsage());
  counter('process_cpu_user_seconds_total', 'User CPU time spent by the process', () => [{ value: cpu().user / 1e6 }]);
  counter('process_cpu_system_seconds_total', 'System CPU time spent by the process', () => [{ value: cpu().system / 1e6 }]);
  counter('process_cpu_seconds_total', 'User and system CPU time spent by the process', () => [{ value: (cpu().user + cpu().system) / 1e6 }]);
  gauge('process_resident_memory_bytes', 'Resident memory of the process', () => [{ value: memory().rss }]);
  gauge('process_start_time_seconds', 'When the process started, in seconds since the Unix epoch', () => [{ value: Math.round(performance.timeOrigin) / 1000 }]);
  gauge('nodejs_heap_size_total_bytes', 'V8 heap allocated', () => [{ value: memory().heapTotal }]);
  gauge('nodejs_heap_size_used_bytes', 'V8 heap in use', () => [{ value: memory().heapUsed }]);
  gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects (buffers included)', () => [{ value: memory().external }]);

  return () => {
    for (const remove of removers) remove();
  };
}
