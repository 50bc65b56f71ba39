// The embedded default backend: node:sqlite in WAL mode with cached prepared statements.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { createCipheriv, createDecipheriv, type Cipheriv, type Decipheriv } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ScramCredentials } from '../../c2s/sasl/credentials.ts';
import { StorageError } from '../../core/errors.ts';
import type {
  AccountRecord, AccountStore, OfflineMessage, OfflineStore, OutboxJob, OutboxState, OutboxStore, PushRegistration, PushStore, RosterItem,
  KeyValueStore, PepItem, PepNode, PepStore,
  ArchiveDirection, ArchiveFilter, ArchivedMessage, ArchivePage, ArchivePageRequest, ArchivePrefs, ArchiveStore,
  RosterStore, Storage, Subscription,
} from '../types.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { SqliteUploads } from './upload-store.ts';
import { SqliteApiTokens } from './api-token-store.ts';
import { SqliteMuc } from './muc-store.ts';
import { FIELD_SEP, writeArchiveRows, type WriterBatch, type WriterReply } from './archive-writer.ts';

type Row = Record<string, unknown>;

export class SqliteStorage implements Storage {
  readonly db: DatabaseSync;
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly outbox: OutboxStore;
  readonly push: PushStore;
  readonly kv: KeyValueStore;
  readonly pep: PepStore;
  readonly archive: ArchiveStore;
  readonly upload = new SqliteUploads(this);
  readonly apiTokens = new SqliteApiTokens(this);
  readonly muc = new SqliteMuc(this);
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
    this.offline = new SqliteOffline(this);
    this.outbox = new SqliteOutbox(this);
    this.push = new SqlitePush(this);
    this.kv = new SqliteKeyValue(this);
    this.pep = new SqlitePep(this);
    this.archive = new SqliteArchive(this);
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
    const applied = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)));
    const ordered = [...SQLITE_MIGRATIONS].sort((a, b) => a.version - b.version);
    const known = new Set(ordered.map((m) => m.version));
    const unknown = [...applied].filter((v) => !known.has(v));
    if (unknown.length > 0) {
      throw new StorageError('MIGRATION', `database schema version ${Math.max(...unknown)} is newer than this Parley (${ordered.at(-1)?.version ?? 0})`);
    }
    // Every migration not yet recorded runs, in version order, even one numbered below those already applied.
    for (const m of ordered) {
      if (applied.has(m.version)) continue;
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

  async ping(): Promise<void> {
    this.stmt('SELECT 1').get();
  }

  async barrier(): Promise<void> {
    if (!this.db.isOpen) return;
    (this.offline as SqliteOffline).flushJournal();
    await (this.archive as SqliteArchive).settle(false);
  }

  close(): void {
    if (this.db.isOpen) (this.offline as SqliteOffline).flushJournal();
    if (this.db.isOpen) (this.archive as SqliteArchive).close();
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
    await (this.s.archive as SqliteArchive).settle(); // archive rows still queued would outlive the account
    (this.s.offline as SqliteOffline).flushJournal();
    this.s.transaction(() => {
      const r = this.s.stmt('DELETE FROM accounts WHERE host = ? AND username = ?').run(host, username);
      if (r.changes === 0) throw new StorageError('NOT_FOUND', `no account ${username}@${host}`);
      for (const table of ['roster_items', 'roster_versions', 'subscription_requests', 'offline_messages', 'push_registrations', 'kv', 'pep_nodes', 'pep_items', 'archive_prefs']) {
        this.s.stmt(`DELETE FROM ${table} WHERE host = ? AND username = ?`).run(host, username);
      }
      (this.s.archive as SqliteArchive).removeRows(host, username);
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

class SqliteOffline implements OfflineStore {
  private readonly s: SqliteStorage;
  /** Journal writes not yet committed: one transaction per event-loop turn (or per barrier) covers them all. */
  private holds: Array<[number, string, string, string, string, number]> = [];
  private releases: number[] = [];
  private flushScheduled = false;
  /** The highest id handed out; journaled rows get theirs before they are written. */
  private lastId: number;

  constructor(s: SqliteStorage) {
    this.s = s;
    // Held rows whose session died with the process are ordinary stored messages now.
    s.db.prepare('UPDATE offline_messages SET held = 0 WHERE held = 1').run();
    this.lastId = this.maxId();
  }

  private maxId(): number {
    const seq = this.s.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'offline_messages'").get() as Row | undefined;
    const max = this.s.db.prepare('SELECT MAX(id) AS m FROM offline_messages').get() as Row;
    return Math.max(Number(seq?.seq ?? 0), Number(max.m ?? 0));
  }

  /** Writes the journal in one transaction; also run before any other offline write, so ids stay in order. */
  flushJournal(): void {
    this.flushScheduled = false;
    if (this.holds.length === 0 && this.releases.length === 0) return;
    const holds = this.holds;
    const releases = this.releases;
    this.holds = [];
    this.releases = [];
    this.s.transaction(() => {
      const ins = this.s.stmt('INSERT INTO offline_messages (id, host, username, sender, stanza, stored_at, held) VALUES (?, ?, ?, ?, ?, ?, 1)');
      for (const h of holds) ins.run(...h);
      const del = this.s.stmt('DELETE FROM offline_messages WHERE id = ?');
      for (const id of releases) del.run(id);
    });
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      if (this.s.db.isOpen) this.flushJournal();
    });
  }

  hold(host: string, username: string, from: string, stanza: string): number {
    const id = ++this.lastId;
    this.holds.push([id, host, username, from, stanza, Date.now()]);
    this.schedule();
    return id;
  }

  release(ids: number[]): void {
    if (ids.length === 0) return;
    for (const id of ids) this.releases.push(id);
    this.schedule();
  }

  async unhold(host: string, username: string, ids: number[]): Promise<number> {
    this.flushJournal();
    this.s.transaction(() => {
      const up = this.s.stmt('UPDATE offline_messages SET held = 0 WHERE id = ? AND host = ? AND username = ?');
      for (const id of ids) up.run(id, host, username);
    });
    return this.count(host, username);
  }

  async store(host: string, username: string, from: string, stanza: string, quota: number): Promise<{ id: number; count: number } | undefined> {
    this.flushJournal();
    // Count and insert in one transaction, so concurrent stores never exceed the quota.
    const result = this.s.transaction(() => {
      const count = Number((this.s.stmt('SELECT COUNT(*) AS n FROM offline_messages WHERE host = ? AND username = ? AND held = 0').get(host, username) as Row).n);
      if (count >= quota) return undefined;
      const r = this.s.stmt('INSERT INTO offline_messages (host, username, sender, stanza, stored_at) VALUES (?, ?, ?, ?, ?)')
        .run(host, username, from, stanza, Date.now());
      return { id: Number(r.lastInsertRowid), count: count + 1 };
    });
    if (result) this.lastId = Math.max(this.lastId, result.id);
    return result;
  }

  async count(host: string, username: string): Promise<number> {
    return Number((this.s.stmt('SELECT COUNT(*) AS n FROM offline_messages WHERE host = ? AND username = ? AND held = 0').get(host, username) as Row).n);
  }

  async total(host: string): Promise<number> {
    return Number((this.s.stmt('SELECT COUNT(*) AS n FROM offline_messages WHERE host = ? AND held = 0').get(host) as Row).n);
  }

  async list(host: string, username: string, limit = 100_000): Promise<OfflineMessage[]> {
    const rows = this.s.stmt('SELECT id, sender, stanza, stored_at FROM offline_messages WHERE host = ? AND username = ? AND held = 0 ORDER BY id LIMIT ?')
      .all(host, username, limit) as Row[];
    return rows.map((r) => ({ id: Number(r.id), from: String(r.sender), stanza: String(r.stanza), storedAt: Number(r.stored_at) }));
  }

  async remove(host: string, username: string, ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    this.flushJournal();
    this.s.transaction(() => {
      const del = this.s.stmt('DELETE FROM offline_messages WHERE id = ? AND host = ? AND username = ?');
      for (const id of ids) del.run(id, host, username);
    });
  }

  async removeAll(host: string, username: string): Promise<number> {
    this.flushJournal();
    return Number(this.s.stmt('DELETE FROM offline_messages WHERE host = ? AND username = ?').run(host, username).changes);
  }
}

function rowToJob(r: Row): OutboxJob {
  return {
    id: Number(r.id), kind: String(r.kind), payload: String(r.payload), state: String(r.state) as OutboxState,
    attempts: Number(r.attempts), nextAttemptAt: Number(r.next_attempt_at),
    lastError: r.last_error === null ? null : String(r.last_error), createdAt: Number(r.created_at),
  };
}

class SqliteOutbox implements OutboxStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async add(host: string, kind: string, payload: string, at = Date.now()): Promise<number> {
    const r = this.s.stmt('INSERT INTO outbox (host, kind, payload, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)').run(host, kind, payload, at, Date.now());
    return Number(r.lastInsertRowid);
  }

  async due(kind: string, now: number, limit: number): Promise<OutboxJob[]> {
    const rows = this.s.stmt("SELECT * FROM outbox WHERE kind = ? AND state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?")
      .all(kind, now, limit) as Row[];
    return rows.map(rowToJob);
  }

  async markDelivered(id: number): Promise<void> {
    this.s.stmt("UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_error = NULL WHERE id = ?").run(id);
  }

  async markFailed(id: number, error: string, nextAttemptAt: number, dead: boolean): Promise<void> {
    this.s.stmt('UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?')
      .run(dead ? 'dead' : 'pending', error.slice(0, 1000), nextAttemptAt, id);
  }

  async counts(kind?: string): Promise<Record<OutboxState, number>> {
    const rows = (kind === undefined
      ? this.s.stmt('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all()
      : this.s.stmt('SELECT state, COUNT(*) AS n FROM outbox WHERE kind = ? GROUP BY state').all(kind)) as Row[];
    const out: Record<OutboxState, number> = { pending: 0, delivered: 0, dead: 0 };
    for (const r of rows) out[String(r.state) as OutboxState] = Number(r.n);
    return out;
  }

  async list(opts: { kind?: string; state?: OutboxState; limit: number }): Promise<OutboxJob[]> {
    const rows = this.s.stmt('SELECT * FROM outbox WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR state = ?2) ORDER BY id DESC LIMIT ?3')
      .all(opts.kind ?? null, opts.state ?? null, opts.limit) as Row[];
    return rows.map(rowToJob);
  }

  async retryDead(kind?: string): Promise<number> {
    const r = this.s.stmt("UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ? WHERE state = 'dead' AND (?2 IS NULL OR kind = ?2)")
      .run(Date.now(), kind ?? null);
    return Number(r.changes);
  }

  async purgeDelivered(olderThan: number): Promise<number> {
    return Number(this.s.stmt("DELETE FROM outbox WHERE state = 'delivered' AND created_at < ?").run(olderThan).changes);
  }
}

class SqlitePush implements PushStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async enable(host: string, username: string, reg: { service: string; node: string; options: string | null }): Promise<void> {
    this.s.stmt(
      `INSERT INTO push_registrations (host, username, service, node, options, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (host, username, service, node) DO UPDATE SET options = excluded.options, created_at = excluded.created_at`,
    ).run(host, username, reg.service, reg.node, reg.options, Date.now());
  }

  async disable(host: string, username: string, service: string, node?: string): Promise<number> {
    const r = node === undefined
      ? this.s.stmt('DELETE FROM push_registrations WHERE host = ? AND username = ? AND service = ?').run(host, username, service)
      : this.s.stmt('DELETE FROM push_registrations WHERE host = ? AND username = ? AND service = ? AND node = ?').run(host, username, service, node);
    return Number(r.changes);
  }

  async list(host: string, username: string): Promise<PushRegistration[]> {
    const rows = this.s.stmt('SELECT service, node, options, created_at FROM push_registrations WHERE host = ? AND username = ? ORDER BY created_at, service, node')
      .all(host, username) as Row[];
    return rows.map((r) => ({ service: String(r.service), node: String(r.node), options: r.options === null ? null : String(r.options), createdAt: Number(r.created_at) }));
  }

  async removeNode(service: string, node: string): Promise<number> {
    return Number(this.s.stmt('DELETE FROM push_registrations WHERE service = ? AND node = ?').run(service, node).changes);
  }
}

class SqliteKeyValue implements KeyValueStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async get(host: string, username: string, ns: string, key: string): Promise<string | undefined> {
    const row = this.s.stmt('SELECT value FROM kv WHERE host = ? AND username = ? AND ns = ? AND key = ?').get(host, username, ns, key) as Row | undefined;
    return row ? String(row.value) : undefined;
  }

  async set(host: string, username: string, ns: string, key: string, value: string | undefined): Promise<void> {
    if (value === undefined) {
      this.s.stmt('DELETE FROM kv WHERE host = ? AND username = ? AND ns = ? AND key = ?').run(host, username, ns, key);
    } else {
      this.s.stmt('INSERT INTO kv (host, username, ns, key, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (host, username, ns, key) DO UPDATE SET value = excluded.value')
        .run(host, username, ns, key, value);
    }
  }

  async entries(host: string, username: string, ns: string): Promise<Array<[string, string]>> {
    const rows = this.s.stmt('SELECT key, value FROM kv WHERE host = ? AND username = ? AND ns = ? ORDER BY key').all(host, username, ns) as Row[];
    return rows.map((r) => [String(r.key), String(r.value)]);
  }
}

