// The storage contract: every backend must pass the same tests.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { deriveScramCredentials } from '../../src/c2s/sasl/credentials.ts';
import { StorageError } from '../../src/core/errors.ts';
import type { ArchiveFilter, ArchivePage, ArchivePrefs, RosterItem, Storage } from '../../src/storage/types.ts';

const creds = () => [deriveScramCredentials('secret', 'SHA-256', 4096)];
const item = (jid: string, extra: Partial<RosterItem> = {}): RosterItem => ({ jid, subscription: 'none', ask: false, approved: false, groups: [], ...extra });

export function storageContract(name: string, open: () => Storage): void {
  describe(`storage contract: ${name}`, () => {
    let s: Storage;
    beforeEach(() => { s = open(); });
    afterEach(() => s.close());

    it('creates, reads and lists accounts per host', async () => {
      await s.accounts.create('a.test', 'alice', creds());
      await s.accounts.create('b.test', 'alice', creds());
      assert.equal(await s.accounts.exists('a.test', 'alice'), true);
      assert.equal(await s.accounts.exists('a.test', 'bob'), false);
      const rec = await s.accounts.get('a.test', 'alice');
      assert.equal(rec?.scram[0]?.hash, 'SHA-256');
      assert.equal(rec?.scram[0]?.iterations, 4096);
      assert.ok(Buffer.isBuffer(rec?.scram[0]?.storedKey));
      assert.deepEqual(await s.accounts.list('a.test'), ['alice']);
      assert.equal(await s.accounts.count('b.test'), 1);
    });

    it('refuses a duplicate account with CONFLICT', async () => {
      await s.accounts.create('a.test', 'alice', creds());
      await assert.rejects(s.accounts.create('a.test', 'alice', creds()), (e: unknown) => e instanceof StorageError && e.code === 'CONFLICT');
    });

    it('changes credentials and reports NOT_FOUND for missing accounts', async () => {
      await s.accounts.create('a.test', 'alice', creds());
      const next = [deriveScramCredentials('other', 'SHA-1', 4096)];
      await s.accounts.setCredentials('a.test', 'alice', next);
      assert.equal((await s.accounts.get('a.test', 'alice'))?.scram[0]?.hash, 'SHA-1');
      await assert.rejects(s.accounts.setCredentials('a.test', 'nobody', next), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');
      await assert.rejects(s.accounts.remove('a.test', 'nobody'), (e: unknown) => e instanceof StorageError && e.code === 'NOT_FOUND');
    });

    it('versions roster changes and keeps items per user', async () => {
      const v0 = (await s.roster.get('a.test', 'alice')).version;
      const v1 = await s.roster.put('a.test', 'alice', item('bob@a.test', { name: 'Bob', groups: ['Friends', 'Work'], ask: true }));
      assert.ok(v1 > v0);
      const v2 = await s.roster.put('a.test', 'alice', item('bob@a.test', { subscription: 'to', groups: ['Friends'] }));
      assert.ok(v2 > v1);
      const r = await s.roster.get('a.test', 'alice');
      assert.equal(r.version, v2);
      assert.deepEqual(r.items, [item('bob@a.test', { subscription: 'to', groups: ['Friends'], name: undefined })]);
      assert.deepEqual((await s.roster.get('a.test', 'bob')).items, []);
      const v3 = await s.roster.delete('a.test', 'alice', 'bob@a.test');
      assert.ok(v3 > v2);
      assert.equal(await s.roster.getItem('a.test', 'alice', 'bob@a.test'), undefined);
    });

    it('keeps pending subscription requests until cleared', async () => {
      await s.roster.setPendingRequest('a.test', 'alice', 'bob@a.test', '<presence type="subscribe"/>');
      await s.roster.setPendingRequest('a.test', 'alice', 'bob@a.test', '<presence type="subscribe"><status>hi</status></presence>');
      assert.deepEqual(await s.roster.pendingRequests('a.test', 'alice'), [{ from: 'bob@a.test', stanza: '<presence type="subscribe"><status>hi</status></presence>' }]);
      await s.roster.setPendingRequest('a.test', 'alice', 'bob@a.test', null);
      assert.deepEqual(await s.roster.pendingRequests('a.test', 'alice'), []);
    });

    it('stores offline messages in order, within the quota, and removes them by id', async () => {
      const first = await s.offline.store('a.test', 'bob', 'alice@a.test/x', '<message id="1"/>', 2);
      assert.equal(first?.count, 1);
      const second = await s.offline.store('a.test', 'bob', 'carol@a.test/y', '<message id="2"/>', 2);
      assert.equal(second?.count, 2);
      assert.ok((second?.id ?? 0) > (first?.id ?? 0));
      assert.equal(await s.offline.store('a.test', 'bob', 'alice@a.test/x', '<message id="3"/>', 2), undefined);
      assert.equal(await s.offline.count('a.test', 'bob'), 2);
      assert.equal(await s.offline.count('b.test', 'bob'), 0);
      const list = await s.offline.list('a.test', 'bob');
      assert.deepEqual(list.map((m) => [m.from, m.stanza]), [['alice@a.test/x', '<message id="1"/>'], ['carol@a.test/y', '<message id="2"/>']]);
      assert.ok((list[0]?.id ?? 0) < (list[1]?.id ?? 0));
      await s.offline.remove('a.test', 'bob', [list[0]?.id ?? -1]);
      assert.deepEqual((await s.offline.list('a.test', 'bob')).map((m) => m.stanza), ['<message id="2"/>']);
      // Ids of another user are never removed through this one.
      await s.offline.remove('a.test', 'carol', [list[1]?.id ?? -1]);
      assert.equal(await s.offline.count('a.test', 'bob'), 1);
      assert.equal(await s.offline.removeAll('a.test', 'bob'), 1);
    });

    it('counts the offline messages of a whole host, held ones left out, and answers a ping', async () => {
      assert.equal(await s.offline.total('total.test'), 0);
      await s.offline.store('total.test', 'bob', 'alice@a.test/x', '<message id="1"/>', 10);
      await s.offline.store('total.test', 'carol', 'alice@a.test/x', '<message id="2"/>', 10);
      await s.offline.store('other.test', 'bob', 'alice@a.test/x', '<message id="3"/>', 10);
      s.offline.hold('total.test', 'dave', 'alice@a.test/x', '<message id="4"/>');
      await s.barrier();
      assert.equal(await s.offline.total('total.test'), 2);
      await s.ping();
    });

    it('keeps outbox jobs until delivered, retries when due, and dead-letters', async () => {
      const a = await s.outbox.add('a.test', 'webhook', '{"n":1}', 1000);
      const b = await s.outbox.add('a.test', 'webhook', '{"n":2}', 5000);
      await s.outbox.add('a.test', 'push', '{"n":3}', 1000);
      assert.deepEqual((await s.outbox.due('webhook', 2000, 10)).map((j) => j.id), [a]);
      await s.outbox.markFailed(a, 'HTTP 500', 6000, false);
      assert.deepEqual((await s.outbox.due('webhook', 5500, 10)).map((j) => j.id), [b]);
      const both = await s.outbox.due('webhook', 7000, 10);
      assert.deepEqual(both.map((j) => j.id), [b, a]);
      assert.equal(both[1]?.attempts, 1);
      assert.equal(both[1]?.lastError, 'HTTP 500');
      await s.outbox.markDelivered(b);
      await s.outbox.markFailed(a, 'HTTP 500', 8000, true);
      assert.deepEqual(await s.outbox.counts('webhook'), { pending: 0, delivered: 1, dead: 1 });
      assert.deepEqual(await s.outbox.counts(), { pending: 1, delivered: 1, dead: 1 });
      assert.deepEqual((await s.outbox.list({ kind: 'webhook', state: 'dead', limit: 10 })).map((j) => j.id), [a]);
      assert.equal(await s.outbox.retryDead('webhook'), 1);
      assert.deepEqual((await s.outbox.due('webhook', Date.now() + 1, 10)).map((j) => j.id), [a]);
      assert.equal(await s.outbox.purgeDelivered(Date.now() + 1), 1);
    });

    it('keeps push registrations per account and removes them by node', async () => {
      await s.push.enable('a.test', 'alice', { service: 'push.a.test', node: 'tok1', options: '<x/>' });
      await s.push.enable('a.test', 'alice', { service: 'push.a.test', node: 'tok1', options: '<y/>' });
      await s.push.enable('a.test', 'alice', { service: 'push.a.test', node: 'tok2', options: null });
      await s.push.enable('a.test', 'bob', { service: 'push.a.test', node: 'tok1', options: null });
      const list = await s.push.list('a.test', 'alice');
      assert.deepEqual(list.map((r) => [r.node, r.options]).sort(), [['tok1', '<y/>'], ['tok2', null]]);
      assert.equal(await s.push.disable('a.test', 'alice', 'push.a.test', 'tok2'), 1);
      assert.equal(await s.push.removeNode('push.a.test', 'tok1'), 2);
      assert.deepEqual(await s.push.list('a.test', 'bob'), []);
      await s.push.enable('a.test', 'alice', { service: 'app.example', node: 'n', options: null });
      assert.equal(await s.push.disable('a.test', 'alice', 'app.example'), 1);
    });

    it('keeps key-value entries per account and namespace', async () => {
      await s.kv.set('a.test', 'alice', 'vcard', 'current', '<vCard/>');
      await s.kv.set('a.test', 'alice', 'private', 'storage:bookmarks', '<storage/>');
      await s.kv.set('a.test', 'alice', 'private', 'a:first', '<a/>');
      assert.equal(await s.kv.get('a.test', 'alice', 'vcard', 'current'), '<vCard/>');
      assert.equal(await s.kv.get('a.test', 'bob', 'vcard', 'current'), undefined);
      assert.deepEqual(await s.kv.entries('a.test', 'alice', 'private'), [['a:first', '<a/>'], ['storage:bookmarks', '<storage/>']]);
      await s.kv.set('a.test', 'alice', 'vcard', 'current', undefined);
      assert.equal(await s.kv.get('a.test', 'alice', 'vcard', 'current'), undefined);
    });

    it('keeps PEP nodes and items newest first within max_items', async () => {
      await s.pep.putNode('a.test', 'alice', 'urn:xmpp:avatar:metadata', '{"max_items":2}');
      assert.equal((await s.pep.getNode('a.test', 'alice', 'urn:xmpp:avatar:metadata'))?.config, '{"max_items":2}');
      const pub = (id: string) => s.pep.publish('a.test', 'alice', 'urn:xmpp:avatar:metadata', { id, payload: `<m id="${id}"/>`, publisher: 'alice@a.test/x' }, 2);
      assert.deepEqual(await pub('1'), []);
      assert.deepEqual(await pub('2'), []);
      assert.deepEqual(await pub('3'), ['1']);
      assert.deepEqual(await pub('2'), []);
      assert.deepEqual((await s.pep.items('a.test', 'alice', 'urn:xmpp:avatar:metadata')).map((i) => i.id), ['2', '3']);
      assert.deepEqual((await s.pep.items('a.test', 'alice', 'urn:xmpp:avatar:metadata', { max: 1 })).map((i) => i.payload), ['<m id="2"/>']);
      assert.deepEqual((await s.pep.items('a.test', 'alice', 'urn:xmpp:avatar:metadata', { ids: ['3', 'nope'] })).map((i) => i.id), ['3']);
      assert.equal(await s.pep.retract('a.test', 'alice', 'urn:xmpp:avatar:metadata', '3'), true);
      assert.equal(await s.pep.retract('a.test', 'alice', 'urn:xmpp:avatar:metadata', '3'), false);
      assert.deepEqual((await s.pep.listNodes('a.test', 'alice')).map((n) => n.node), ['urn:xmpp:avatar:metadata']);
      assert.equal(await s.pep.purge('a.test', 'alice', 'urn:xmpp:avatar:metadata'), 1);
      assert.equal(await s.pep.deleteNode('a.test', 'alice', 'urn:xmpp:avatar:metadata'), true);
      assert.equal(await s.pep.getNode('a.test', 'alice', 'urn:xmpp:avatar:metadata'), undefined);
    });

    // ------------------------------------------------------------------ message archive (XEP-0313)

    /** Appends `n` messages to alice's archive, alternating bob (out) and carol/phone (in); bodies m1..mn. */
    async function fillArchive(n: number, host = 'a.test', user = 'alice'): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 1; i <= n; i++) {
        const out = i % 2 === 1;
        const r = await s.archive.append(host, user, {
          with: out ? 'bob@a.test' : 'carol@a.test/phone',
          direction: out ? 'out' : 'in',
          stanza: `<message id="m${i}"><body>m${i}</body></message>`,
          text: `m${i} ${i % 3 === 0 ? 'banana split' : 'apple'}`,
        });
        ids.push(r.id);
      }
      return ids;
    }
    const bodies = (p: ArchivePage): string[] => p.messages.map((m) => /<body>([^<]*)</.exec(m.stanza)?.[1] ?? '?');
    const range = (a: number, b: number): string[] => Array.from({ length: b - a + 1 }, (_, i) => `m${a + i}`);
    const notFound = (e: unknown): boolean => e instanceof StorageError && e.code === 'NOT_FOUND';

    it('archives messages with opaque unique ids and pages forwards and backwards', async () => {
      const ids = await fillArchive(25);
      assert.equal(new Set(ids).size, 25);
      for (const id of ids) assert.match(id, /^[\w-]+$/);
      const first = await s.archive.query('a.test', 'alice', {}, { max: 10 });
      assert.deepEqual(bodies(first), range(1, 10));
      assert.deepEqual(first.messages.map((m) => m.id), ids.slice(0, 10));
      assert.equal(first.count, 25);
      assert.equal(first.firstIndex, 0);
      assert.equal(first.complete, false);
      assert.deepEqual(first.messages.slice(0, 2).map((m) => [m.with, m.direction]), [['bob@a.test', 'out'], ['carol@a.test/phone', 'in']]);
      const second = await s.archive.query('a.test', 'alice', {}, { max: 10, after: ids[9] });
      assert.deepEqual(bodies(second), range(11, 20));
      assert.equal(second.firstIndex, 10);
      const third = await s.archive.query('a.test', 'alice', {}, { max: 10, after: ids[19] });
      assert.deepEqual(bodies(third), range(21, 25));
      assert.equal(third.complete, true);
      // Backwards: the last page first, each page still oldest first.
      const last = await s.archive.query('a.test', 'alice', {}, { max: 10, before: '' });
      assert.deepEqual(bodies(last), range(16, 25));
      assert.equal(last.firstIndex, 15);
      assert.equal(last.complete, false);
      const earlier = await s.archive.query('a.test', 'alice', {}, { max: 10, before: ids[15] });
      assert.deepEqual(bodies(earlier), range(6, 15));
      assert.equal(earlier.firstIndex, 5);
      const oldest = await s.archive.query('a.test', 'alice', {}, { max: 10, before: ids[5] });
      assert.deepEqual(bodies(oldest), range(1, 5));
      assert.equal(oldest.complete, true);
      assert.deepEqual(bodies(await s.archive.query('a.test', 'alice', {}, { max: 3, index: 20 })), range(21, 23));
      const none = await s.archive.query('a.test', 'alice', {}, { max: 0 });
      assert.deepEqual([none.messages.length, none.count, none.complete], [0, 25, false]);
      const all = (await s.archive.query('a.test', 'alice', {}, { max: 100 })).messages.map((m) => m.at);
      assert.deepEqual(all, [...all].sort((x, y) => x - y), 'times never decrease along the archive');
      const empty = await s.archive.query('a.test', 'nobody', {}, { max: 10, before: '' });
      assert.deepEqual([empty.messages.length, empty.count, empty.complete], [0, 0, true]);
    });

    it('filters the archive by peer, time, ids and text', async () => {
      const early = await fillArchive(4);
      // A later millisecond, so the time filter has a boundary to find.
      const edge = Date.now() + 1;
      while (Date.now() < edge) { /* spin */ }
      const later = await s.archive.append('a.test', 'alice', { with: 'bob@a.test/laptop', direction: 'out', stanza: '<message><body>m5</body></message>' });
      assert.ok(later.at >= edge);
      const q = (f: ArchiveFilter) => s.archive.query('a.test', 'alice', f, { max: 50 });
      assert.deepEqual(bodies(await q({ with: 'bob@a.test' })), ['m1', 'm3', 'm5']);
      assert.equal((await q({ with: 'bob@a.test' })).count, 3);
      assert.deepEqual(bodies(await q({ with: 'bob@a.test/laptop' })), ['m5']);
      assert.deepEqual(bodies(await q({ with: 'carol@a.test/phone' })), ['m2', 'm4']);
      assert.deepEqual(bodies(await q({ with: 'carol@a.test/tablet' })), []);
      assert.deepEqual(bodies(await q({ start: later.at })), ['m5']);
      assert.deepEqual(bodies(await q({ end: later.at - 1 })), range(1, 4));
      assert.deepEqual(bodies(await q({ start: later.at, end: later.at })), ['m5']);
      assert.deepEqual(bodies(await q({ ids: [later.id, early[1] as string] })), ['m2', 'm5']);
      assert.deepEqual(bodies(await q({ afterId: early[0], beforeId: early[3] })), ['m2', 'm3']);
      assert.deepEqual(bodies(await q({ afterId: early[1], with: 'bob@a.test' })), ['m3', 'm5']);
      await assert.rejects(q({ ids: [later.id, 'nope'] }), notFound);
      await assert.rejects(q({ afterId: 'AAAAAAAAAAAAAAAAAAAAAA' }), notFound);
      await assert.rejects(s.archive.query('a.test', 'alice', {}, { max: 5, after: 'x' }), notFound);
      // Another archive's ids are unknown here.
      const bobs = await fillArchive(1, 'a.test', 'bob');
      await assert.rejects(s.archive.query('a.test', 'alice', {}, { max: 5, before: bobs[0] }), notFound);
      if (s.archive.fullText) {
        assert.deepEqual(bodies(await q({ text: 'banana' })), ['m3']);
        assert.deepEqual(bodies(await q({ text: 'BANANA split' })), ['m3']);
        assert.deepEqual(bodies(await q({ text: 'apple', with: 'carol@a.test' })), ['m2', 'm4']);
        assert.deepEqual(bodies(await q({ text: 'banana") OR apple' })), []);
        const page = await s.archive.query('a.test', 'alice', { text: 'apple' }, { max: 1, before: '' });
        assert.deepEqual([bodies(page), page.count, page.complete], [['m4'], 3, false]);
      }
    });

    it('keeps archive preferences, and removes archives per account and by age', async () => {
      assert.equal(await s.archive.getPrefs('a.test', 'alice'), undefined);
      const prefs: ArchivePrefs = { default: 'roster', always: ['bob@a.test'], never: ['eve@a.test', 'carol@a.test/phone'] };
      await s.archive.setPrefs('a.test', 'alice', prefs);
      assert.deepEqual(await s.archive.getPrefs('a.test', 'alice'), prefs);
      await s.archive.setPrefs('a.test', 'alice', { default: 'never', always: [], never: [] });
      assert.equal((await s.archive.getPrefs('a.test', 'alice'))?.default, 'never');
      const ids = await fillArchive(5);
      await fillArchive(2, 'a.test', 'bob');
      const b = await s.archive.bounds('a.test', 'alice');
      assert.deepEqual([b?.first.id, b?.last.id], [ids[0], ids[4]]);
      assert.equal(await s.archive.bounds('a.test', 'nobody'), undefined);
      // Purging removes the oldest first, a bounded step at a time, for one host only.
      await fillArchive(1, 'b.test', 'alice');
      assert.equal(await s.archive.purge('a.test', Date.now() + 1, 3), 3);
      assert.equal(await s.archive.purge('a.test', Date.now() + 1, 100), 4);
      assert.equal((await s.archive.query('a.test', 'alice', {}, { max: 10 })).count, 0);
      assert.equal((await s.archive.query('b.test', 'alice', {}, { max: 10 })).count, 1);
      await assert.rejects(s.archive.query('a.test', 'alice', {}, { max: 5, after: ids[4] }), notFound);
      const again = await fillArchive(3);
      assert.ok(again.every((id) => !ids.includes(id)), 'ids are never reused');
      assert.equal(await s.archive.removeAll('a.test', 'alice'), 3);
      assert.equal(await s.archive.getPrefs('a.test', 'alice'), undefined);
      assert.equal((await s.archive.query('a.test', 'alice', {}, { max: 10, before: '' })).count, 0);
    });

    it('removing an account removes its archive', async () => {
      await s.accounts.create('a.test', 'alice', creds());
      await fillArchive(3);
      await s.archive.setPrefs('a.test', 'alice', { default: 'always', always: [], never: ['eve@a.test'] });
      await s.accounts.remove('a.test', 'alice');
      const page = await s.archive.query('a.test', 'alice', {}, { max: 10 });
      assert.deepEqual([page.messages.length, page.count], [0, 0]);
      assert.equal(await s.archive.getPrefs('a.test', 'alice'), undefined);
    });

    it('removing an account removes its roster and requests', async () => {
      await s.accounts.create('a.test', 'alice', creds());
      await s.roster.put('a.test', 'alice', item('bob@a.test'));
      await s.roster.setPendingRequest('a.test', 'alice', 'carol@a.test', '<presence/>');
      await s.offline.store('a.test', 'alice', 'bob@a.test', '<message/>', 10);
      await s.accounts.remove('a.test', 'alice');
      assert.equal(await s.offline.count('a.test', 'alice'), 0);
      assert.deepEqual((await s.roster.get('a.test', 'alice')).items, []);
      assert.deepEqual(await s.roster.pendingRequests('a.test', 'alice'), []);
      assert.equal(await s.accounts.exists('a.test', 'alice'), false);
    });
  });
}
