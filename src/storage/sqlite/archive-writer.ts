// Archive rows written in batches, and the worker thread that writes them for a database file, so the index
// updates of every archived message (the bulk of archiving's cost) stay off the server's event loop.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';

/**
 * Archive rows travel to the writer packed in one string, fields separated by NUL (which no XML text, JID or
 * number can contain): copying one string to the worker costs a fraction of cloning an object per row.
 * Per row, in order: seq, owner (bare JID), peer (bare JID), peer resource, outgoing (1 or 0), stanza, text
 * ('' when not indexed).
 */
const ROW_FIELDS = 7;
export const FIELD_SEP = '\u0000';

/** Packed rows for one commit group: `batch` numbers it, `n` counts its rows. */
export type WriterBatch = { batch: number; rows: string; n: number };
/** Main thread -> writer: packed rows to write, a reader waiting (write now), or the last call. */
export type WriterRequest = WriterBatch | { sync: true } | { close: SharedArrayBuffer };
/** Writer -> main thread: every batch up to `batch` is committed; `error` when the last attempt failed. */
export type WriterReply = { batch: number; error?: string };

type Statements = {
  insert: StatementSync; text: StatementSync; count: StatementSync; jidAdd: StatementSync; jidGet: StatementSync;
  /** Numbers of the JIDs seen so far (archive_jids never loses a row, so they stay true). */
  jids: Map<string, number>;
};
const statements = new WeakMap<DatabaseSync, Statements>();
/** Beyond this many, the JID numbers are looked up again instead of kept. */
const JID_CACHE = 100_000;

/** The number of a bare JID, added to archive_jids when new; `added` collects new ones (undone on rollback). */
function jidNumber(s: Statements, jid: string, added: string[]): number {
  const known = s.jids.get(jid);
  if (known !== undefined) return known;
  const at = jid.indexOf('@');
  let row = s.jidGet.get(jid) as { id: number | bigint } | undefined;
  if (!row) {
    row = s.jidAdd.get(jid, at < 0 ? jid : jid.slice(at + 1)) as { id: number | bigint };
    added.push(jid);
  }
  const id = Number(row.id);
  if (s.jids.size >= JID_CACHE) s.jids.clear();
  s.jids.set(jid, id);
  return id;
}

/** Writes packed rows in one transaction: all of them or, on an error, none. */
export function writeArchiveRows(db: DatabaseSync, packs: string[]): void {
  let s = statements.get(db);
  if (!s) {
    s = {
      insert: db.prepare('INSERT INTO archive (seq, owner, peer, peer_resource, outgoing, stanza) VALUES (?, ?, ?, ?, ?, ?)'),
      text: db.prepare('INSERT INTO archive_text (rowid, body) VALUES (?, ?)'),
      count: db.prepare(`INSERT INTO archive_counts (owner, peer, n) VALUES (?, ?, ?)
        ON CONFLICT (owner, peer) DO UPDATE SET n = n + excluded.n`),
      jidAdd: db.prepare('INSERT INTO archive_jids (jid, domain) VALUES (?, ?) RETURNING id'),
      jidGet: db.prepare('SELECT id FROM archive_jids WHERE jid = ?'),
      jids: new Map(),
    };
    statements.set(db, s);
  }
  const added: string[] = [];
  db.exec('BEGIN IMMEDIATE');
  try {
    // Counts per archive and peer are added once per batch, not per row (a batch often holds many messages of
    // one conversation).
    const counts = new Map<number, Map<number, number>>();
    for (const packed of packs) {
      const f = packed.split(FIELD_SEP);
      for (let i = 0; i + ROW_FIELDS <= f.length; i += ROW_FIELDS) {
        const seq = Number(f[i]);
        const owner = jidNumber(s, f[i + 1] as string, added);
        const peer = jidNumber(s, f[i + 2] as string, added);
        s.insert.run(seq, owner, peer, f[i + 3] as string, f[i + 4] === '1' ? 1 : 0, f[i + 5] as string);
        const text = f[i + 6] as string;
        if (text !== '') s.text.run(seq, text);
        let perPeer = counts.get(owner);
        if (!perPeer) counts.set(owner, (perPeer = new Map()));
        perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1);
      }
    }
    for (const [owner, perPeer] of counts) for (const [peer, n] of perPeer) s.count.run(owner, peer, n);
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    for (const jid of added) s.jids.delete(jid); // their numbers went with the transaction
    throw err;
  }
}

