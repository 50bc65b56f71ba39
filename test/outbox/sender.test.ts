// The outbox sender with a fake clock over a real (in-memory) SQLite outbox: back-off, dead-lettering,
// concurrency, permanent failures, shutdown and purging, without waiting on real time.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import type { OutboxJob } from '../../src/storage/types.ts';
import {
  OutboxSender, PermanentSendError, activeOutboxKinds, backoffDelay, outboxKind, wakeOutbox, type OutboxClock,
} from '../../src/outbox/sender.ts';

/** Timers fire only when the test advances time. */
class FakeClock implements OutboxClock {
  t = 1_000_000;
  private seq = 0;
  readonly timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void { this.timers.delete(h as number); }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

/** Lets timers at the current time fire and everything started settle. */
async function settle(clock: FakeClock, sender: OutboxSender): Promise<void> {
  for (let i = 0; i < 20; i++) {
    clock.advance(0);
    await sender.idle();
    await new Promise((r) => setImmediate(r));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

describe('backoffDelay', () => {
  it('doubles from the base, caps at the max, and keeps half of the delay fixed', () => {
    assert.equal(backoffDelay(1, 1000, 60_000, () => 0), 500);
    assert.equal(backoffDelay(1, 1000, 60_000, () => 0.999999), 1000);
    assert.equal(backoffDelay(2, 1000, 60_000, () => 0), 1000);
    assert.equal(backoffDelay(3, 1000, 60_000, () => 0.5), 3000);
    assert.equal(backoffDelay(10, 1000, 60_000, () => 0), 30_000);
    assert.equal(backoffDelay(50, 1000, 60_000, () => 0.999999), 60_000);
  });
});

describe('OutboxSender', () => {
  let storage: SqliteStorage;
  let clock: FakeClock;
  const senders: OutboxSender[] = [];
  const make = (opts: Partial<ConstructorParameters<typeof OutboxSender>[0]> & { send: ConstructorParameters<typeof OutboxSender>[0]['send'] }) => {
    const s = new OutboxSender({ store: storage.outbox, kind: 'test:a.example', clock, random: () => 0.5, ...opts });
    senders.push(s);
    return s;
  };
  const job = async (id: number): Promise<OutboxJob> => {
    const j = (await storage.outbox.list({ limit: 1000 })).find((x) => x.id === id);
    assert.ok(j, `job ${id}`);
    return j;
  };

  beforeEach(() => {
    storage = new SqliteStorage(':memory:');
    clock = new FakeClock();
  });
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.stop();
    storage.close();
  });

  it('retries with exponential back-off, then dead-letters after maxAttempts', async () => {
    const calls: number[] = [];
    const s = make({
      maxAttempts: 4, backoffBaseMs: 1000, backoffMaxMs: 3000,
      send: async () => { calls.push(clock.now()); throw new Error('HTTP 503'); },
    });
    const id = await storage.outbox.add('a.example', 'test:a.example', '{}', clock.now());
    s.start();
    await settle(clock, s);
    assert.equal(calls.length, 1);
    let j = await job(id);
    assert.equal(j.state, 'pending');
    assert.equal(j.attempts, 1);
    assert.equal(j.lastError, 'HTTP 503');
    // random() = 0.5: three quarters of 1000 ms.
    assert.equal(j.nextAttemptAt, 1_000_000 + 750);

    clock.advance(749);
    await settle(clock, s);
    assert.equal(calls.length, 1, 'not retried before its time');
    clock.advance(1);
    await settle(clock, s);
    assert.equal(calls.length, 2);
    j = await job(id);
    assert.equal(j.attempts, 2);
    assert.equal(j.nextAttemptAt, clock.now() + 1500);

    clock.advance(1500);
    await settle(clock, s);
    j = await job(id);
    assert.equal(j.attempts, 3);
    // 4000 ms capped at 3000, three quarters of that.
    assert.equal(j.nextAttemptAt, clock.now() + 2250);

    clock.advance(2250);
    await settle(clock, s);
    j = await job(id);
    assert.equal(j.state, 'dead');
    assert.equal(j.attempts, 4);
    clock.advance(3_600_000);
    await settle(clock, s);
    assert.equal(calls.length, 4, 'a dead job is not retried');
    assert.deepEqual(await storage.outbox.counts('test:a.example'), { pending: 0, delivered: 0, dead: 1 });
  });

  it('delivers after failures, and an operator retry revives a dead job', async () => {
    let failures = 2;
    const sent: string[] = [];
    const s = make({
      maxAttempts: 2, backoffBaseMs: 100,
      send: async (j) => {
        if (failures-- > 0) throw new Error('down');
        sent.push(j.payload);
      },
    });
    const id = await storage.outbox.add('a.example', 'test:a.example', 'x', clock.now());
    s.start();
    await settle(clock, s);
    clock.advance(1000);
    await settle(clock, s);
    assert.equal((await job(id)).state, 'dead');
    assert.equal(await storage.outbox.retryDead('test:a.example'), 1);
    // retryDead stamps the real time; the fake clock has to be past it for the job to be due.
    clock.t = Date.now() + 1;
    wakeOutbox('test:a.example');
    await settle(clock, s);
    assert.deepEqual(sent, ['x']);
    assert.equal((await job(id)).state, 'delivered');
  });

  it('never runs more than `concurrency` sends at once, and drains the queue', async () => {
    const gates: Array<{ promise: Promise<void>; resolve: () => void }> = [];
    let running = 0;
    let most = 0;
    const s = make({
      concurrency: 2,
      send: async () => {
        running++;
        most = Math.max(most, running);
        const g = deferred();
        gates.push(g);
        await g.promise;
        running--;
      },
    });
    for (let i = 0; i < 5; i++) await storage.outbox.add('a.example', 'test:a.example', String(i), clock.now());
    s.start();
    for (let round = 0; round < 10 && (await storage.outbox.counts()).delivered < 5; round++) {
      for (let i = 0; i < 5; i++) {
        clock.advance(0);
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(running <= 2);
      gates.shift()?.resolve();
    }
    await settle(clock, s);
    assert.equal(most, 2);
    assert.deepEqual(await storage.outbox.counts(), { pending: 0, delivered: 5, dead: 0 });
  });

  it('dead-letters at once on a permanent failure', async () => {
    const s = make({ maxAttempts: 8, send: async () => { throw new PermanentSendError('unreadable payload'); } });
    const id = await storage.outbox.add('a.example', 'test:a.example', '{', clock.now());
    s.start();
    await settle(clock, s);
    const j = await job(id);
    assert.equal(j.state, 'dead');
    assert.equal(j.attempts, 1);
    assert.equal(j.lastError, 'unreadable payload');
  });

  it('aborts sends on stop and leaves their jobs pending, untouched, for the next start', async () => {
    let signalled = false;
    const s = make({
      send: (_j, signal) => new Promise<void>((_resolve, reject) => {
        signal.addEventListener('abort', () => { signalled = true; reject(signal.reason as Error); });
      }),
    });
    const id = await storage.outbox.add('a.example', 'test:a.example', 'x', clock.now());
    s.start();
    for (let i = 0; i < 5; i++) {
      clock.advance(0);
      await new Promise((r) => setImmediate(r));
    }
    await s.stop();
    assert.ok(signalled);
    const j = await job(id);
    assert.equal(j.state, 'pending');
    assert.equal(j.attempts, 0);
    assert.equal(j.lastError, null);
    assert.ok(!activeOutboxKinds().includes('test:a.example'));

    const sent: number[] = [];
    const again = make({ send: async (x) => { sent.push(x.id); } });
    again.start();
    await settle(clock, again);
    assert.deepEqual(sent, [id]);
  });

  it('takes only its own kind, and refuses a second sender of the same kind', async () => {
    const sent: string[] = [];
    const s = make({ send: async (j) => { sent.push(j.kind); } });
    await storage.outbox.add('a.example', 'test:a.example', 'mine', clock.now());
    await storage.outbox.add('b.example', 'test:b.example', 'other host', clock.now());
    s.start();
    assert.ok(activeOutboxKinds().includes('test:a.example'));
    assert.throws(() => make({ send: async () => undefined }).start(), /already running/);
    await settle(clock, s);
    assert.deepEqual(sent, ['test:a.example']);
    assert.deepEqual(await storage.outbox.counts('test:b.example'), { pending: 1, delivered: 0, dead: 0 });
    assert.equal(outboxKind('offline_webhook', 'a.example'), 'offline_webhook:a.example');
  });

  it('purges delivered jobs older than purgeAfterMs', async () => {
    const first = make({ send: async () => undefined });
    await storage.outbox.add('a.example', 'test:a.example', 'old', clock.now());
    first.start();
    await settle(clock, first);
    await first.stop();
    assert.equal((await storage.outbox.counts()).delivered, 1);
    // created_at is real time: a clock eight days ahead makes that job older than a week.
    clock.t = Date.now() + 8 * 86_400_000;
    const later = make({ send: async () => undefined, purgeAfterMs: 7 * 86_400_000 });
    later.start();
    await settle(clock, later);
    assert.deepEqual(await storage.outbox.counts(), { pending: 0, delivered: 0, dead: 0 });
  });
});