class SqlitePep implements PepStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async getNode(host: string, username: string, node: string): Promise<PepNode | undefined> {
    const r = this.s.stmt('SELECT node, config, created_at FROM pep_nodes WHERE host = ? AND username = ? AND node = ?').get(host, username, node) as Row | undefined;
    return r ? { node: String(r.node), config: String(r.config), createdAt: Number(r.created_at) } : undefined;
  }

  async listNodes(host: string, username: string): Promise<PepNode[]> {
    const rows = this.s.stmt('SELECT node, config, created_at FROM pep_nodes WHERE host = ? AND username = ? ORDER BY node').all(host, username) as Row[];
    return rows.map((r) => ({ node: String(r.node), config: String(r.config), createdAt: Number(r.created_at) }));
  }

  async putNode(host: string, username: string, node: string, config: string): Promise<void> {
    this.s.stmt('INSERT INTO pep_nodes (host, username, node, config, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (host, username, node) DO UPDATE SET config = excluded.config')
      .run(host, username, node, config, Date.now());
  }

  async deleteNode(host: string, username: string, node: string): Promise<boolean> {
    return this.s.transaction(() => {
      this.s.stmt('DELETE FROM pep_items WHERE host = ? AND username = ? AND node = ?').run(host, username, node);
      return Number(this.s.stmt('DELETE FROM pep_nodes WHERE host = ? AND username = ? AND node = ?').run(host, username, node).changes) > 0;
    });
  }

  async publish(host: string, username: string, node: string, item: { id: string; payload: string; publisher: string }, maxItems: number): Promise<string[]> {
    return this.s.transaction(() => {
      // Delete then insert, so a re-published id becomes the newest.
      this.s.stmt('DELETE FROM pep_items WHERE host = ? AND username = ? AND node = ? AND item_id = ?').run(host, username, node, item.id);
      this.s.stmt('INSERT INTO pep_items (host, username, node, item_id, payload, publisher, published_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(host, username, node, item.id, item.payload, item.publisher, Date.now());
      const old = this.s.stmt('SELECT seq, item_id FROM pep_items WHERE host = ? AND username = ? AND node = ? ORDER BY seq DESC LIMIT -1 OFFSET ?')
        .all(host, username, node, Math.max(1, maxItems)) as Row[];
      const del = this.s.stmt('DELETE FROM pep_items WHERE seq = ?');
      for (const r of old) del.run(Number(r.seq));
      return old.map((r) => String(r.item_id));
    });
  }

  async retract(host: string, username: string, node: string, id: string): Promise<boolean> {
    return Number(this.s.stmt('DELETE FROM pep_items WHERE host = ? AND username = ? AND node = ? AND item_id = ?').run(host, username, node, id).changes) > 0;
  }

  async items(host: string, username: string, node: string, opts: { ids?: string[]; max?: number } = {}): Promise<PepItem[]> {
    const rows = this.s.stmt('SELECT item_id, payload, publisher, published_at FROM pep_items WHERE host = ? AND username = ? AND node = ? ORDER BY seq DESC')
      .all(host, username, node) as Row[];
    let items = rows.map((r) => ({ id: String(r.item_id), payload: String(r.payload), publisher: String(r.publisher), publishedAt: Number(r.published_at) }));
    if (opts.ids) {
      const wanted = new Set(opts.ids);
      items = items.filter((i) => wanted.has(i.id));
    }
    return opts.max !== undefined ? items.slice(0, opts.max) : items;
  }

  async purge(host: string, username: string, node: string): Promise<number> {
    return Number(this.s.stmt('DELETE FROM pep_items WHERE host = ? AND username = ? AND node = ?').run(host, username, node).changes);
  }
}

