// The pieces behind the connection limits, with a clock the test controls: token buckets, connection caps, and
// per-(address, account) login back-off; and the back-off seen from a client.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/c2s/limits/token-bucket.ts';
import { ConnectionGuard, ConnectionTicket } from '../../src/c2s/limits/connection-guard.ts';
import { LoginBackoff, LoginFailures } from '../../src/auth/login-failures.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { startServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';

describe('token bucket', () => {
  it('allows the burst, then the rate, with debt paid off over time', () => {
    const b = new TokenBucket(10, 5, 0);
    for (let i = 0; i < 5; i++) assert.equal(b.take(1, 0), 0);
    assert.equal(b.take(1, 0), 1);
    assert.equal(b.waitMs(), 100); // one token at 10/s
    assert.equal(b.take(1, 50), 2); // half a token refilled, one more taken: 1.5 in debt, rounded up
    assert.equal(b.waitMs(), 150);
    assert.equal(b.take(0, 10_000), 0); // refilled, capped at the burst
    for (let i = 0; i < 5; i++) assert.equal(b.tryTake(10_000), true);
    assert.equal(b.tryTake(10_000), false);
  });

  it('counts per minute with a longer period, and a rate of 0 is unlimited', () => {
    const b = new TokenBucket(2, 2, 0, 60_000);
    assert.equal(b.tryTake(0), true);
    assert.equal(b.tryTake(0), true);
    assert.equal(b.tryTake(29_999), false);
    assert.equal(b.tryTake(30_000), true);
    const off = new TokenBucket(0, 1, 0);
    assert.equal(off.take(1_000_000, 0), 0);
    assert.equal(off.unlimited, true);
  });
});

describe('connection guard', () => {
  const caps = { max_total: 3, max_unauthenticated_per_ip: 2, attempts_per_ip_per_minute: 4, exempt: ['10.0.0.0/8'] };

  it('caps unauthenticated connections per address until they authenticate or close', () => {
    const g = new ConnectionGuard({ ...caps, max_total: 0, attempts_per_ip_per_minute: 0 });
    const a = g.admit('192.0.2.1') as ConnectionTicket;
    const b = g.admit('::ffff:192.0.2.1') as ConnectionTicket;
    assert.ok(a instanceof ConnectionTicket && b instanceof ConnectionTicket);
    assert.deepEqual(g.admit('192.0.2.1'), { condition: 'policy-violation', text: 'Too many unauthenticated connections from your address' });
    g.authenticated(a);
    g.authenticated(a); // once only
    const c = g.admit('192.0.2.1') as ConnectionTicket;
    assert.ok(c instanceof ConnectionTicket);
    g.release(b);
    g.release(b);
    assert.ok(g.admit('192.0.2.1') instanceof ConnectionTicket);
    assert.ok(!(g.admit('192.0.2.1') instanceof ConnectionTicket));
    // Exempt networks have no per-address cap.
    for (let i = 0; i < 5; i++) assert.ok(g.admit('10.1.2.3') instanceof ConnectionTicket);
  });

  it('caps attempts per address per minute and connections in total', () => {
    let now = 0;
    const g = new ConnectionGuard({ ...caps, max_total: 100, max_unauthenticated_per_ip: 0 }, () => now);
    for (let i = 0; i < 4; i++) g.release(g.admit('192.0.2.9') as ConnectionTicket);
    assert.equal((g.admit('192.0.2.9') as { condition: string }).condition, 'policy-violation');
    now += 60_000;
    assert.ok(g.admit('192.0.2.9') instanceof ConnectionTicket);
    const total = new ConnectionGuard({ ...caps, max_unauthenticated_per_ip: 0, attempts_per_ip_per_minute: 0 });
    const t = [total.admit('10.0.0.1'), total.admit('10.0.0.2'), total.admit('10.0.0.3')];
    assert.equal((total.admit('10.0.0.4') as { condition: string }).condition, 'resource-constraint');
    total.release(t[0] as ConnectionTicket);
    assert.ok(total.admit('10.0.0.4') instanceof ConnectionTicket);
    assert.equal(total.open, 3);
  });

  it('refuses a malformed exempt entry at start-up', () => {
    assert.throws(() => new ConnectionGuard({ ...caps, exempt: ['10.0.0.0/33', 'nonsense'] }),
      (e: unknown) => e instanceof ConfigError && /limits\.connections\.exempt/.test(e.message));
  });
});

describe('login back-off per address and account', () => {
  it('makes an address wait for one account after a few failures, doubling, while others are unaffected', () => {
    let now = 0;
    const f = new LoginFailures({ max_failures: 100, window: 600, ban_seconds: 600, backoff_after: 3, backoff_base: 1, backoff_max: 5 }, () => now);
    for (let i = 0; i < 2; i++) f.recordFailure('192.0.2.1', 'alice');
    assert.equal(f.retryAfter('192.0.2.1', 'alice'), 0);
    f.recordFailure('192.0.2.1', 'alice');
    assert.equal(f.retryAfter('192.0.2.1', 'alice'), 1000);
    assert.throws(() => f.checkBackoff('192.0.2.1', 'alice'), (e: unknown) => e instanceof LoginBackoff && e.condition === 'not-authorized');
    assert.equal(f.retryAfter('192.0.2.2', 'alice'), 0, 'another address is not slowed');
    assert.equal(f.retryAfter('192.0.2.1', 'bob'), 0, 'another account is not slowed');
    now += 1000;
    f.recordFailure('192.0.2.1', 'alice');
    assert.equal(f.retryAfter('192.0.2.1', 'alice'), 2000);
    for (let i = 0; i < 5; i++) f.recordFailure('192.0.2.1', 'alice');
    assert.equal(f.retryAfter('192.0.2.1', 'alice'), 5000, 'capped');
    f.recordSuccess('192.0.2.1', 'alice');
    assert.equal(f.retryAfter('192.0.2.1', 'alice'), 0);
    assert.equal(f.isBanned('192.0.2.1'), false);
  });

  it('a client past the failures waits even with the right password; the owner logs in from elsewhere', async () => {
    const t = await startServer({ auth: { brute_force: { backoff_after: 2, backoff_base: 60 } } });
    const open: RawClient[] = [];
    const auth = (c: RawClient, pw: string): void =>
      c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0alice\0${pw}`).toString('base64')}</auth>`);
    try {
      await t.register('alice', 'right');
      const c = await RawClient.connect(t.port, { localAddress: '127.0.0.3' });
      open.push(c);
      await c.openStream();
      await c.starttls();
      await c.openStream();
      for (let i = 0; i < 2; i++) {
        auth(c, 'wrong');
        await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><\/failure>/);
      }
      auth(c, 'right');
      const m = await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/><text[^>]*>([^<]*)<\/text><\/failure>/);
      assert.match(m[1] ?? '', /try again in 60 seconds/);
      const owner = await RawClient.connect(t.port, { localAddress: '127.0.0.4' });
      open.push(owner);
      await owner.login('alice', 'right');
    } finally {
      for (const c of open) c.destroy();
      await t.stop();
    }
  });
});
