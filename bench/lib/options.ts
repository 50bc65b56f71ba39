// The load generator's command line: scenario names, options and their defaults (see bench/README.md).
import { parseArgs } from 'node:util';
import { MECHANISMS, TLS_MODES, type Mechanism, type TlsMode } from './xmpp-client.ts';

export const SCENARIOS = ['login', 'idle', 'msg', 'offline', 'mam', 'mam-fill'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export type BenchOptions = {
  scenario: Scenario;
  host: string;
  port: number;
  domain: string;
  users: number;
  /** Accounts are PREFIX(offset+1)..PREFIX(offset+users): runs that must not share accounts take disjoint ranges. */
  offset: number;
  prefix: string;
  password: string;
  mech: Mechanism;
  tls: TlsMode;
  workers: number;
  sources: string[];
  pid: number | undefined;
  server: string;
  /** login: parallel login loops; other scenarios: logins in progress at once while connecting. */
  concurrency: number;
  duration: number;
  /** msg: total messages per second in open loop; 0 means closed loop. */
  rate: number;
  pairs: number;
  sessions: number;
  messages: number;
  pageSize: number;
  pages: number;
  /** msg closed loop: messages each sender keeps in flight. */
  window: number;
  /** login: stop after this many logins instead of after --duration (0: no limit). */
  logins: number;
  /** offline, mam-fill: messages per batch, each followed by a ping. */
  batch: number;
  /** Time cap in seconds for phases that run until done (offline store and drain, mam, mam-fill). */
  cap: number;
  sm: boolean;
  jsonOnly: boolean;
};

export const USAGE = `Usage: node bench/run.ts SCENARIO [options]     (npm run bench -- SCENARIO [options])

Scenarios:
  login      back-to-back full logins at a fixed concurrency: logins/s, latency p50/p99
  idle       hold --sessions authenticated sessions, report the server's RSS per session (needs --pid)
  msg        --pairs pairs exchange chat messages for --duration s: closed loop, or open loop with --rate
  offline    store --messages messages for offline users, then log them in: store rate, drain time
  mam        page through user1's archive (XEP-0313) with --page-size, --pages
  mam-fill   fill user1's archive: user1 sends --messages messages to user2 as fast as the server accepts

Server and accounts:
  --host 127.0.0.1  --port 5222  --domain localhost
  --users N (accounts PREFIX1..PREFIXN exist, default 10000)  --prefix user  --password pw
  --offset O           use PREFIX(O+1)..PREFIX(O+N) instead (default 0): disjoint ranges for runs that must not
                       share accounts (messages left offline by one run would arrive in the next)
  --mech SCRAM-SHA-1|SCRAM-SHA-256|PLAIN (default SCRAM-SHA-1)
  --tls starttls|none|direct (default starttls; direct: TLS from the first byte)
  --sm                 enable XEP-0198 stream management on every session
Generator:
  --workers K          generator processes (default 1)
  --sources A,B,...    local addresses to bind, round robin (default: the system's choice)
  --pid PID            server process: CPU from /proc/PID/stat, RSS from /proc/PID/status
  --server NAME        label in the output (default unknown)
  --json-only          no progress bar and no table on stderr
Scenario sizes:
  --concurrency C      login loops / logins in flight while connecting (default 50)
  --duration S         seconds of measurement for login and msg (default 10)
  --logins N           login: stop after N logins instead of after --duration
  --pairs P            msg, offline: sender/receiver pairs (default 50)
  --window W           msg closed loop: messages in flight per sender (default 1)
  --rate R             msg: open loop at R messages/s in total (default: closed loop)
  --sessions C         idle: sessions to hold (default 10000)
  --messages M         offline, mam-fill: messages (default 10000)
  --batch B            offline, mam-fill: messages between two pings (default 100)
  --page-size N        mam: messages per page (default 50)
  --pages N            mam: pages to fetch at most (default 50)
  --cap S              time cap for offline, mam and mam-fill phases (default 600)

Output: a progress bar and a table on stderr, one JSON line on stdout. Exit status 0 on success (the JSON
may say {"error":"unsupported"} when the server lacks the feature), 1 on failure, 2 on bad usage.`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const int = (name: string, raw: string | undefined, dflt: number, min: number): number => {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min} (got ${raw})`);
  return n;
};

const num = (name: string, raw: string | undefined, dflt: number, min: number): number => {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min} (got ${raw})`);
  return n;
};