/** Archive order numbers are ms * SEQ_PER_MS plus a counter: time filters become ranges of seq. */
const SEQ_PER_MS = 1000;
/** Counting more rows than this for a count, or for an RSM index, is not worth it: they are then left out. */
const COUNT_LIMIT = 5_000;
const INDEX_LIMIT = 1_000;
/** A page's columns, the peer's JID looked up by its number. */
const ARCHIVE_COLUMNS = 'a.seq AS seq, (SELECT jid FROM archive_jids WHERE id = a.peer) AS peer, a.peer_resource AS peer_resource, a.outgoing AS outgoing, a.stanza AS stanza';
/**
 * Rows handed over per batch at most; how long a row may wait for its batch (a commit costs about as much as a
 * hundred rows, so at moderate load the wait saves most of the work); rows not yet written at most, beyond which
 * appends wait for the writer (or fail, if its writes are failing).
 */
const BATCH_SIZE = 512;
const FLUSH_MS = 10;
const MAX_PENDING = 20_000;
/** How long close() waits for the writer thread to write what it was given. */
const CLOSE_WAIT_MS = 15_000;

/** A process that exits (even on an uncaught exception) still writes what its archives hold in memory. */
const openArchives = new Set<SqliteArchive>();
process.once('exit', () => {
  for (const a of openArchives) a.close();
});

