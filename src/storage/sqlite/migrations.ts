// Numbered schema migrations for SQLite, applied in order at start-up; never edit a released one, add the next.
export const SQLITE_MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'accounts and roster',
    sql: `
      CREATE TABLE accounts (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        scram TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (host, username)
      ) WITHOUT ROWID;
      CREATE TABLE roster_versions (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (host, username)
      ) WITHOUT ROWID;
      CREATE TABLE roster_items (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        contact TEXT NOT NULL,
        name TEXT,
        subscription TEXT NOT NULL,
        ask INTEGER NOT NULL DEFAULT 0,
        approved INTEGER NOT NULL DEFAULT 0,
        groups TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (host, username, contact)
      ) WITHOUT ROWID;
      CREATE TABLE subscription_requests (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        contact TEXT NOT NULL,
        stanza TEXT NOT NULL,
        PRIMARY KEY (host, username, contact)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'offline messages and outbox',
    sql: `
      CREATE TABLE offline_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        sender TEXT NOT NULL,
        stanza TEXT NOT NULL,
        stored_at INTEGER NOT NULL
      );
      CREATE INDEX offline_messages_user ON offline_messages (host, username, id);
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error TEXT,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX outbox_due ON outbox (kind, state, next_attempt_at);
    `,
  },
  {
    version: 3,
    name: 'push registrations',
    sql: `
      CREATE TABLE push_registrations (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        options TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (host, username, service, node)
      ) WITHOUT ROWID;
      CREATE INDEX push_registrations_node ON push_registrations (service, node);
    `,
  },
  {
    version: 4,
    name: 'key-value store and personal eventing',
    sql: `
      CREATE TABLE kv (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        ns TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (host, username, ns, key)
      ) WITHOUT ROWID;
      CREATE TABLE pep_nodes (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        node TEXT NOT NULL,
        config TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (host, username, node)
      ) WITHOUT ROWID;
      CREATE TABLE pep_items (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        node TEXT NOT NULL,
        item_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        publisher TEXT NOT NULL,
        published_at INTEGER NOT NULL,
        UNIQUE (host, username, node, item_id)
      );
      CREATE INDEX pep_items_node ON pep_items (host, username, node, seq);
    `,
  },
];
