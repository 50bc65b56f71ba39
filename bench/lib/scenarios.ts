// The scenarios as one generator process runs them; bench/run.ts splits the work and sums the results.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { NS } from '../../src/xml/ns.ts';
import type { BenchOptions } from './options.ts';
import { share } from './options.ts';
import type { WorkerResult, WorkerTask } from './protocol.ts';
import { attr, childText, elementName } from './splitter.ts';
import { Histogram } from './stats.ts';
import { BENCH_NS, BenchClient, stanzaErrorCondition, type ClientOptions } from './xmpp-client.ts';

export type WorkerContext = {
  task: WorkerTask;
  opts: BenchOptions;
  /** Waits until every worker reached the barrier; answers what the coordinator decided there. */
  barrier(name: string, data?: Record<string, number>): Promise<Record<string, number>>;
  /** Reported at most 4 times a second; done/total fill the bar, count is shown (default done). */
  progress(phase: string, done: number, total: number, failures?: number, count?: number): void;
  measureStart(): void;
  measureEnd(): void;
  clientOptions(username: string): ClientOptions;
};

export type ScenarioResult = Pick<WorkerResult, 'counters' | 'histograms' | 'errors'>;

/** Connect phases (logging in the sessions a scenario needs) never take longer than this. */
export const CONNECT_CAP_MS = 120_000;
/** After the sending stops, messages still in flight get this long to arrive. */
export const DRAIN_MS = 2000;

/** A chat message body of typical length. */
const BODY = 'The quick brown fox jumps over the lazy dog, then checks the chat again.';

const now = (): number => performance.now();

/** Account i of the run (1-based within the run's range: --offset moves the whole range). */
export function userName(opts: BenchOptions, i: number): string {
  return `${opts.prefix}${opts.offset + i}`;
}

/** Runs fn(0..n-1) with at most `concurrency` calls in progress. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(n, Math.max(1, concurrency)) }, async () => {
    while (next < n) await fn(next++);
  });
  await Promise.all(lanes);
}

/** Logs every user in (at most the worker's share of --concurrency at once), or fails with the first error. */
async function connectAll(ctx: WorkerContext, users: string[], phase: string, onLogin?: (c: BenchClient, i: number) => void): Promise<BenchClient[]> {
  const { opts, task } = ctx;
  const clients: BenchClient[] = new Array(users.length);
  const concurrency = Math.max(1, Math.ceil(opts.concurrency / task.workers));
  const deadline = now() + CONNECT_CAP_MS;
  let done = 0;
  let failures = 0;
  let firstError: Error | undefined;
  ctx.progress(phase, 0, users.length);
  await pool(users.length, concurrency, async (i) => {
    if (firstError) return;
    if (now() > deadline) {
      firstError ??= new Error(`${phase}: not all sessions were up after ${CONNECT_CAP_MS / 1000} s (${done} of ${users.length})`);
      return;
    }
    try {
      const c = await BenchClient.login({ ...ctx.clientOptions(users[i] as string), timeoutMs: Math.max(1000, deadline - now()) });
      clients[i] = c;
      onLogin?.(c, i);
      done++;
    } catch (err) {
      failures++;
      firstError ??= err as Error;
    }
    ctx.progress(phase, done, users.length, failures);
  });
  if (firstError) {
    for (const c of clients) c?.destroy();
    throw new Error(`${phase}: ${failures || 'some'} login(s) failed, first: ${firstError.message}`);
  }
  return clients;
}

/** Closes every session (each waits for the server's </stream:stream>), bounded in time. */
async function closeAll(clients: BenchClient[]): Promise<void> {
  await pool(clients.length, 500, (i) => clients[i]?.close(5000) ?? Promise.resolve());
}

// ---------------------------------------------------------------------------------------------- login