function oneOf<T extends string>(name: string, raw: string | undefined, values: readonly T[], dflt: T): T {
  if (raw === undefined) return dflt;
  if (!(values as readonly string[]).includes(raw)) throw new UsageError(`--${name} must be one of ${values.join(', ')} (got ${raw})`);
  return raw as T;
}

export function parseOptions(argv: string[]): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        host: { type: 'string' }, port: { type: 'string' }, domain: { type: 'string' },
        users: { type: 'string' }, offset: { type: 'string' }, prefix: { type: 'string' }, password: { type: 'string' },
        mech: { type: 'string' }, tls: { type: 'string' }, sm: { type: 'boolean' },
        workers: { type: 'string' }, sources: { type: 'string' }, pid: { type: 'string' }, server: { type: 'string' },
        concurrency: { type: 'string' }, duration: { type: 'string' }, logins: { type: 'string' },
        rate: { type: 'string' }, pairs: { type: 'string' }, window: { type: 'string' },
        sessions: { type: 'string' }, messages: { type: 'string' }, batch: { type: 'string' },
        'page-size': { type: 'string' }, pages: { type: 'string' }, cap: { type: 'string' },
        'json-only': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) throw new UsageError('');
  const [scenario, ...extra] = parsed.positionals;
  if (!scenario) throw new UsageError('no scenario given');
  if (!(SCENARIOS as readonly string[]).includes(scenario)) throw new UsageError(`unknown scenario ${scenario} (one of ${SCENARIOS.join(', ')})`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}`);
  const sources = v.sources === undefined ? [] : v.sources.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const opts: BenchOptions = {
    scenario: scenario as Scenario,
    host: v.host ?? '127.0.0.1',
    port: int('port', v.port, 5222, 1),
    domain: v.domain ?? 'localhost',
    users: int('users', v.users, 10000, 1),
    offset: int('offset', v.offset, 0, 0),
    prefix: v.prefix ?? 'user',
    password: v.password ?? 'pw',
    mech: oneOf('mech', v.mech, MECHANISMS, 'SCRAM-SHA-1'),
    tls: oneOf('tls', v.tls, TLS_MODES, 'starttls'),
    workers: int('workers', v.workers, 1, 1),
    sources,
    pid: v.pid === undefined ? undefined : int('pid', v.pid, 0, 1),
    server: v.server ?? 'unknown',
    concurrency: int('concurrency', v.concurrency, 50, 1),
    duration: num('duration', v.duration, 10, 0.1),
    logins: int('logins', v.logins, 0, 0),
    rate: num('rate', v.rate, 0, 0),
    pairs: int('pairs', v.pairs, 50, 1),
    window: int('window', v.window, 1, 1),
    sessions: int('sessions', v.sessions, 10000, 1),
    messages: int('messages', v.messages, 10000, 1),
    batch: int('batch', v.batch, 100, 1),
    pageSize: int('page-size', v['page-size'], 50, 1),
    pages: int('pages', v.pages, 50, 1),
    cap: num('cap', v.cap, 600, 1),
    sm: v.sm ?? false,
    jsonOnly: v['json-only'] ?? false,
  };
  if (opts.port > 65535) throw new UsageError('--port must be at most 65535');
  const needUsers = (n: number, why: string): void => {
    if (opts.users < n) throw new UsageError(`${why} needs ${n} accounts but --users is ${opts.users}`);
  };
  if (opts.scenario === 'msg' || opts.scenario === 'offline') needUsers(2 * opts.pairs, `--pairs ${opts.pairs}`);
  if (opts.scenario === 'mam-fill') needUsers(2, 'mam-fill');
  if (opts.pid !== undefined && !Number.isSafeInteger(opts.pid)) throw new UsageError('--pid must be a process id');
  return opts;
}

/** The half-open range [start, end) of n items that worker w of k takes. */
export function share(n: number, k: number, w: number): [number, number] {
  const base = Math.floor(n / k);
  const rest = n % k;
  const start = w * base + Math.min(w, rest);
  return [start, start + base + (w < rest ? 1 : 0)];
}
