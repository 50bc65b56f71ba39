// XEP-0198 with an independent client library: xmpp.js enables stream management on its own when offered,
// acknowledges, and resumes after its connection is cut.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startServer, type TestServer } from '../helpers/server.ts';
import { connectClient, xml, type Stanza, type TestClient } from '../helpers/xmpp-client.ts';
import { Jid } from '../../src/xmpp/jid.ts';

/** The parts of xmpp.js's stream management and connection that the test types do not declare. */
type SmInternals = {
  streamManagement: { enabled: boolean; id: string; inbound: number; on(event: 'ack' | 'resumed', fn: (s?: Stanza) => void): void };
  /** xmpp.js's socket wrapper, around the TCP (or TLS) socket. */
  socket: { socket: Socket | null } | null;
  reconnect: { reconnect(): Promise<void> };
};
const internals = (c: TestClient): SmInternals => c.xmpp as unknown as SmInternals;

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('stream management with xmpp.js', () => {
  let t: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    t = await startServer({ modules: { smacks: { request_ack_after: 2 } } });
    await t.register('alice', 'alice-pw');
    await t.register('bob', 'bob-pw');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  it('enables resumable stream management, acknowledges both ways, and resumes after the connection is cut', async () => {
    const alice = await connectClient({ port: t.port, username: 'alice', password: 'alice-pw', resource: 'desk' });
    const bob = await connectClient({ port: t.port, username: 'bob', password: 'bob-pw', resource: 'phone' });
    clients.push(alice, bob);
    const sm = internals(bob).streamManagement;
    await until('stream management', () => sm.enabled && internals(alice).streamManagement.enabled);
    // Available: messages to the bare JID come to this session too.
    await bob.xmpp.send(xml('presence'));
    await bob.next((s) => s.is('presence') && s.attrs.from === 'bob@localhost/phone');
    assert.match(sm.id, /^[A-Za-z0-9_-]{16,}$/);
    const session = t.server.sessions.get(Jid.parse('bob@localhost/phone'));
    assert.ok(session?.tracker, 'the server tracks the session');

    // Alice's stanzas are acknowledged by the server (xmpp.js asks with <r/> shortly after sending).
    const acked: string[] = [];
    internals(alice).streamManagement.on('ack', (s) => { if (s?.attrs.id) acked.push(s.attrs.id); });
    for (let i = 1; i <= 3; i++) await alice.xmpp.send(xml('message', { to: 'bob@localhost/phone', type: 'chat', id: `m${i}` }, xml('body', {}, `${i}`)));
    for (let i = 1; i <= 3; i++) await bob.next((s) => s.is('message') && s.attrs.id === `m${i}`);
    await until('acknowledgements', () => acked.length === 3);
    assert.deepEqual(acked, ['m1', 'm2', 'm3']);

    // The network goes away under Bob; Alice writes meanwhile.
    let resumed = false;
    sm.on('resumed', () => { resumed = true; });
    internals(bob).socket?.socket?.destroy();
    await until('the session to detach', () => session?.detached === true);
    await alice.xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'while-away-1' }, xml('body', {}, 'a')));
    await alice.xmpp.send(xml('message', { to: 'bob@localhost/phone', type: 'chat', id: 'while-away-2' }, xml('body', {}, 'b')));
    await alice.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await internals(bob).reconnect.reconnect();
    await until('resumption', () => resumed);
    await bob.next((s) => s.is('message') && s.attrs.id === 'while-away-1');
    await bob.next((s) => s.is('message') && s.attrs.id === 'while-away-2');
    assert.equal(t.server.sessions.get(Jid.parse('bob@localhost/phone')), session, 'the same session goes on');
    assert.equal(session?.detached, false);
    await bob.xmpp.send(xml('message', { to: 'alice@localhost/desk', type: 'chat', id: 'back' }, xml('body', {}, 'back')));
    await alice.next((s) => s.is('message') && s.attrs.id === 'back');
    await bob.xmpp.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    assert.equal(bob.inbox.filter((s) => s.is('message')).length, 0, 'nothing twice');
    assert.equal(await t.server.storage.offline.count('localhost', 'bob'), 0);
  });
});