export async function runLogin(ctx: WorkerContext): Promise<ScenarioResult> {
  const { opts, task } = ctx;
  const [c0, c1] = share(opts.concurrency, task.workers, task.index);
  const loops = c1 - c0;
  const limit = opts.logins > 0 ? share(opts.logins, task.workers, task.index) : undefined;
  const maxLogins = limit ? limit[1] - limit[0] : Infinity;
  const hist = new Histogram();
  const errors: string[] = [];
  let logins = 0;
  let failures = 0;
  let started = 0;
  let lastLogin = 0;
  // Each worker walks its own slice of the accounts so concurrent logins mostly use different users.
  let cursor = task.index;
  const durationMs = opts.duration * 1000;

  await ctx.barrier('go');
  ctx.measureStart();
  const start = now();
  const deadline = limit ? start + opts.cap * 1000 : start + durationMs;
  const progress = setInterval(() => ctx.progress('login', limit ? logins : now() - start, limit ? maxLogins : durationMs, failures, logins), 250);
  const loop = async (): Promise<void> => {
    while (now() < deadline && started < maxLogins) {
      // Give up early when nothing works at all (wrong password, server down): the error says why.
      if (logins === 0 && failures >= 100) return;
      started++;
      const user = userName(opts, (cursor % opts.users) + 1);
      cursor += task.workers;
      const t0 = now();
      try {
        const c = await BenchClient.login(ctx.clientOptions(user));
        const t1 = now();
        if (limit || t1 <= deadline) {
          logins++;
          hist.recordMs(t1 - t0);
          lastLogin = t1;
        }
        await c.close(5000);
      } catch (err) {
        failures++;
        if (errors.length < 5) errors.push((err as Error).message);
        await sleep(5);
      }
    }
  };
  const finished = Promise.all(Array.from({ length: loops }, loop));
  // The measured window (CPU here and on the server) ends at the deadline; logins still under way finish after.
  if (limit) await finished;
  else await sleep(Math.max(0, deadline - now()));
  clearInterval(progress);
  ctx.measureEnd();
  await ctx.barrier('measured');
  await finished;
  const elapsed = limit ? lastLogin - start : Math.min(durationMs, now() - start);
  return { counters: { logins, failures, elapsedMs: Math.max(0, elapsed) }, histograms: { login: hist.toJSON() }, errors };
}

// ---------------------------------------------------------------------------------------------- idle

export async function runIdle(ctx: WorkerContext): Promise<ScenarioResult> {
  const { opts, task } = ctx;
  const [s0, s1] = share(opts.sessions, task.workers, task.index);
  const users = Array.from({ length: s1 - s0 }, (_, i) => userName(opts, ((s0 + i) % opts.users) + 1));
  let lost = 0;
  await ctx.barrier('go');
  ctx.measureStart();
  const clients = await connectAll(ctx, users, 'connect', (c) => {
    c.onClose = () => lost++;
  });
  ctx.measureEnd();
  // The coordinator lets the server settle and reads its memory; the sessions stay open until then.
  await ctx.barrier('measured', { sessions: clients.length });
  const closing = lost;
  for (const c of clients) c.onClose = () => undefined;
  await closeAll(clients);
  return { counters: { sessions: clients.length, lostBeforeMeasure: closing }, histograms: {}, errors: [] };
}

// ---------------------------------------------------------------------------------------------- msg

/** Message ids carry the send time: `<seq>.<µs since this process's time origin>`, both base 36. */
function messageId(seq: number, t: number): string {
  return `${seq.toString(36)}.${Math.round(t * 1000).toString(36)}`;
}

function sentAt(id: string | undefined): number | undefined {
  if (id === undefined) return undefined;
  const dot = id.indexOf('.');
  if (dot < 0) return undefined;
  const us = Number.parseInt(id.slice(dot + 1), 36);
  return Number.isFinite(us) ? us / 1000 : undefined;
}

function chat(to: string, id: string): string {
  return `<message to='${to}' type='chat' id='${id}'><body>${BODY}</body></message>`;
}

