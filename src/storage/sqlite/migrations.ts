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
  {
    version: 5,
    name: 'message archive',
    // seq is time-ordered (ms * 1000 + a counter), so time filters become seq ranges on the two indexes; ids
    // shown to clients are seq encrypted with id_key, so they reveal nothing yet need no index of their own.
    sql: `
      CREATE TABLE archive (
        seq INTEGER PRIMARY KEY,
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        peer TEXT NOT NULL,
        peer_resource TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        stanza TEXT NOT NULL
      );
      CREATE INDEX archive_owner ON archive (host, username, seq);
      CREATE INDEX archive_peer ON archive (host, username, peer, seq);
      CREATE VIRTUAL TABLE archive_text USING fts5 (body, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2');
      -- Messages per archive and peer, kept by the triggers: counts without counting rows.
      CREATE TABLE archive_counts (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        peer TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (host, username, peer)
      ) WITHOUT ROWID;
      CREATE TABLE archive_prefs (
        host TEXT NOT NULL,
        username TEXT NOT NULL,
        default_mode TEXT NOT NULL,
        always_jids TEXT NOT NULL,
        never_jids TEXT NOT NULL,
        PRIMARY KEY (host, username)
      ) WITHOUT ROWID;
      CREATE TABLE archive_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        id_key BLOB NOT NULL,
        high_seq INTEGER NOT NULL
      );
      INSERT INTO archive_state (id, id_key, high_seq) VALUES (1, randomblob(16), 0);
      CREATE TRIGGER archive_added AFTER INSERT ON archive BEGIN
        INSERT INTO archive_counts (host, username, peer, n) VALUES (new.host, new.username, new.peer, 1)
          ON CONFLICT (host, username, peer) DO UPDATE SET n = n + 1;
      END;
      -- Counts and the text index follow deletions; the highest seq ever used is kept so it is never reused.
      CREATE TRIGGER archive_removed AFTER DELETE ON archive BEGIN
        UPDATE archive_counts SET n = n - 1 WHERE host = old.host AND username = old.username AND peer = old.peer;
        DELETE FROM archive_text WHERE rowid = old.seq;
        UPDATE archive_state SET high_seq = old.seq WHERE old.seq > high_seq;
      END;
    `,
  },
  {
    version: 10,
    name: 'offline journal of unacknowledged messages',
    // Messages written to a stream-management session stay here, held, until the client acknowledges them.
    sql: `
      ALTER TABLE offline_messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX offline_messages_held ON offline_messages (held) WHERE held = 1;
    `,
  },
  {
    version: 6,
    name: 'http file upload slots',
    // One row per XEP-0363 slot; pending until its file is stored (uploaded_at), counted against the owner's quota.
    sql: `
      CREATE TABLE upload_slots (
        host TEXT NOT NULL,
        id TEXT NOT NULL,
        username TEXT NOT NULL,
        filename TEXT NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        uploaded_at INTEGER,
        PRIMARY KEY (host, id)
      ) WITHOUT ROWID;
      CREATE INDEX upload_slots_owner ON upload_slots (host, username);
      CREATE INDEX upload_slots_pending ON upload_slots (host, expires_at) WHERE uploaded_at IS NULL;
      CREATE INDEX upload_slots_uploaded ON upload_slots (host, uploaded_at) WHERE uploaded_at IS NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'REST API tokens',
    // Only a SHA-256 hash of each token is kept; host is the one host a token may act on (NULL: every host).
    sql: `
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        hash BLOB NOT NULL,
        name TEXT,
        host TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        last_used_at INTEGER
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    name: 'multi-user chat rooms',
    // Persistent rooms of each chat service (host = the service's domain) and their affiliations by bare JID.
    sql: `
      CREATE TABLE muc_rooms (
        host TEXT NOT NULL,
        node TEXT NOT NULL,
        config TEXT NOT NULL,
        subject TEXT,
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (host, node)
      ) WITHOUT ROWID;
      CREATE TABLE muc_affiliations (
        host TEXT NOT NULL,
        node TEXT NOT NULL,
        jid TEXT NOT NULL,
        affiliation TEXT NOT NULL,
        nick TEXT,
        reason TEXT,
        notify INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (host, node, jid)
      ) WITHOUT ROWID;
      CREATE INDEX muc_affiliations_jid ON muc_affiliations (jid);
    `,
  },
  {
    version: 11,
    name: 'archive counts per batch',
    // The archive writer adds counts once per batch and conversation; the per-row trigger did the same work
    // for every message.
    sql: `DROP TRIGGER archive_added;`,
  },
  {
    version: 12,
    name: 'archive keyed by numbered JIDs',
    // Each archived message adds an entry to two indexes per archive; with the owner and the peer as small
    // integers instead of (host, username, peer) text, those entries are a fraction of the size, and an index
    // page holds many more of them. archive_jids numbers every bare JID once (owners and peers alike); domain
    // serves purges by host.
    sql: `
      CREATE TABLE archive_jids (
        id INTEGER PRIMARY KEY,
        jid TEXT NOT NULL UNIQUE,
        domain TEXT NOT NULL
      );
      CREATE INDEX archive_jids_domain ON archive_jids (domain);
      INSERT INTO archive_jids (jid, domain) SELECT DISTINCT username || '@' || host, host FROM archive;
      INSERT OR IGNORE INTO archive_jids (jid, domain)
        SELECT DISTINCT peer, CASE WHEN instr(peer, '@') > 0 THEN substr(peer, instr(peer, '@') + 1) ELSE peer END FROM archive;
      CREATE TABLE archive_next (
        seq INTEGER PRIMARY KEY,
        owner INTEGER NOT NULL,
        peer INTEGER NOT NULL,
        peer_resource TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        stanza TEXT NOT NULL
      );
      INSERT INTO archive_next (seq, owner, peer, peer_resource, outgoing, stanza)
        SELECT a.seq, o.id, p.id, a.peer_resource, a.outgoing, a.stanza FROM archive a
        JOIN archive_jids o ON o.jid = a.username || '@' || a.host
        JOIN archive_jids p ON p.jid = a.peer;
      CREATE TABLE archive_counts_next (
        owner INTEGER NOT NULL,
        peer INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (owner, peer)
      ) WITHOUT ROWID;
      INSERT INTO archive_counts_next (owner, peer, n)
        SELECT o.id, p.id, c.n FROM archive_counts c
        JOIN archive_jids o ON o.jid = c.username || '@' || c.host
        JOIN archive_jids p ON p.jid = c.peer
        WHERE c.n > 0;
      DROP TRIGGER archive_removed;
      DROP TABLE archive;
      DROP TABLE archive_counts;
      ALTER TABLE archive_next RENAME TO archive;
      ALTER TABLE archive_counts_next RENAME TO archive_counts;
      CREATE INDEX archive_owner ON archive (owner, seq);
      CREATE INDEX archive_peer ON archive (owner, peer, seq);
      -- Counts and the text index follow deletions; the highest seq ever used is kept so it is never reused.
      CREATE TRIGGER archive_removed AFTER DELETE ON archive BEGIN
        UPDATE archive_counts SET n = n - 1 WHERE owner = old.owner AND peer = old.peer;
        DELETE FROM archive_text WHERE rowid = old.seq;
        UPDATE archive_state SET high_seq = old.seq WHERE old.seq > high_seq;
      END;
    `,
  },
];
