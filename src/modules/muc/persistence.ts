// Persistent rooms in the storage backend (MucStore, keyed by the chat service's domain): a room is written when it
// becomes persistent and kept up to date while it is, read back at start-up, and removed (with its archive) when
// destroyed. Storage failures are logged, never turned into errors for users: the room goes on in memory.
import type { MucAffiliationRecord, MucRoomRecord } from '../../storage/types.ts';
import { Jid } from '../../xmpp/jid.ts';
import { decodeConfig, encodeConfig } from './config.ts';
import { defaultConfig } from './options.ts';
import { Room, type AffiliationEntry, type Subject } from './room.ts';
import type { MucService } from './service.ts';

function record(room: Room): MucRoomRecord {
  return {
    node: room.node,
    config: encodeConfig(room.config),
    subject: room.subject ? JSON.stringify(room.subject) : null,
    secret: room.secret,
    createdAt: room.createdAt,
  };
}

function affiliationRecords(room: Room): MucAffiliationRecord[] {
  return [...room.affiliations].map(([jid, a]) => ({ jid, affiliation: a.affiliation, nick: a.nick ?? null, reason: a.reason ?? null, notify: a.notify }));
}

/**
 * Keeps a persistent room's record (configuration, subject) up to date; a room that just became persistent is
 * stored whole, one that stopped being persistent is removed.
 */
export async function saveRoom(svc: MucService, room: Room): Promise<void> {
  try {
    if (room.config.persistent && !room.locked && !room.destroyed) {
      const whole = !room.stored;
      await svc.ctx.storage.muc.saveRoom(svc.domain, record(room), whole ? affiliationRecords(room) : undefined);
      room.stored = true;
    } else if (room.stored) {
      await svc.ctx.storage.muc.removeRoom(svc.domain, room.node);
      room.stored = false;
    }
  } catch (err) {
    svc.log.error({ err, room: room.jid.toString() }, 'saving a room failed');
  }
}

/** Writes one affiliation of a stored room (removed when the room no longer has it). */
export async function saveAffiliation(svc: MucService, room: Room, jid: string): Promise<void> {
  if (!room.stored) return;
  const a = room.affiliations.get(jid);
  try {
    await svc.ctx.storage.muc.setAffiliation(svc.domain, room.node, jid,
      a ? { affiliation: a.affiliation, nick: a.nick ?? null, reason: a.reason ?? null, notify: a.notify } : undefined);
  } catch (err) {
    svc.log.error({ err, room: room.jid.toString() }, 'saving an affiliation failed');
  }
}

/** The stored rooms, at start-up; a room whose record cannot be read is logged and left out. */
export async function loadRooms(svc: MucService): Promise<void> {
  const stored = await svc.ctx.storage.muc.rooms(svc.domain);
  for (const { room: r, affiliations } of stored) {
    try {
      const jid = Jid.of(r.node, svc.domain);
      const room = new Room({ node: r.node, jid, config: decodeConfig(r.config, defaultConfig(svc.options, r.node)), locked: false, secret: r.secret, createdAt: r.createdAt });
      room.config.historyLength = Math.min(room.config.historyLength, svc.options.max_history);
      room.history.setLimit(room.config.historyLength);
      room.subject = r.subject !== null ? (JSON.parse(r.subject) as Subject) : undefined;
      for (const a of affiliations) {
        const entry: AffiliationEntry = { affiliation: a.affiliation, nick: a.nick ?? undefined, reason: a.reason ?? undefined, notify: a.notify };
        room.affiliations.set(a.jid, entry);
      }
      room.stored = true;
      svc.rooms.set(r.node, room);
    } catch (err) {
      svc.log.error({ err, room: r.node }, 'a stored room could not be read');
    }
  }
}

/** Forgets a room: memory, storage and its archive. */
export async function discardRoom(svc: MucService, room: Room): Promise<void> {
  room.destroyed = true;
  if (svc.rooms.get(room.node) === room) svc.rooms.delete(room.node);
  svc.away.forget(room);
  try {
    if (room.stored) await svc.ctx.storage.muc.removeRoom(svc.domain, room.node);
    room.stored = false;
    await svc.ctx.storage.archive.removeAll(svc.domain, room.node);
  } catch (err) {
    svc.log.error({ err, room: room.jid.toString() }, 'removing a room failed');
  }
}