/** Words of a search, each quoted so FTS5 reads them as terms (all must occur), never as query syntax. */
function ftsQuery(text: string): string | undefined {
  const words = text.split(/\s+/u).filter((w) => w !== '');
  return words.length === 0 ? undefined : words.map((w) => `"${w.replaceAll('"', '""')}"`).join(' ');
}

class SqliteArchive implements ArchiveStore {
  readonly fullText = true;
  private readonly s: SqliteStorage;
  /** AES-128 on one block is a keyed permutation of seq: ids are opaque and unpredictable, yet map back to seq. */
  private readonly cipher: Cipheriv;
  private readonly decipher: Decipheriv;
  private readonly block = Buffer.alloc(16);
  private last: number;
  /** Fields of the rows not yet handed over, packed as the writer takes them (see archive-writer.ts). */
  private pending: string[] = [];
  private pendingRows = 0;
  private scheduled: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failure: unknown;
  /** The database file, written by a worker thread; undefined for an in-memory database, written in-thread. */
  private readonly file: string | undefined;
  private worker: Worker | undefined;
  /** Batches given to the writer and not yet committed, kept to give them again to a new writer if it dies. */
  private inflight: WriterBatch[] = [];
  private inflightRows = 0;
  private sent = 0;
  private waiters: Array<() => void> = [];