export async function runMsg(ctx: WorkerContext): Promise<ScenarioResult> {
  const { opts, task } = ctx;
  const [p0, p1] = share(opts.pairs, task.workers, task.index);
  const pairs = p1 - p0;
  // Pair p is user(2p+1) <-> user(2p+2); client 2k and 2k+1 of this worker are peers, and both send.
  const users: string[] = [];
  for (let p = p0; p < p1; p++) users.push(userName(opts, 2 * p + 1), userName(opts, 2 * p + 2));
  const open = opts.rate > 0;
  const hist = new Histogram();
  const errors: string[] = [];
  let sent = 0;
  let delivered = 0;
  let bounced = 0;
  let sending = false;
  let seq = 0;
  let dropped = 0;
  const inFlight = new Int32Array(users.length);

  const clients = await connectAll(ctx, users, 'connect');
  const send = (i: number): void => {
    const c = clients[i] as BenchClient;
    const peer = clients[i ^ 1] as BenchClient;
    const t = now();
    c.send(chat(peer.bare, messageId(seq++, t)));
    if (opts.sm) c.send(`<r xmlns='${BENCH_NS.SM}'/>`);
    inFlight[i]!++;
    sent++;
  };
  clients.forEach((c, i) => {
    const sender = i ^ 1; // whoever writes to this client is its peer
    c.onStanza = (el) => {
      if (el.charCodeAt(1) !== 0x6d || elementName(el) !== 'message') return; // 'm'
      if (attr(el, 'type') === 'error') {
        bounced++;
        if (errors.length < 5) errors.push(`message bounced: ${stanzaErrorCondition(el)}`);
      } else {
        const t0 = sentAt(attr(el, 'id'));
        if (t0 === undefined) return;
        hist.recordMs(now() - t0);
        delivered++;
      }
      inFlight[sender]!--;
      if (sending && !open) send(sender);
    };
    c.onClose = () => {
      dropped++;
      if (errors.length < 5) errors.push(`${c.opts.username}: the server closed the connection`);
    };
  });

  await ctx.barrier('go');
  ctx.measureStart();
  sending = true;
  const start = now();
  const durationMs = opts.duration * 1000;
  let maxLagMs = 0;
  let ticker: NodeJS.Timeout | undefined;
  if (!open) {
    for (let i = 0; i < clients.length; i++) for (let w = 0; w < opts.window; w++) send(i);
  } else if (clients.length > 0) {
    // Open loop: this worker's share of --rate, its senders taking turns, so each sends at rate/senders.
    // A 1 ms tick sends whatever the schedule says is due (a timer wheel with one slot per millisecond).
    const rate = (opts.rate * pairs) / opts.pairs;
    let due = 0;
    let turn = 0;
    ticker = setInterval(() => {
      const elapsed = now() - start;
      const target = Math.floor((Math.min(elapsed, durationMs) * rate) / 1000);
      if (target > due) maxLagMs = Math.max(maxLagMs, elapsed - ((due + 1) * 1000) / rate);
      while (due < target) {
        send(turn);
        turn = turn + 1 === clients.length ? 0 : turn + 1;
        due++;
      }
    }, 1);
  }
  const progress = setInterval(() => ctx.progress('msg', now() - start, durationMs, bounced, delivered), 250);
  await sleep(durationMs);
  sending = false;
  if (ticker) clearInterval(ticker);
  clearInterval(progress);
  const deliveredInWindow = delivered;
  const elapsedMs = now() - start;
  ctx.measureEnd();
  await ctx.barrier('measured');
  // Drain: what is still in flight gets DRAIN_MS to arrive; what does not is lost.
  const drainEnd = now() + DRAIN_MS;
  while (now() < drainEnd && delivered + bounced < sent) await sleep(20);
  await ctx.barrier('drained');
  for (const c of clients) c.onClose = () => undefined;
  const droppedBeforeClose = dropped;
  await closeAll(clients);
  return {
    counters: {
      sent, delivered, deliveredInWindow, bounced, elapsedMs, dropped: droppedBeforeClose, senders: clients.length,
      maxLagUs: Math.round(maxLagMs * 1000),
    },
    histograms: { latency: hist.toJSON() },
    errors,
  };
}

// ---------------------------------------------------------------------------------------------- offline

