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
  it('moves an archive kept by (host, username, peer) text to numbered JIDs, and keeps serving it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    try {
      const path = join(dir, 'parley.db');
      // A database as the release before the numbered layout left it: migrations up to 11, three archived messages.
      const old = new DatabaseSync(path);
      old.exec('PRAGMA journal_mode = WAL');
      old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      for (const m of [...SQLITE_MIGRATIONS].filter((x) => x.version < 12).sort((x, y) => x.version - y.version)) {
        old.exec(m.sql);
        old.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
      }
      const t = Date.UTC(2026, 0, 2, 3, 4, 5) * 1000;
      const add = old.prepare('INSERT INTO archive (seq, host, username, peer, peer_resource, outgoing, stanza) VALUES (?, ?, ?, ?, ?, ?, ?)');
      add.run(t + 1, 'localhost', 'alice', 'bob@localhost', 'phone', 1, '<message>one</message>');
      add.run(t + 2, 'localhost', 'bob', 'alice@localhost', 'laptop', 0, '<message>one</message>');
      add.run(t + 3, 'localhost', 'alice', 'carol@example.org', '', 0, '<message>two</message>');
      old.prepare('INSERT INTO archive_text (rowid, body) VALUES (?, ?)').run(t + 3, 'greetings from carol');
      const count = old.prepare('INSERT INTO archive_counts (host, username, peer, n) VALUES (?, ?, ?, ?)');
      count.run('localhost', 'alice', 'bob@localhost', 1);
      count.run('localhost', 'bob', 'alice@localhost', 1);
      count.run('localhost', 'alice', 'carol@example.org', 1);
      old.close();

      const s = new SqliteStorage(path);
      try {
        const all = await s.archive.query('localhost', 'alice', {}, { max: 10 });
        assert.deepEqual(all.messages.map((m) => [m.with, m.direction, m.stanza, m.at]), [
          ['bob@localhost/phone', 'out', '<message>one</message>', t / 1000],
          ['carol@example.org', 'in', '<message>two</message>', t / 1000],
        ]);
        assert.equal(all.count, 2);
        const withBob = await s.archive.query('localhost', 'alice', { with: 'bob@localhost' }, { max: 10 });
        assert.equal(withBob.count, 1);
        assert.equal(withBob.messages[0]?.id, all.messages[0]?.id);
        const text = await s.archive.query('localhost', 'alice', { text: 'carol' }, { max: 10 });
        assert.deepEqual(text.messages.map((m) => m.stanza), ['<message>two</message>']);
        assert.equal((await s.archive.query('localhost', 'bob', {}, { max: 10 })).messages[0]?.with, 'alice@localhost/laptop');
        // New messages go to the same archives, after the old ones.
        const next = await s.archive.append('localhost', 'alice', { with: 'bob@localhost', direction: 'in', stanza: '<message>three</message>' });
        const after = await s.archive.query('localhost', 'alice', { with: 'bob@localhost' }, { max: 10, after: all.messages[0]?.id });
        assert.deepEqual(after.messages.map((m) => m.id), [next.id]);
        assert.equal((await s.archive.query('localhost', 'alice', {}, { max: 10 })).count, 3);
        assert.equal(await s.archive.removeAll('localhost', 'alice'), 3);
        assert.equal((await s.archive.query('localhost', 'bob', {}, { max: 10 })).count, 1, 'another archive is untouched');
      } finally {
        s.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
