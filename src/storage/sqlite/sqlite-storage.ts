// The embedded default backend: node:sqlite in WAL mode with cached prepared statements.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ScramCredentials } from '../../c2s/sasl/credentials.ts';
import { StorageError } from '../../core/errors.ts';
import type {
  AccountRecord, AccountStore, OfflineMessage, OfflineStore, OutboxJob, OutboxState, OutboxStore, PushRegistration, PushStore, RosterItem,
  KeyValueStore, PepItem, PepNode, PepStore,
  RosterStore, Storage, Subscription,
} from '../types.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';

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
      for (const table of ['roster_items', 'roster_versions', 'subscription_requests', 'offline_messages', 'push_registrations', 'kv', 'pep_nodes', 'pep_items']) {
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

class SqliteOffline implements OfflineStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async store(host: string, username: string, from: string, stanza: string, quota: number): Promise<{ id: number; count: number } | undefined> {
    // Count and insert in one transaction, so concurrent stores never exceed the quota.
    return this.s.transaction(() => {
      const count = Number((this.s.stmt('SELECT COUNT(*) AS n FROM offline_messages WHERE host = ? AND username = ?').get(host, username) as Row).n);
      if (count >= quota) return undefined;
      const r = this.s.stmt('INSERT INTO offline_messages (host, username, sender, stanza, stored_at) VALUES (?, ?, ?, ?, ?)')
        .run(host, username, from, stanza, Date.now());
      return { id: Number(r.lastInsertRowid), count: count + 1 };
    });
  }

  async count(host: string, username: string): Promise<number> {
    return Number((this.s.stmt('SELECT COUNT(*) AS n FROM offline_messages WHERE host = ? AND username = ?').get(host, username) as Row).n);
  }

  async list(host: string, username: string, limit = 100_000): Promise<OfflineMessage[]> {
    const rows = this.s.stmt('SELECT id, sender, stanza, stored_at FROM offline_messages WHERE host = ? AND username = ? ORDER BY id LIMIT ?')
      .all(host, username, limit) as Row[];
    return rows.map((r) => ({ id: Number(r.id), from: String(r.sender), stanza: String(r.stanza), storedAt: Number(r.stored_at) }));
  }

  async remove(host: string, username: string, ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    this.s.transaction(() => {
      const del = this.s.stmt('DELETE FROM offline_messages WHERE id = ? AND host = ? AND username = ?');
      for (const id of ids) del.run(id, host, username);
    });
  }

  async removeAll(host: string, username: string): Promise<number> {
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
