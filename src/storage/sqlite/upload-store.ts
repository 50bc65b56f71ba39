// XEP-0363 upload slots in SQLite (table upload_slots, migration 6).
import type { UploadSlot, UploadStore, UploadUsage } from '../types.ts';
import type { SqliteStorage } from './sqlite-storage.ts';

type Row = Record<string, unknown>;

const COLUMNS = 'host, id, username, filename, size, content_type, created_at, expires_at, uploaded_at';

function toSlot(r: Row): UploadSlot {
  return {
    host: String(r.host),
    id: String(r.id),
    username: String(r.username),
    filename: String(r.filename),
    size: Number(r.size),
    contentType: r.content_type === null ? null : String(r.content_type),
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    uploadedAt: r.uploaded_at === null ? null : Number(r.uploaded_at),
  };
}

export class SqliteUploads implements UploadStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  private usage(host: string, username: string, since: number, now: number): UploadUsage {
    const up = this.s.stmt(
      'SELECT COALESCE(SUM(size), 0) AS n, MIN(uploaded_at) AS oldest FROM upload_slots WHERE host = ? AND username = ? AND uploaded_at >= ?',
    ).get(host, username, since) as Row;
    const pending = this.s.stmt(
      'SELECT COALESCE(SUM(size), 0) AS n, MIN(expires_at) AS first FROM upload_slots WHERE host = ? AND username = ? AND uploaded_at IS NULL AND expires_at > ?',
    ).get(host, username, now) as Row;
    return {
      used: Number(up.n) + Number(pending.n),
      oldestUpload: up.oldest === null ? undefined : Number(up.oldest),
      firstPendingExpiry: pending.first === null ? undefined : Number(pending.first),
    };
  }

  async reserve(slot: UploadSlot, quota: number, since: number): Promise<UploadUsage | undefined> {
    return this.s.transaction(() => {
      if (quota > 0) {
        const usage = this.usage(slot.host, slot.username, since, slot.createdAt);
        if (usage.used + slot.size > quota) return usage;
      }
      this.s.stmt(`INSERT INTO upload_slots (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
        slot.host, slot.id, slot.username, slot.filename, slot.size, slot.contentType, slot.createdAt, slot.expiresAt, slot.uploadedAt,
      );
      return undefined;
    });
  }

  async get(host: string, id: string): Promise<UploadSlot | undefined> {
    const r = this.s.stmt(`SELECT ${COLUMNS} FROM upload_slots WHERE host = ? AND id = ?`).get(host, id) as Row | undefined;
    return r ? toSlot(r) : undefined;
  }

  async markUploaded(host: string, id: string, at: number): Promise<boolean> {
    const r = this.s.stmt('UPDATE upload_slots SET uploaded_at = ? WHERE host = ? AND id = ? AND uploaded_at IS NULL').run(at, host, id);
    return Number(r.changes) > 0;
  }

  async listByOwner(host: string, username: string): Promise<UploadSlot[]> {
    return (this.s.stmt(`SELECT ${COLUMNS} FROM upload_slots WHERE host = ? AND username = ?`).all(host, username) as Row[]).map(toSlot);
  }

  async expired(host: string, opts: { uploadedBefore?: number | undefined; pendingBefore: number; limit: number }): Promise<UploadSlot[]> {
    const limit = Math.max(1, Math.floor(opts.limit));
    const pending = this.s.stmt(`SELECT ${COLUMNS} FROM upload_slots WHERE host = ? AND uploaded_at IS NULL AND expires_at < ? ORDER BY expires_at LIMIT ?`)
      .all(host, opts.pendingBefore, limit) as Row[];
    const uploaded = opts.uploadedBefore === undefined || pending.length >= limit ? [] : this.s.stmt(
      `SELECT ${COLUMNS} FROM upload_slots WHERE host = ? AND uploaded_at IS NOT NULL AND uploaded_at < ? ORDER BY uploaded_at LIMIT ?`,
    ).all(host, opts.uploadedBefore, limit - pending.length) as Row[];
    return [...pending, ...uploaded].map(toSlot);
  }

  async remove(host: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.s.transaction(() => {
      let n = 0;
      const del = this.s.stmt('DELETE FROM upload_slots WHERE host = ? AND id = ?');
      for (const id of ids) n += Number(del.run(host, id).changes);
      return n;
    });
  }
}
