// Archive rows written in batches, and the worker thread that writes them for a database file, so the index
// updates of every archived message (the bulk of archiving's cost) stay off the server's event loop.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';

export type ArchiveRow = {
  seq: number; host: string; username: string; peer: string; resource: string; outgoing: number; stanza: string; text: string | undefined;
};

/** Main thread -> writer: rows to write (`batch` numbers them), a reader waiting (write now), or the last call. */
export type WriterRequest = { batch: number; rows: ArchiveRow[] } | { sync: true } | { close: SharedArrayBuffer };
/** Writer -> main thread: every batch up to `batch` is committed; `error` when the last attempt failed. */
export type WriterReply = { batch: number; error?: string };

const statements = new WeakMap<DatabaseSync, { insert: StatementSync; text: StatementSync; count: StatementSync }>();

/** Writes rows in one transaction: all of them or, on an error, none. */
export function writeArchiveRows(db: DatabaseSync, rows: ArchiveRow[]): void {
  let s = statements.get(db);
  if (!s) {
    s = {
      insert: db.prepare('INSERT INTO archive (seq, host, username, peer, peer_resource, outgoing, stanza) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      text: db.prepare('INSERT INTO archive_text (rowid, body) VALUES (?, ?)'),
      count: db.prepare(`INSERT INTO archive_counts (host, username, peer, n) VALUES (?, ?, ?, ?)
        ON CONFLICT (host, username, peer) DO UPDATE SET n = n + excluded.n`),
    };
    statements.set(db, s);
  }
  db.exec('BEGIN IMMEDIATE');
  try {
    // Counts per archive and peer are added once per batch, not by a trigger per row (a batch often holds many
    // messages of one conversation).
    const counts = new Map<string, { r: ArchiveRow; n: number }>();
    for (const r of rows) {
      s.insert.run(r.seq, r.host, r.username, r.peer, r.resource, r.outgoing, r.stanza);
      if (r.text !== undefined) s.text.run(r.seq, r.text);
      const key = `${r.host}\u0000${r.username}\u0000${r.peer}`;
      const c = counts.get(key);
      if (c) c.n++;
      else counts.set(key, { r, n: 1 });
    }
    for (const { r, n } of counts.values()) s.count.run(r.host, r.username, r.peer, n);
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
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
  const queue: Array<{ batch: number; rows: ArchiveRow[] }> = [];
  let queued = 0;
  let scheduled: NodeJS.Timeout | undefined;
  let retry: NodeJS.Timeout | undefined;

  /** Writes what is queued, whole batches at a time; on failure keeps it and tries again in a second. */
  const drain = (): boolean => {
    if (scheduled) clearTimeout(scheduled);
    scheduled = undefined;
    while (queue.length > 0) {
      const rows: ArchiveRow[] = [];
      let last = 0;
      let n = 0;
      while (n < queue.length && (rows.length === 0 || rows.length + (queue[n]?.rows.length ?? 0) <= WRITER_BATCH * 2)) {
        const b = queue[n++] as { batch: number; rows: ArchiveRow[] };
        for (const r of b.rows) rows.push(r);
        last = b.batch;
      }
      try {
        writeArchiveRows(db, rows);
      } catch (err) {
        port.postMessage({ batch: 0, error: (err as Error).message } satisfies WriterReply);
        retry ??= setTimeout(() => {
          retry = undefined;
          drain();
        }, 1000);
        return false;
      }
      queue.splice(0, n);
      queued -= rows.length;
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
    queued += m.rows.length;
    if (retry) return;
    if (queued >= WRITER_BATCH) drain();
    else scheduled ??= setTimeout(drain, GROUP_MS);
  });
}

if (!isMainThread && (workerData as { archiveWriter?: string } | null)?.archiveWriter && parentPort) {
  runWriter(parentPort, (workerData as { archiveWriter: string }).archiveWriter);
}
