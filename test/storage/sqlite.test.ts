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
      assert.deepEqual(rows.map((r) => r.version), SQLITE_MIGRATIONS.map((m) => m.version));
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
});