/**
 * The writer commits at most every GROUP_MS, or at once when WRITER_BATCH rows wait, so the tail page of an
 * archive's index is written once for several of its rows; short transactions keep the main thread's own writes
 * from waiting long for the lock.
 */
const WRITER_BATCH = 1024;
const GROUP_MS = 20;
/** WAL pages (4 KiB) after which the writer's commit checkpoints the database. */
const CHECKPOINT_PAGES = 8000;
const CHECKPOINT_EVERY_MS = 5000;
/** The writer's page cache (KiB): the index tails of the archives in use stay in memory. */
const CACHE_KIB = 32 * 1024;

function runWriter(port: MessagePort, path: string): void {
  const db = new DatabaseSync(path);
  // The writer checkpoints the WAL for the whole database (the main thread's connection leaves it to this one),
  // less often than SQLite's default, so the hot index pages are copied back once per many commits.
  db.exec(`PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -${CACHE_KIB}; PRAGMA wal_autocheckpoint = ${CHECKPOINT_PAGES};`);
  // Commits of the main thread (offline messages, rosters) grow the WAL too, also while the archive is quiet.
  const checkpoints = setInterval(() => {
    try {
      db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    } catch {
      // Busy or closing: the next round or the next commit does it.
    }
  }, CHECKPOINT_EVERY_MS);
  checkpoints.unref();
  const queue: WriterBatch[] = [];
  let queued = 0;
  let scheduled: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;

  /** Writes what is queued, whole batches at a time; on failure keeps it and tries again in a second. */
  const drain = (): boolean => {
    if (scheduled) clearTimeout(scheduled);
    scheduled = undefined;
    while (queue.length > 0) {
      const packs: string[] = [];
      let rows = 0;
      let last = 0;
      let n = 0;
      while (n < queue.length && (packs.length === 0 || rows + (queue[n]?.n ?? 0) <= WRITER_BATCH * 2)) {
        const b = queue[n++] as WriterBatch;
        packs.push(b.rows);
        rows += b.n;
        last = b.batch;
      }
      try {
        writeArchiveRows(db, packs);
      } catch (err) {
        port.postMessage({ batch: 0, error: (err as Error).message } satisfies WriterReply);
        retry ??= setTimeout(() => {
          retry = undefined;
          drain();
        }, 1000);
        return false;
      }
      queue.splice(0, n);
      queued -= rows;
      port.postMessage({ batch: last } satisfies WriterReply);
    }
    return true;
  };

  port.on('message', (m: WriterRequest) => {
    if ('close' in m) {
      // The main thread waits (Atomics.wait) until everything is written: a few attempts, then it gives up.
      for (let i = 0; i < 3 && !drain(); i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      if (retry) clearTimeout(retry);
      clearInterval(checkpoints);
      db.close();
      const flag = new Int32Array(m.close);
      Atomics.store(flag, 0, queue.length === 0 ? 1 : 2);
      Atomics.notify(flag, 0);
      port.close();
      return;
    }
    if ('sync' in m) {
      if (!retry) drain();
      return;
    }
    queue.push(m);
    queued += m.n;
    if (retry) return;
    if (queued >= WRITER_BATCH) drain();
    else scheduled ??= setTimeout(drain, GROUP_MS);
  });
}

if (!isMainThread && (workerData as { archiveWriter?: string } | null)?.archiveWriter && parentPort) {
  runWriter(parentPort, (workerData as { archiveWriter: string }).archiveWriter);
}