/** Sends `count` messages in batches, each batch followed by a ping whose result says the server handled it. */
async function sendInBatches(
  c: BenchClient, count: number, batch: number, maxBatchesInFlight: number, make: (seq: number) => string, deadline: number,
  onAccepted: (n: number) => void,
): Promise<void> {
  let seq = 0;
  let pingId = 0;
  const inFlight: Array<Promise<string>> = [];
  while (seq < count) {
    if (now() > deadline) throw new Error(`${c.opts.username}: time cap reached after ${seq} of ${count} messages`);
    const n = Math.min(batch, count - seq);
    let chunk = '';
    for (let k = 0; k < n; k++) chunk += make(seq++);
    const id = `p${pingId++}`;
    chunk += `<iq type='get' id='${id}' to='${c.opts.domain}'><ping xmlns='${NS.PING}'/></iq>`;
    const acked = c.request(chunk, id).then((reply) => {
      if (attr(reply, 'type') !== 'result') throw new Error(`${c.opts.username}: ping after a batch failed: ${stanzaErrorCondition(reply)}`);
      onAccepted(n);
      return reply;
    });
    acked.catch(() => undefined); // observed below; this only keeps an abandoned one from being "unhandled"
    inFlight.push(acked);
    if (inFlight.length >= maxBatchesInFlight) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

export async function runOffline(ctx: WorkerContext): Promise<ScenarioResult> {
  const { opts, task } = ctx;
  const [p0, p1] = share(opts.pairs, task.workers, task.index);
  const senders: string[] = [];
  const recipients: string[] = [];
  for (let p = p0; p < p1; p++) {
    senders.push(userName(opts, 2 * p + 1));
    recipients.push(userName(opts, 2 * p + 2));
  }
  // Message m of the run goes from pair m % pairs; this worker's pairs send their part of --messages.
  const quota = senders.map((_, k) => share(opts.messages, opts.pairs, p0 + k)).map(([a, b]) => b - a);
  const total = quota.reduce((a, b) => a + b, 0);
  const errors: string[] = [];
  let bounced = 0;
  let accepted = 0;
  const perRecipientBounced = new Int32Array(senders.length);

  const senderClients = await connectAll(ctx, senders, 'connect senders', (c, k) => {
    c.onStanza = (el) => {
      if (elementName(el) === 'message' && attr(el, 'type') === 'error') {
        bounced++;
        perRecipientBounced[k]!++;
        if (errors.length < 5) errors.push(`message to an offline user bounced: ${stanzaErrorCondition(el)}`);
      }
    };
  });

  await ctx.barrier('go');
  ctx.measureStart();
  const start = now();
  const deadline = start + opts.cap * 1000;
  const progress = setInterval(() => ctx.progress('store', accepted, total, bounced), 250);
  try {
    await Promise.all(senderClients.map((c, k) => sendInBatches(
      c, quota[k] as number, opts.batch, 2,
      (seq) => `<message to='${recipients[k]}@${opts.domain}' type='chat' id='o${seq.toString(36)}'><body>${BODY}</body></message>`,
      deadline, (n) => {
        accepted += n;
      },
    )));
  } finally {
    clearInterval(progress);
  }
  const storeMs = now() - start;
  ctx.measureEnd();
  const stored = total - bounced;
  const decision = await ctx.barrier('measured', { stored, bounced });
  await closeAll(senderClients);

  let delivered = 0;
  let drainMs = 0;
  if (!decision.skipDrain) {
    const expected = quota.map((q, k) => q - (perRecipientBounced[k] as number));
    const got = new Int32Array(recipients.length);
    const drainStart = now();
    let lastDelivery = drainStart;
    const drainProgress = setInterval(() => ctx.progress('drain', delivered, stored), 250);
    let recipientClients: BenchClient[] = [];
    try {
      recipientClients = await connectAll(ctx, recipients, 'drain', (c, k) => {
        c.onStanza = (el) => {
          if (elementName(el) === 'message' && attr(el, 'type') !== 'error' && attr(el, 'id')?.startsWith('o')) {
            got[k]!++;
            delivered++;
            lastDelivery = now();
          }
        };
      });
      // Wait until everything stored arrived; stop when nothing more came for 10 s, or at the cap.
      const drainDeadline = drainStart + opts.cap * 1000;
      for (;;) {
        if (got.every((g, k) => g >= (expected[k] as number))) break;
        const t = now();
        if (t > drainDeadline || t - lastDelivery > 10_000) {
          errors.push(`drain: ${delivered} of ${stored} stored messages arrived`);
          break;
        }
        await sleep(5);
      }
      drainMs = lastDelivery - drainStart;
    } finally {
      clearInterval(drainProgress);
    }
    await closeAll(recipientClients);
  }
  return { counters: { messages: total, stored, bounced, delivered, storeMs, drainMs }, histograms: {}, errors };
}

// ---------------------------------------------------------------------------------------------- mam

/** XEP-0313 conditions that mean "no archive here" rather than "something broke". */
const UNSUPPORTED = new Set(['service-unavailable', 'feature-not-implemented', 'bad-request', 'not-allowed']);

export async function runMam(ctx: WorkerContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  const errors: string[] = [];
  const hist = new Histogram();
  const owner = userName(opts, 1);
  const [client] = await connectAll(ctx, ctx.task.index === 0 ? [owner] : [], 'connect');
  let results = 0;
  let archiveSize = -1;
  let pages = 0;
  let unsupported = 0;
  let fetched = 0;
  if (client) {
    client.onStanza = (el) => {
      if (elementName(el) === 'message' && (el.includes(`xmlns='${BENCH_NS.MAM}'`) || el.includes(`xmlns="${BENCH_NS.MAM}"`))) results++;
    };
  }
  await ctx.barrier('go');
  ctx.measureStart();
  if (client) {
    const deadline = now() + opts.cap * 1000;
    let before = '';
    for (let page = 0; page < opts.pages && now() < deadline; page++) {
      const id = `mam${page}`;
      const rsm = `<set xmlns='${BENCH_NS.RSM}'><max>${opts.pageSize}</max>${before === '' ? '<before/>' : `<before>${before}</before>`}</set>`;
      results = 0;
      const t0 = now();
      client.send(`<iq type='set' id='${id}'><query xmlns='${BENCH_NS.MAM}' queryid='q${page}'>${rsm}</query></iq>`);
      const reply = await client.waitFor((el) => elementName(el) === 'iq' && attr(el, 'id') === id);
      const ms = now() - t0;
      if (attr(reply, 'type') !== 'result') {
        const condition = stanzaErrorCondition(reply);
        if (page === 0 && UNSUPPORTED.has(condition)) {
          unsupported = 1;
          errors.push(`the server answered the MAM query with ${condition}`);
          break;
        }
        throw new Error(`MAM page ${page + 1} failed: ${condition}`);
      }
      hist.recordMs(ms);
      pages++;
      fetched += results;
      const count = childText(reply, 'count');
      if (page === 0 && count !== undefined) archiveSize = Number(count);
      const first = childText(reply, 'first');
      ctx.progress('mam', pages, opts.pages);
      if (!first || /<fin[^>]*complete=['"]true['"]/.test(reply) || results === 0) break;
      before = first;
    }
  }
  ctx.measureEnd();
  await ctx.barrier('measured');
  if (client) await client.close(5000);
  return { counters: { pages, archiveSize, unsupported, fetched }, histograms: { page: hist.toJSON() }, errors };
}

export async function runMamFill(ctx: WorkerContext): Promise<ScenarioResult> {
  const { opts } = ctx;
  const errors: string[] = [];
  const first = ctx.task.index === 0;
  const owner = userName(opts, 1);
  const peer = userName(opts, 2);
  let bounced = 0;
  let delivered = 0;
  let accepted = 0;
  const clients = await connectAll(ctx, first ? [owner, peer] : [], 'connect', (c, i) => {
    c.onStanza = (el) => {
      if (elementName(el) !== 'message') return;
      if (attr(el, 'type') === 'error') {
        bounced++;
        if (errors.length < 5) errors.push(`message bounced: ${stanzaErrorCondition(el)}`);
      } else if (i === 1) delivered++;
    };
  });
  await ctx.barrier('go');
  ctx.measureStart();
  const start = now();
  if (clients[0]) {
    const progress = setInterval(() => ctx.progress('fill', accepted, opts.messages, bounced), 250);
    try {
      await sendInBatches(
        clients[0], opts.messages, opts.batch, 4,
        (seq) => `<message to='${peer}@${opts.domain}' type='chat' id='f${seq.toString(36)}'><body>${BODY} #${seq}</body></message>`,
        start + opts.cap * 1000, (n) => {
          accepted += n;
        },
      );
    } finally {
      clearInterval(progress);
    }
  }
  const fillMs = now() - start;
  ctx.measureEnd();
  await ctx.barrier('measured');
  // The peer receives everything too; give the tail a moment before closing.
  const end = now() + DRAIN_MS;
  while (clients[1] && delivered + bounced < accepted && now() < end) await sleep(20);
  await closeAll(clients);
  return { counters: { messages: first ? opts.messages : 0, accepted, bounced, delivered, fillMs }, histograms: {}, errors };
}

export const SCENARIO_RUNNERS = {
  login: runLogin,
  idle: runIdle,
  msg: runMsg,
  offline: runOffline,
  mam: runMam,
  'mam-fill': runMamFill,
} as const;
