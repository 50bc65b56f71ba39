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

    it('removing an account removes its roster and requests', async () => {
      await s.accounts.create('a.test', 'alice', creds());
      await s.roster.put('a.test', 'alice', item('bob@a.test'));
      await s.roster.setPendingRequest('a.test', 'alice', 'carol@a.test', '<presence/>');
      await s.accounts.remove('a.test', 'alice');
      assert.deepEqual((await s.roster.get('a.test', 'alice')).items, []);
      assert.deepEqual(await s.roster.pendingRequests('a.test', 'alice'), []);
      assert.equal(await s.accounts.exists('a.test', 'alice'), false);
    });
  });
}
