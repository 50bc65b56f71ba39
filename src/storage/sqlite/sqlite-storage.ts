// The embedded default backend: node:sqlite in WAL mode with cached prepared statements.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ScramCredentials } from '../../c2s/sasl/credentials.ts';
import { StorageError } from '../../core/errors.ts';
import type { AccountRecord, AccountStore, RosterItem, RosterStore, Storage, Subscription } from '../types.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';

type Row = Record<string, unknown>;

export class SqliteStorage implements Storage {
  readonly db: DatabaseSync;
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  private readonly statements = new Map<string, StatementSync>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    try {
      this.db = new DatabaseSync(path);
      this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    } catch (err) {
      throw new StorageError('BACKEND', `cannot open SQLite database ${path}: ${(err as Error).message}`, { cause: err });
    }
    this.migrate();
    this.accounts = new SqliteAccounts(this);
    this.roster = new SqliteRoster(this);
  }

  /** Prepared statements are cached: the same SQL text is compiled once. */
  stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as Row | undefined;
    const current = Number(row?.v ?? 0);
    const latest = SQLITE_MIGRATIONS.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new StorageError('MIGRATION', `database schema version ${current} is newer than this Parley (${latest})`);
    }
    for (const m of SQLITE_MIGRATIONS) {
      if (m.version <= current) continue;
      try {
        this.transaction(() => {
          this.db.exec(m.sql);
          this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        });
      } catch (err) {
        throw new StorageError('MIGRATION', `migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  close(): void {
    this.statements.clear();
    if (this.db.isOpen) this.db.close();
  }
}

function encodeScram(list: ScramCredentials[]): string {
  return JSON.stringify(list.map((c) => ({
    hash: c.hash, salt: c.salt.toString('base64'), iterations: c.iterations,
    storedKey: c.storedKey.toString('base64'), serverKey: c.serverKey.toString('base64'),
  })));
}

function decodeScram(text: string): ScramCredentials[] {
  const raw = JSON.parse(text) as Array<{ hash: ScramCredentials['hash']; salt: string; iterations: number; storedKey: string; serverKey: string }>;
  return raw.map((c) => ({
    hash: c.hash, salt: Buffer.from(c.salt, 'base64'), iterations: c.iterations,
    storedKey: Buffer.from(c.storedKey, 'base64'), serverKey: Buffer.from(c.serverKey, 'base64'),
  }));
}

class SqliteAccounts implements AccountStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async create(host: string, username: string, scram: ScramCredentials[]): Promise<void> {
    const r = this.s.stmt('INSERT OR IGNORE INTO accounts (host, username, scram, created_at) VALUES (?, ?, ?, ?)')
      .run(host, username, encodeScram(scram), Date.now());
    if (r.changes === 0) throw new StorageError('CONFLICT', `account ${username}@${host} already exists`);
  }

  async get(host: string, username: string): Promise<AccountRecord | undefined> {
    const row = this.s.stmt('SELECT scram, created_at FROM accounts WHERE host = ? AND username = ?').get(host, username) as Row | undefined;
    if (!row) return undefined;
    return { host, username, scram: decodeScram(String(row.scram)), createdAt: Number(row.created_at) };
  }

  async exists(host: string, username: string): Promise<boolean> {
    return this.s.stmt('SELECT 1 FROM accounts WHERE host = ? AND username = ?').get(host, username) !== undefined;
  }

  async setCredentials(host: string, username: string, scram: ScramCredentials[]): Promise<void> {
    const r = this.s.stmt('UPDATE accounts SET scram = ? WHERE host = ? AND username = ?').run(encodeScram(scram), host, username);
    if (r.changes === 0) throw new StorageError('NOT_FOUND', `no account ${username}@${host}`);
  }

  async remove(host: string, username: string): Promise<void> {
    this.s.transaction(() => {
      const r = this.s.stmt('DELETE FROM accounts WHERE host = ? AND username = ?').run(host, username);
      if (r.changes === 0) throw new StorageError('NOT_FOUND', `no account ${username}@${host}`);
      for (const table of ['roster_items', 'roster_versions', 'subscription_requests']) {
        this.s.stmt(`DELETE FROM ${table} WHERE host = ? AND username = ?`).run(host, username);
      }
    });
  }

  async list(host: string): Promise<string[]> {
    return (this.s.stmt('SELECT username FROM accounts WHERE host = ? ORDER BY username').all(host) as Row[]).map((r) => String(r.username));
  }

  async count(host: string): Promise<number> {
    return Number((this.s.stmt('SELECT COUNT(*) AS n FROM accounts WHERE host = ?').get(host) as Row).n);
  }
}

function rowToItem(r: Row): RosterItem {
  return {
    jid: String(r.contact),
    name: r.name === null ? undefined : String(r.name),
    subscription: String(r.subscription) as Subscription,
    ask: Number(r.ask) === 1,
    approved: Number(r.approved) === 1,
    groups: JSON.parse(String(r.groups)) as string[],
  };
}

class SqliteRoster implements RosterStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  private version(host: string, username: string): number {
    const row = this.s.stmt('SELECT version FROM roster_versions WHERE host = ? AND username = ?').get(host, username) as Row | undefined;
    return row ? Number(row.version) : 0;
  }

  private bump(host: string, username: string): number {
    const row = this.s.stmt(
      'INSERT INTO roster_versions (host, username, version) VALUES (?, ?, 1) ON CONFLICT (host, username) DO UPDATE SET version = version + 1 RETURNING version',
    ).get(host, username) as Row;
    return Number(row.version);
  }

  async get(host: string, username: string): Promise<{ version: number; items: RosterItem[] }> {
    const rows = this.s.stmt('SELECT * FROM roster_items WHERE host = ? AND username = ? ORDER BY contact').all(host, username) as Row[];
    return { version: this.version(host, username), items: rows.map(rowToItem) };
  }

  async getItem(host: string, username: string, contact: string): Promise<RosterItem | undefined> {
    const row = this.s.stmt('SELECT * FROM roster_items WHERE host = ? AND username = ? AND contact = ?').get(host, username, contact) as Row | undefined;
    return row ? rowToItem(row) : undefined;
  }

  async put(host: string, username: string, item: RosterItem): Promise<number> {
    return this.s.transaction(() => {
      this.s.stmt(
        `INSERT INTO roster_items (host, username, contact, name, subscription, ask, approved, groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (host, username, contact) DO UPDATE SET name = excluded.name, subscription = excluded.subscription,
           ask = excluded.ask, approved = excluded.approved, groups = excluded.groups`,
      ).run(host, username, item.jid, item.name ?? null, item.subscription, item.ask ? 1 : 0, item.approved ? 1 : 0, JSON.stringify(item.groups));
      return this.bump(host, username);
    });
  }

  async delete(host: string, username: string, contact: string): Promise<number> {
    return this.s.transaction(() => {
      this.s.stmt('DELETE FROM roster_items WHERE host = ? AND username = ? AND contact = ?').run(host, username, contact);
      return this.bump(host, username);
    });
  }

  async pendingRequests(host: string, username: string): Promise<Array<{ from: string; stanza: string }>> {
    const rows = this.s.stmt('SELECT contact, stanza FROM subscription_requests WHERE host = ? AND username = ? ORDER BY contact').all(host, username) as Row[];
    return rows.map((r) => ({ from: String(r.contact), stanza: String(r.stanza) }));
  }

  async setPendingRequest(host: string, username: string, from: string, stanza: string | null): Promise<void> {
    if (stanza === null) {
      this.s.stmt('DELETE FROM subscription_requests WHERE host = ? AND username = ? AND contact = ?').run(host, username, from);
    } else {
      this.s.stmt(
        'INSERT INTO subscription_requests (host, username, contact, stanza) VALUES (?, ?, ?, ?) ON CONFLICT (host, username, contact) DO UPDATE SET stanza = excluded.stanza',
      ).run(host, username, from, stanza);
    }
  }
}
