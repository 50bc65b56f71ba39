import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SqliteStorage } from '../../src/storage/sqlite/sqlite-storage.ts';
import { SQLITE_MIGRATIONS } from '../../src/storage/sqlite/migrations.ts';
import { StorageError } from '../../src/core/errors.ts';
import { storageContract } from './contract.ts';

storageContract('sqlite (memory)', () => new SqliteStorage(':memory:'));

describe('sqlite storage', () => {
  it('uses WAL, records migrations, and reopens an existing file without re-running them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    try {
      const path = join(dir, 'sub', 'parley.db');
      const a = new SqliteStorage(path);
      assert.equal((a.db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
      a.close();
      const b = new SqliteStorage(path);
      const rows = b.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>;
      assert.deepEqual(rows.map((r) => r.version), SQLITE_MIGRATIONS.map((m) => m.version).sort((x, y) => x - y));
      b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a database from a newer Parley', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    try {
      const path = join(dir, 'parley.db');
      new SqliteStorage(path).close();
      const db = new DatabaseSync(path);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
      db.close();
      assert.throws(() => new SqliteStorage(path), (e: unknown) => e instanceof StorageError && e.code === 'MIGRATION');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('journals held messages out of sight, drops released ones, and turns the rest into stored messages after a crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    try {
      const path = join(dir, 'parley.db');
      const a = new SqliteStorage(path);
      const stored = await a.offline.store('localhost', 'bob', 'alice@localhost', '<message>stored</message>', 10);
      const kept = a.offline.hold('localhost', 'bob', 'alice@localhost', '<message>kept</message>');
      const acked = a.offline.hold('localhost', 'bob', 'alice@localhost', '<message>acked</message>');
      assert.ok(stored && kept > stored.id && acked > kept, 'ids keep their order');
      assert.equal(await a.offline.count('localhost', 'bob'), 1, 'held rows are not counted');
      a.offline.release([acked]);
      await a.barrier();
      // A second handle, as after a hard kill of the first (which is never closed): held rows became messages.
      const b = new SqliteStorage(path);
      const list = await b.offline.list('localhost', 'bob');
      assert.deepEqual(list.map((m) => m.stanza), ['<message>stored</message>', '<message>kept</message>']);
      const again = b.offline.hold('localhost', 'bob', 'alice@localhost', '<message>later</message>');
      assert.ok(again > kept, 'ids are not reused');
      assert.equal(await b.offline.unhold('localhost', 'bob', [again]), 3);
      b.close();
      a.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
