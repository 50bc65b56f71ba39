// Notifications for members away from members-only rooms: the offline webhook and XEP-0357 push (through the
// built-in push service to a mock APNs) each get exactly one notification per message for each away member, none for
// members in the room, none when the room or the member turned them off, none for open rooms; and the rate limit.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MockApns, apnsKey, mockCertificate, tempDir, type Recorded } from '../push-service/mocks.ts';
import { MUC_ADMIN, MucClient, SERVICE, configForm, createRoom, errorCondition } from './helpers.ts';

type Hook = { event: string; body: Record<string, unknown> };

/** A webhook receiver on 127.0.0.1 that records every request and answers 200. */
class Receiver {
  readonly requests: Hook[] = [];
  private server: Server | undefined;
  url = '';
  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ event: String(req.headers['x-parley-event']), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        res.writeHead(200).end('ok');
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    return this;
  }
  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** Polls until a condition holds; fails after 10 s rather than hang. */
async function until(what: string, test: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const FAST = { backoff_base: 0.01, backoff_max: 0.05 };
const token = (i: number): string => `${'ab'.repeat(31)}${String(i).padStart(2, '0')}`;

async function enablePush(c: MucClient, tok: string): Promise<void> {
  const r = await c.iq(c.bare, 'set', `<enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='${tok}'>` +
    `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
    `<field var='provider'><value>apns</value></field><field var='topic'><value>com.example.chat</value></field></x></enable>`);
  assert.equal(r.attrs.type, 'result');
}

describe('muc: notifications for members away', () => {
  const dir = tempDir();
  let t: TestServer;
  let rx: Receiver;
  let apns: MockApns;
  const open: MucClient[] = [];

  before(async () => {
    rx = await new Receiver().start();
    const tls = await mockCertificate(dir);
    apns = await new MockApns(tls).listen();
    t = await startServer({
      modules: {
        offline_webhook: { url: rx.url, ...FAST },
        push: { include_sender: true, include_body: true },
        push_service: {
          ca_file: tls.caFile, privacy: 'sender_and_body', ...FAST,
          apns: { key_file: apnsKey(dir).file, key_id: 'KEY1234567', team_id: 'TEAM123456', host: apns.origin },
        },
      },
    });
    for (const u of ['owner', 'present', 'online', 'offline', 'muted', 'stranger', 'sentinel']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
    await rx.stop();
    await apns.close();
  });

  const login = async (user: string, resource = 'r'): Promise<MucClient> => {
    const c = await MucClient.login(t.port, user, resource);
    open.push(c);
    return c;
  };
  const hooksFor = (user: string): Hook[] => rx.requests.filter((r) => r.body.to === `${user}@localhost`);
  const pushesFor = (i: number): Recorded[] => apns.requests.filter((r) => r.path === `/3/device/${token(i)}`);
  /** Room messages only: an invitation stored offline for a new member is pushed as any offline message is. */
  const roomPushesFor = (i: number): Recorded[] => pushesFor(i).filter((r) => /^message \d$/.test((JSON.parse(r.body) as { xmpp: { body?: string } }).xmpp.body ?? ''));
  let owner: MucClient;
  const drained = async (): Promise<boolean> => {
    for (const kind of ['offline_webhook:localhost', 'push_service:localhost:apns']) {
      if ((await t.server.storage.outbox.counts(kind)).pending > 0) return false;
    }
    return true;
  };
  /**
   * A later notification through the same path (a message for `sentinel`, away from its own room): once it has gone
   * out through both the webhook and APNs, and nothing is left queued, anything the earlier messages caused has too.
   */
  let sentinels = 0;
  async function settle(owner: MucClient, sentinelRoom: string): Promise<void> {
    sentinels++;
    const id = `sentinel-${sentinels}`;
    owner.send(`<message to='${sentinelRoom}' type='groupchat' id='${id}'><body>${id}</body></message>`);
    await until(`the ${id} notifications`, () =>
      hooksFor('sentinel').some((h) => h.body.id === id) && pushesFor(9).some((r) => (JSON.parse(r.body) as { xmpp: { body: string } }).xmpp.body === id));
    await until('empty outboxes', drained);
  }

  it('notifies each away member once per message, through the webhook and APNs, and no member who is in the room', async () => {
    owner = await login('owner');
    const present = await login('present');
    const online = await login('online');
    const muted = await login('muted');
    const stranger = await login('stranger');
    const offline = await login('offline');
    const sentinel = await login('sentinel');
    await enablePush(online, token(1));
    await enablePush(offline, token(2));
    await enablePush(muted, token(3));
    await enablePush(present, token(4));
    await enablePush(sentinel, token(9));
    offline.close();
    sentinel.close();

    const room = `club@${SERVICE}`;
    const sentinelRoom = `watch@${SERVICE}`;
    await createRoom(owner, room, 'boss', { 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_persistentroom': '1' });
    await createRoom(owner, sentinelRoom, 'boss', { 'muc#roomconfig_membersonly': '1' });
    await owner.iq(sentinelRoom, 'set', `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='sentinel@localhost'/></query>`);
    await owner.iq(room, 'set', `<query xmlns='${MUC_ADMIN}'>${['present', 'online', 'offline', 'muted'].map((u) => `<item affiliation='member' jid='${u}@localhost'/>`).join('')}</query>`);
    await present.join(room, 'here');
    // A member turns notifications off for this room (its own setting); a non-member has none to set.
    assert.equal((await muted.iq(room, 'set', "<push xmlns='urn:parley:muc:push:0' enabled='false'/>")).attrs.type, 'result');
    const setting = await muted.iq(room, 'get', "<push xmlns='urn:parley:muc:push:0'/>");
    assert.equal(setting.getChild('push')?.attrs.enabled, 'false');
    assert.equal(errorCondition(await stranger.iq(room, 'get', "<push xmlns='urn:parley:muc:push:0'/>")), 'forbidden');
    await settle(owner, sentinelRoom);
    const before = rx.requests.length;
    const beforePush = roomPushesFor(1).length + roomPushesFor(2).length + roomPushesFor(3).length + roomPushesFor(4).length;

    for (let i = 1; i <= 3; i++) {
      owner.send(`<message to='${room}' type='groupchat' id='m${i}'><body>message ${i}</body></message>`);
      await owner.next((s) => s.attrs.id === `m${i}`);
    }
    await settle(owner, sentinelRoom);

    for (const user of ['online', 'offline']) {
      const hooks = hooksFor(user).filter((h) => String(h.body.id).startsWith('m'));
      assert.deepEqual(hooks.map((h) => h.body.id), ['m1', 'm2', 'm3'], user);
      for (const [i, h] of hooks.entries()) {
        assert.equal(h.event, 'groupchat-message');
        assert.deepEqual({ ...h.body, time: undefined }, {
          from: `${room}/boss`, to: `${user}@localhost`, body: `message ${i + 1}`, id: `m${i + 1}`, type: 'groupchat',
          time: undefined, offline_count: i + 1, room,
        });
      }
    }
    for (const [i, user] of [[1, 'online'], [2, 'offline']] as const) {
      const bodies = roomPushesFor(i).map((r) => JSON.parse(r.body) as { aps: { badge: number }; xmpp: { body: string; sender: string } });
      assert.equal(bodies.length, 3, user);
      assert.deepEqual(bodies.map((b) => b.xmpp.body), ['message 1', 'message 2', 'message 3']);
      assert.deepEqual(bodies.map((b) => b.aps.badge), [1, 2, 3]);
      assert.equal(bodies[0]?.xmpp.sender, room);
    }
    // Nothing for the member in the room, the muted member, the sender or anyone else.
    for (const user of ['present', 'muted', 'owner', 'stranger']) assert.equal(hooksFor(user).length, 0, user);
    assert.equal(pushesFor(3).length + pushesFor(4).length, 0);
    assert.equal(rx.requests.length - before, 6 + 1);
    assert.equal(roomPushesFor(1).length + roomPushesFor(2).length - beforePush, 6);

    // Coming back resets the count; leaving again brings notifications back.
    await online.join(room, 'back');
    await online.leave(`${room}/back`);
    owner.send(`<message to='${room}' type='groupchat' id='m4'><body>message 4</body></message>`);
    await owner.next((s) => s.attrs.id === 'm4');
    await settle(owner, sentinelRoom);
    assert.deepEqual(hooksFor('online').filter((h) => h.body.id === 'm4').map((h) => h.body.offline_count), [1]);

    // The owner turns them off for the room: nobody is notified.
    await owner.iq(room, 'set', configForm({ 'x-parley#roomconfig_pushaway': '0' }));
    const count = rx.requests.length;
    const countPush = apns.requests.length;
    owner.send(`<message to='${room}' type='groupchat' id='m5'><body>message 5</body></message>`);
    await owner.next((s) => s.attrs.id === 'm5');
    await settle(owner, sentinelRoom);
    // Only the sentinel's.
    assert.equal(rx.requests.length, count + 1);
    assert.equal(apns.requests.length, countPush + 1);
  });

  it('does not notify members of open rooms', async () => {
    const room = `lobby@${SERVICE}`;
    await createRoom(owner, room, 'boss');
    await owner.iq(room, 'set', `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='offline@localhost'/></query>`);
    const before = hooksFor('offline').length;
    owner.send(`<message to='${room}' type='groupchat' id='o1'><body>open room</body></message>`);
    await owner.next((s) => s.attrs.id === 'o1');
    await settle(owner, `watch@${SERVICE}`);
    assert.equal(hooksFor('offline').length, before);
  });
});

describe('muc: notification rate limit', () => {
  let t: TestServer;
  let rx: Receiver;
  const open: MucClient[] = [];
  before(async () => {
    rx = await new Receiver().start();
    t = await startServer({ modules: { offline_webhook: { url: rx.url, ...FAST }, muc: { push_away: { max: 2, window: 3600 } } } });
    for (const u of ['owner', 'away']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
    await rx.stop();
  });

  it('sends at most `max` notifications per room and member within the window', async () => {
    const owner = await MucClient.login(t.port, 'owner');
    open.push(owner);
    const room = `busy@${SERVICE}`;
    await createRoom(owner, room, 'boss', { 'muc#roomconfig_membersonly': '1' });
    await owner.iq(room, 'set', `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='away@localhost'/></query>`);
    for (let i = 1; i <= 4; i++) {
      owner.send(`<message to='${room}' type='groupchat' id='r${i}'><body>burst ${i}</body></message>`);
      await owner.next((s) => s.attrs.id === `r${i}`);
    }
    // The webhook jobs are queued while the room handles each message: once it answers a ping, all are queued.
    await owner.sync(room);
    await until('the webhook queue to drain', async () => (await t.server.storage.outbox.counts('offline_webhook:localhost')).pending === 0);
    assert.deepEqual(rx.requests.map((r) => r.body.id), ['r1', 'r2']);
  });
});
