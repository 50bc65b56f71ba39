// Multi-user chat rooms in SQLite (tables muc_rooms and muc_affiliations, migration 7); host is the chat service.
import type { MucAffiliationRecord, MucRoomRecord, MucStore } from '../types.ts';
import type { SqliteStorage } from './sqlite-storage.ts';

type Row = Record<string, unknown>;

function toAffiliation(r: Row): MucAffiliationRecord {
  return {
    jid: String(r.jid),
    affiliation: String(r.affiliation) as MucAffiliationRecord['affiliation'],
    nick: r.nick === null ? null : String(r.nick),
    reason: r.reason === null ? null : String(r.reason),
    notify: Number(r.notify) === 1,
  };
}

export class SqliteMuc implements MucStore {
  private readonly s: SqliteStorage;
  constructor(s: SqliteStorage) { this.s = s; }

  async rooms(host: string): Promise<Array<{ room: MucRoomRecord; affiliations: MucAffiliationRecord[] }>> {
    const rooms = this.s.stmt('SELECT node, config, subject, secret, created_at FROM muc_rooms WHERE host = ? ORDER BY node').all(host) as Row[];
    const affs = this.s.stmt('SELECT node, jid, affiliation, nick, reason, notify FROM muc_affiliations WHERE host = ? ORDER BY node, jid').all(host) as Row[];
    const byNode = new Map<string, MucAffiliationRecord[]>();
    for (const a of affs) {
      const node = String(a.node);
      let list = byNode.get(node);
      if (!list) byNode.set(node, list = []);
      list.push(toAffiliation(a));
    }
    return rooms.map((r) => ({
      room: {
        node: String(r.node),
        config: String(r.config),
        subject: r.subject === null ? null : String(r.subject),
        secret: String(r.secret),
        createdAt: Number(r.created_at),
      },
      affiliations: byNode.get(String(r.node)) ?? [],
    }));
  }

  async saveRoom(host: string, room: MucRoomRecord, affiliations?: MucAffiliationRecord[]): Promise<void> {
    this.s.transaction(() => {
      this.s.stmt(
        `INSERT INTO muc_rooms (host, node, config, subject, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (host, node) DO UPDATE SET config = excluded.config, subject = excluded.subject, secret = excluded.secret`,
      ).run(host, room.node, room.config, room.subject, room.secret, room.createdAt);
      if (affiliations === undefined) return;
      this.s.stmt('DELETE FROM muc_affiliations WHERE host = ? AND node = ?').run(host, room.node);
      const insert = this.s.stmt('INSERT INTO muc_affiliations (host, node, jid, affiliation, nick, reason, notify) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const a of affiliations) insert.run(host, room.node, a.jid, a.affiliation, a.nick, a.reason, a.notify ? 1 : 0);
    });
  }

  async setAffiliation(host: string, node: string, jid: string, entry: Omit<MucAffiliationRecord, 'jid'> | undefined): Promise<void> {
    if (entry === undefined) {
      this.s.stmt('DELETE FROM muc_affiliations WHERE host = ? AND node = ? AND jid = ?').run(host, node, jid);
      return;
    }
    this.s.stmt(
      `INSERT INTO muc_affiliations (host, node, jid, affiliation, nick, reason, notify) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (host, node, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason, notify = excluded.notify`,
    ).run(host, node, jid, entry.affiliation, entry.nick, entry.reason, entry.notify ? 1 : 0);
  }

  async removeRoom(host: string, node: string): Promise<boolean> {
    return this.s.transaction(() => {
      this.s.stmt('DELETE FROM muc_affiliations WHERE host = ? AND node = ?').run(host, node);
      return Number(this.s.stmt('DELETE FROM muc_rooms WHERE host = ? AND node = ?').run(host, node).changes) > 0;
    });
  }
}