  constructor(s: SqliteStorage) {
    this.s = s;
    const state = s.db.prepare('SELECT id_key, high_seq FROM archive_state WHERE id = 1').get() as Row;
    const key = Buffer.from(state.id_key as Uint8Array);
    // ECB over single whole blocks, padding off: one long-lived cipher object serves every id.
    this.cipher = createCipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    this.decipher = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false);
    const max = (s.db.prepare('SELECT MAX(seq) AS m FROM archive').get() as Row).m;
    this.last = Math.max(Number(state.high_seq), Number(max ?? 0));
    const main = (s.db.prepare('PRAGMA database_list').all() as Row[]).find((r) => r.name === 'main');
    this.file = main && String(main.file ?? '') !== '' ? String(main.file) : undefined;
    openArchives.add(this);
  }

  private nextSeq(): number {
    const t = Date.now() * SEQ_PER_MS;
    this.last = t > this.last ? t : this.last + 1;
    return this.last;
  }

  private encodeId(seq: number): string {
    const b = this.block;
    b.fill(0);
    b.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 0);
    b.writeUInt32BE(seq >>> 0, 4);
    return this.cipher.update(b).toString('base64url');
  }

  /** The seq an id stands for, if it is one of ours (the zero half of the block checks it). */
  private decodeId(id: string): number | undefined {
    if (id.length !== 22) return undefined;
    const raw = Buffer.from(id, 'base64url');
    if (raw.length !== 16 || raw.toString('base64url') !== id) return undefined;
    const b = this.decipher.update(raw);
    if (b.readUInt32BE(8) !== 0 || b.readUInt32BE(12) !== 0) return undefined;
    return b.readUInt32BE(0) * 0x1_0000_0000 + b.readUInt32BE(4);
  }

  /** The number of a bare JID in archive_jids; -1 (matching nothing) for a JID never archived. */
  private jidNumber(jid: string): number {
    const r = this.s.stmt('SELECT id FROM archive_jids WHERE jid = ?').get(jid) as Row | undefined;
    return r ? Number(r.id) : -1;
  }

  /** The seq of a message of this archive; NOT_FOUND otherwise. */
  private existing(owner: number, host: string, username: string, id: string): number {
    const seq = this.decodeId(id);
    if (seq === undefined || this.s.stmt('SELECT 1 FROM archive WHERE seq = ? AND owner = ?').get(seq, owner) === undefined) {
      throw new StorageError('NOT_FOUND', `no message ${id} in the archive of ${username}@${host}`);
    }
    return seq;
  }

  private toMessage(r: Row): ArchivedMessage {
    const seq = Number(r.seq);
    const resource = String(r.peer_resource);
    return {
      id: this.encodeId(seq),
      at: Math.floor(seq / SEQ_PER_MS),
      with: resource === '' ? String(r.peer) : `${String(r.peer)}/${resource}`,
      direction: Number(r.outgoing) === 1 ? 'out' : 'in',
      stanza: String(r.stanza),
    };
  }

  /**
   * Write-behind: the id is final at once, the row joins a batch handed over within FLUSH_MS (at once when the
   * batch is full). A commit per message would write a WAL page per table and index each time; a batch shares
   * them. For a database file a worker thread writes the batches, so the index updates, most of archiving's
   * cost, run beside the event loop; an in-memory database (tests) is written in-thread. Reads, purges, account
   * removal and close() wait for what is pending first, and so does a process that exits (even on an uncaught
   * exception), so nothing is missed; only a killed process loses the last few milliseconds.
   */
  async append(host: string, username: string, entry: { with: string; direction: ArchiveDirection; stanza: string; text?: string | undefined }): Promise<{ id: string; at: number }> {
    while (this.pendingRows + this.inflightRows >= MAX_PENDING) {
      this.flush();
      if (this.pendingRows + this.inflightRows < MAX_PENDING) break;
      if (this.failure !== undefined || this.file === undefined) throw this.failed();
      await new Promise<void>((resolve) => this.waiters.push(resolve)); // the writer is behind: wait for it
    }
    const slash = entry.with.indexOf('/');
    const text = entry.text ?? '';
    const owner = `${username}@${host}`;
    // NUL separates the packed fields; XML and JIDs cannot hold it, so only a caller's bug could put one here.
    if (entry.stanza.includes(FIELD_SEP) || text.includes(FIELD_SEP) || entry.with.includes(FIELD_SEP) || owner.includes(FIELD_SEP)) {
      throw new StorageError('BACKEND', 'an archived message may not contain NUL');
    }
    const seq = this.nextSeq();
    this.pending.push(
      String(seq), owner,
      slash < 0 ? entry.with : entry.with.slice(0, slash),
      slash < 0 ? '' : entry.with.slice(slash + 1),
      entry.direction === 'out' ? '1' : '0',
      entry.stanza,
      text,
    );
    this.pendingRows++;
    if (this.pendingRows >= BATCH_SIZE) this.flush();
    else this.scheduled ??= setTimeout(() => this.flush(), FLUSH_MS);
    return { id: this.encodeId(seq), at: Math.floor(seq / SEQ_PER_MS) };
  }

  private failed(): StorageError {
    return new StorageError('BACKEND', `archive writes are failing: ${(this.failure as Error | undefined)?.message ?? 'unknown error'}`, { cause: this.failure });
  }

  /** Hands the pending rows over: to the writer thread, or written here in one transaction. */
  flush(): void {
    if (this.scheduled) {
      clearTimeout(this.scheduled);
      this.scheduled = undefined;
    }
    if (this.pendingRows === 0 || !this.s.db.isOpen) return;
    const rows = this.pending.join(FIELD_SEP);
    const n = this.pendingRows;
    this.pending = [];
    this.pendingRows = 0;
    if (this.file !== undefined) {
      const batch: WriterBatch = { batch: ++this.sent, rows, n };
      this.inflight.push(batch);
      this.inflightRows += n;
      this.writer()?.postMessage(batch);
      return;
    }
    try {
      writeArchiveRows(this.s.db, [rows]);
      this.failure = undefined;
    } catch (err) {
      this.failure = err;
      this.pending.unshift(rows); // already packed: joined again with what came since
      this.pendingRows += n;
      this.retry ??= setTimeout(() => {
        this.retry = undefined;
        this.flush();
      }, 1000).unref();
    }
  }

  /** The writer thread, started on first use; undefined while a dead one waits to be replaced. */
  private writer(): Worker | undefined {
    if (this.worker || this.retry) return this.worker;
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    const w = new Worker(new URL(`./archive-writer${ext}`, import.meta.url), { workerData: { archiveWriter: this.file } });
    w.unref();
    // While the writer runs, it checkpoints; the event loop's own commits never stop to copy the WAL back.
    this.s.db.exec('PRAGMA wal_autocheckpoint = 0');
    w.on('message', (r: WriterReply) => {
      if (r.error !== undefined) this.failure = new Error(r.error);
      else {
        this.failure = undefined;
        while (this.inflight.length > 0 && (this.inflight[0]?.batch ?? Infinity) <= r.batch) {
          this.inflightRows -= (this.inflight.shift() as WriterBatch).n;
        }
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
    w.on('error', (err) => {
      // A writer that died takes nothing with it: a new one gets every batch not yet committed.
      this.failure = err;
      if (this.s.db.isOpen) this.s.db.exec('PRAGMA wal_autocheckpoint = 1000');
      this.worker = undefined;
      for (const wake of this.waiters.splice(0)) wake();
      this.retry ??= setTimeout(() => {
        this.retry = undefined;
        const next = this.writer();
        for (const b of this.inflight) next?.postMessage(b);
      }, 1000).unref();
    });
    this.worker = w;
    return w;
  }

  /**
   * Waits until everything appended so far is written; a read after failed writes reports the failure. A read
   * needs the rows now (`urgent`: the writer commits at once); an acknowledgement can wait for the group commit.
   */
  async settle(urgent = true): Promise<void> {
    this.flush();
    if (this.file === undefined) {
      if (this.pendingRows > 0) throw this.failed();
      return;
    }
    const target = this.sent;
    if (urgent && (this.inflight[0]?.batch ?? Infinity) <= target) this.worker?.postMessage({ sync: true });
    while ((this.inflight[0]?.batch ?? Infinity) <= target) {
      if (this.failure !== undefined) throw this.failed();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Writes what is pending, waiting (blocking) for the writer thread to finish, then stops it. */
  close(): void {
    openArchives.delete(this);
    this.flush();
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    const done = new SharedArrayBuffer(4);
    w.postMessage({ close: done });
    Atomics.wait(new Int32Array(done), 0, 0, CLOSE_WAIT_MS);
    void w.terminate();
  }

  async query(host: string, username: string, f: ArchiveFilter, page: ArchivePageRequest): Promise<ArchivePage> {
    await this.settle();
    // A text search walks the full-text index in seq order and joins the archive: a page then costs about the
    // page, not every match of a common word. Range conditions go on that index's rowid (= seq).
    const match = f.text === undefined ? undefined : ftsQuery(f.text);
    const seq = match === undefined ? 'seq' : 't.rowid';
    const from = match === undefined ? 'archive a' : 'archive_text t CROSS JOIN archive a ON a.seq = t.rowid';
    const owner = this.jidNumber(`${username}@${host}`);
    const where = ['a.owner = ?'];
    const params: Array<string | number> = [owner];
    if (match !== undefined) {
      where.unshift('t.archive_text MATCH ?');
      params.unshift(match);
    }
    let peer: number | undefined;
    if (f.with !== undefined) {
      const slash = f.with.indexOf('/');
      peer = this.jidNumber(slash < 0 ? f.with : f.with.slice(0, slash));
      where.push('a.peer = ?');
      params.push(peer);
      if (slash >= 0) {
        where.push('a.peer_resource = ?');
        params.push(f.with.slice(slash + 1));
      }
    }
    if (f.start !== undefined) {
      where.push(`${seq} >= ?`);
      params.push(Math.ceil(f.start) * SEQ_PER_MS);
    }
    if (f.end !== undefined) {
      where.push(`${seq} < ?`);
      params.push((Math.floor(f.end) + 1) * SEQ_PER_MS);
    }
    if (f.afterId !== undefined) {
      where.push(`${seq} > ?`);
      params.push(this.existing(owner, host, username, f.afterId));
    }
    if (f.beforeId !== undefined) {
      where.push(`${seq} < ?`);
      params.push(this.existing(owner, host, username, f.beforeId));
    }
    if (f.ids !== undefined) {
      const seqs = [...new Set(f.ids)].map((id) => this.decodeId(id) ?? -1);
      const list = JSON.stringify(seqs);
      const found = Number((this.s.stmt('SELECT COUNT(*) AS n FROM archive WHERE owner = ? AND seq IN (SELECT value FROM json_each(?))')
        .get(owner, list) as Row).n);
      if (found !== seqs.length) throw new StorageError('NOT_FOUND', `an id is not in the archive of ${username}@${host}`);
      where.push(`${seq} IN (SELECT value FROM json_each(?))`);
      params.push(list);
    }
    const cond = where.join(' AND ');

    // Paging bounds come on top of the filters; the count ignores them.
    let bounds = '';
    const boundParams: number[] = [];
    if (page.after !== undefined) {
      bounds += ` AND ${seq} > ?`;
      boundParams.push(this.existing(owner, host, username, page.after));
    }
    const backward = page.before !== undefined;
    if (page.before !== undefined && page.before !== '') {
      bounds += ` AND ${seq} < ?`;
      boundParams.push(this.existing(owner, host, username, page.before));
    }
    const max = Math.max(0, Math.floor(page.max));
    const offset = !backward && page.after === undefined ? Math.max(0, Math.floor(page.index ?? 0)) : 0;
    const rows = this.s.stmt(`SELECT ${ARCHIVE_COLUMNS} FROM ${from} WHERE ${cond}${bounds} ORDER BY ${seq} ${backward ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`)
      .all(...params, ...boundParams, max + 1, offset) as Row[];
    const complete = rows.length <= max;
    if (!complete) rows.length = max;
    if (backward) rows.reverse();

    /** Matches of the filters and `extra`, counted up to a limit: undefined beyond it. */
    const countUpTo = (extra: string, extraParams: number[], limit: number): number | undefined => {
      const n = Number((this.s.stmt(`SELECT COUNT(*) AS n FROM (SELECT 1 FROM ${from} WHERE ${cond}${extra} LIMIT ${limit + 1})`)
        .get(...params, ...extraParams) as Row).n);
      return n > limit ? undefined : n;
    };
    let count: number | undefined;
    if (where.length === 1) {
      count = Number((this.s.stmt('SELECT SUM(n) AS n FROM archive_counts WHERE owner = ?').get(owner) as Row).n ?? 0);
    } else if (where.length === 2 && peer !== undefined) {
      count = Number((this.s.stmt('SELECT n FROM archive_counts WHERE owner = ? AND peer = ?').get(owner, peer) as Row | undefined)?.n ?? 0);
    } else {
      count = countUpTo('', [], COUNT_LIMIT);
    }

    let firstIndex: number | undefined;
    const first = rows[0];
    const last = rows.at(-1);
    if (first && last) {
      if (!backward && page.after === undefined) firstIndex = offset;
      else if (page.before === '' && page.after === undefined) firstIndex = count === undefined ? undefined : count - rows.length;
      else if (complete && !backward && count !== undefined) firstIndex = count - rows.length;
      else if (complete && backward && page.after === undefined) firstIndex = 0;
      else if (backward) {
        // Backwards paging starts at the newest end: count what lies after the page, if that is little.
        const after = count === undefined ? undefined : countUpTo(` AND ${seq} > ?`, [Number(last.seq)], INDEX_LIMIT);
        if (after !== undefined && count !== undefined) firstIndex = count - rows.length - after;
      } else {
        firstIndex = countUpTo(` AND ${seq} < ?`, [Number(first.seq)], INDEX_LIMIT);
      }
    }
    return { messages: rows.map((r) => this.toMessage(r)), count, firstIndex, complete };
  }

  async bounds(host: string, username: string): Promise<{ first: { id: string; at: number }; last: { id: string; at: number } } | undefined> {
    await this.settle();
    const owner = this.jidNumber(`${username}@${host}`);
    const edge = (order: 'ASC' | 'DESC'): number | undefined => {
      const r = this.s.stmt(`SELECT seq FROM archive WHERE owner = ? ORDER BY seq ${order} LIMIT 1`).get(owner) as Row | undefined;
      return r ? Number(r.seq) : undefined;
    };
    const a = edge('ASC');
    const b = edge('DESC');
    if (a === undefined || b === undefined) return undefined;
    return {
      first: { id: this.encodeId(a), at: Math.floor(a / SEQ_PER_MS) },
      last: { id: this.encodeId(b), at: Math.floor(b / SEQ_PER_MS) },
    };
  }

  async getPrefs(host: string, username: string): Promise<ArchivePrefs | undefined> {
    const r = this.s.stmt('SELECT default_mode, always_jids, never_jids FROM archive_prefs WHERE host = ? AND username = ?').get(host, username) as Row | undefined;
    if (!r) return undefined;
    return {
      default: String(r.default_mode) as ArchivePrefs['default'],
      always: JSON.parse(String(r.always_jids)) as string[],
      never: JSON.parse(String(r.never_jids)) as string[],
    };
  }

  async setPrefs(host: string, username: string, prefs: ArchivePrefs): Promise<void> {
    this.s.stmt(
      `INSERT INTO archive_prefs (host, username, default_mode, always_jids, never_jids) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (host, username) DO UPDATE SET default_mode = excluded.default_mode, always_jids = excluded.always_jids, never_jids = excluded.never_jids`,
    ).run(host, username, prefs.default, JSON.stringify(prefs.always), JSON.stringify(prefs.never));
  }

  async removeAll(host: string, username: string): Promise<number> {
    await this.settle();
    return this.s.transaction(() => {
      const n = this.removeRows(host, username);
      this.s.stmt('DELETE FROM archive_prefs WHERE host = ? AND username = ?').run(host, username);
      return n;
    });
  }

  /** Deletes an archive's messages and counts (inside the caller's transaction); returns how many messages. */
  removeRows(host: string, username: string): number {
    const owner = this.jidNumber(`${username}@${host}`);
    const n = Number(this.s.stmt('DELETE FROM archive WHERE owner = ?').run(owner).changes);
    this.s.stmt('DELETE FROM archive_counts WHERE owner = ?').run(owner);
    return n;
  }

  async purge(host: string, time: number, limit: number): Promise<number> {
    await this.settle();
    // NOT INDEXED: walk the rowid (time) order from the oldest instead of all of a host's index entries.
    return Number(this.s.stmt(`DELETE FROM archive WHERE seq IN (SELECT seq FROM archive NOT INDEXED WHERE seq < ?
      AND owner IN (SELECT id FROM archive_jids WHERE domain = ?) LIMIT ?)`)
      .run(Math.floor(time) * SEQ_PER_MS, host, Math.max(1, Math.floor(limit))).changes);
  }
}
