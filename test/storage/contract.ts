// The storage contract: every backend must pass the same tests.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { deriveScramCredentials } from '../../src/c2s/sasl/credentials.ts';
import { StorageError } from '../../src/core/errors.ts';
import type { RosterItem, Storage } from '../../src/storage/types.ts';

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
