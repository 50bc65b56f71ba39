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
];
