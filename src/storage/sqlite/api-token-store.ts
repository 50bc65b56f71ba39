// REST API tokens in SQLite: one row per token, holding a SHA-256 hash of it, never the token itself.
import { StorageError } from '../../core/errors.ts';
import type { ApiToken, ApiTokenStore } from '../types.ts';
import type { SqliteStorage } from './sqlite-storage.ts';

type Row = Record<string, unknown>;

const nullableNumber = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const nullableString = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function rowToToken(r: Row): ApiToken {
  return {
    id: String(r.id),
    name: nullableString(r.name),
    host: nullableString(r.host),
    createdAt: Number(r.created_at),
    expiresAt: nullableNumber(r.expires_at),
    lastUsedAt: nullableNumber(r.last_used_at),
  };
}

export class SqliteApiTokens implements ApiTokenStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async create(t: Omit<ApiToken, 'lastUsedAt'> & { hash: Buffer }): Promise<void> {
    const r = this.s.stmt('INSERT OR IGNORE INTO api_tokens (id, hash, name, host, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(t.id, t.hash, t.name, t.host, t.createdAt, t.expiresAt);
    if (r.changes === 0) throw new StorageError('CONFLICT', `API token ${t.id} already exists`);
  }

  async get(id: string): Promise<(ApiToken & { hash: Buffer }) | undefined> {
    const row = this.s.stmt('SELECT * FROM api_tokens WHERE id = ?').get(id) as Row | undefined;
    if (!row) return undefined;
    return { ...rowToToken(row), hash: Buffer.from(row.hash as Uint8Array) };
  }

  async list(): Promise<ApiToken[]> {
    const rows = this.s.stmt('SELECT id, name, host, created_at, expires_at, last_used_at FROM api_tokens ORDER BY created_at, id').all() as Row[];
    return rows.map(rowToToken);
  }

  async revoke(id: string): Promise<boolean> {
    return this.s.stmt('DELETE FROM api_tokens WHERE id = ?').run(id).changes > 0;
  }

  async markUsed(id: string, at: number): Promise<void> {
    this.s.stmt('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(at, id);
  }
}
