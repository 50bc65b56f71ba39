// The UploadStore contract (XEP-0363 slots), run against each backend: reservation within a quota, the
// uploaded mark, what the sweeper finds, and per-host, per-account separation.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import type { Storage, UploadSlot } from '../../src/storage/types.ts';

let n = 0;
const slot = (over: Partial<UploadSlot> = {}): UploadSlot => ({
  host: 'a.test', id: `slot${String(++n).padStart(20, '0')}`, username: 'alice', filename: 'f.txt', size: 100,
  contentType: 'text/plain', createdAt: 1000, expiresAt: 2000, uploadedAt: null, ...over,
});

export function uploadStoreContract(name: string, open: () => Storage): void {
  describe(`upload store contract: ${name}`, () => {
    let s: Storage;
    beforeEach(() => { s = open(); });
    afterEach(() => s.close());

    it('stores a slot and reads it back, content type null included', async () => {
      const a = slot({ filename: 'ünï code.bin', contentType: null });
      assert.equal(await s.upload.reserve(a, 0, 0), undefined);
      assert.deepEqual(await s.upload.get('a.test', a.id), a);
      assert.equal(await s.upload.get('b.test', a.id), undefined, 'slots are per host');
    });

    it('marks a slot uploaded once', async () => {
      const a = slot();
      await s.upload.reserve(a, 0, 0);
      assert.equal(await s.upload.markUploaded('a.test', a.id, 1500), true);
      assert.equal(await s.upload.markUploaded('a.test', a.id, 1600), false);
      assert.equal((await s.upload.get('a.test', a.id))?.uploadedAt, 1500);
      assert.equal(await s.upload.markUploaded('a.test', 'nope', 1600), false);
    });

    it('counts uploaded files since a time and pending slots not yet expired against the quota', async () => {
      const old = slot({ size: 300, createdAt: 10, expiresAt: 20 });
      await s.upload.reserve(old, 1000, 0);
      await s.upload.markUploaded('a.test', old.id, 15);
      const recent = slot({ size: 300, createdAt: 500, expiresAt: 600 });
      await s.upload.reserve(recent, 1000, 0);
      await s.upload.markUploaded('a.test', recent.id, 550);
      const pending = slot({ size: 300, createdAt: 1000, expiresAt: 1300 });
      assert.equal(await s.upload.reserve(pending, 1000, 0), undefined);
      await s.upload.reserve(slot({ size: 300, createdAt: 1000, expiresAt: 1100, username: 'bob' }), 1000, 0);

      // 900 in use: 300 more is too much, 100 fits.
      const refused = await s.upload.reserve(slot({ size: 101, createdAt: 1050, expiresAt: 1400 }), 1000, 0);
      assert.deepEqual(refused, { used: 900, oldestUpload: 15, firstPendingExpiry: 1300 });
      // Files uploaded before `since` no longer count; pending slots past their expiry neither.
      assert.equal(await s.upload.reserve(slot({ size: 400, createdAt: 1050, expiresAt: 1400 }), 1000, 100), undefined);
      const later = await s.upload.reserve(slot({ size: 1000, createdAt: 1350, expiresAt: 1400 }), 1000, 100);
      assert.deepEqual(later, { used: 700, oldestUpload: 550, firstPendingExpiry: 1400 });
      assert.equal(await s.upload.reserve(slot({ size: 5000, createdAt: 1350 }), 0, 0), undefined, 'quota 0 is unlimited');
    });

    it('finds expired uploads and unused slots for the sweeper, and removes them', async () => {
      const done = slot({ createdAt: 10, expiresAt: 20 });
      await s.upload.reserve(done, 0, 0);
      await s.upload.markUploaded('a.test', done.id, 15);
      const fresh = slot({ createdAt: 900, expiresAt: 1000 });
      await s.upload.reserve(fresh, 0, 0);
      await s.upload.markUploaded('a.test', fresh.id, 950);
      const unused = slot({ createdAt: 100, expiresAt: 200 });
      await s.upload.reserve(unused, 0, 0);
      const live = slot({ createdAt: 900, expiresAt: 5000 });
      await s.upload.reserve(live, 0, 0);
      await s.upload.reserve(slot({ host: 'b.test', createdAt: 1, expiresAt: 2 }), 0, 0);

      const ids = async (o: { uploadedBefore?: number; pendingBefore: number; limit: number }): Promise<string[]> =>
        (await s.upload.expired('a.test', o)).map((x) => x.id).sort();
      assert.deepEqual(await ids({ uploadedBefore: 500, pendingBefore: 1000, limit: 10 }), [done.id, unused.id].sort());
      assert.deepEqual(await ids({ pendingBefore: 1000, limit: 10 }), [unused.id], 'no uploadedBefore: files are kept');
      assert.equal((await s.upload.expired('a.test', { uploadedBefore: 5000, pendingBefore: 6000, limit: 2 })).length, 2);

      assert.equal(await s.upload.remove('a.test', [done.id, unused.id, 'missing']), 2);
      assert.deepEqual(await ids({ uploadedBefore: 500, pendingBefore: 1000, limit: 10 }), []);
      assert.ok(await s.upload.get('a.test', live.id));
    });

    it('lists an account\'s slots', async () => {
      const a = slot({ username: 'carol' });
      const b = slot({ username: 'carol' });
      await s.upload.reserve(a, 0, 0);
      await s.upload.reserve(b, 0, 0);
      await s.upload.reserve(slot({ username: 'dave' }), 0, 0);
      await s.upload.reserve(slot({ username: 'carol', host: 'b.test' }), 0, 0);
      assert.deepEqual((await s.upload.listByOwner('a.test', 'carol')).map((x) => x.id).sort(), [a.id, b.id].sort());
    });
  });
}

uploadStoreContract('sqlite (memory)', () => new SqliteStorage(':memory:'));
