// XEP-0045: Multi-User Chat <https://xmpp.org/extensions/xep-0045.html> 1.35.5 — a chat service per host on its own
// JID (conference.<host> by default), with persistent rooms, room archives (XEP-0313 with XEP-0359 stanza-ids),
// XEP-0421 occupant ids, XEP-0410 self-pings, and notifications for members away from members-only rooms.
import { ConfigError } from '../../core/errors.ts';
import type { ServerServices } from '../../core/host.ts';
import { defineModule } from '../../core/module.ts';
import { Jid } from '../../xmpp/jid.ts';
import { historyFromArchive } from './archive.ts';
import { occupantIq, roomIq } from './iq.ts';
import { handleMessage } from './messages.ts';
import { MucOptions } from './options.ts';
import { handlePresence, leave } from './presence.ts';
import { MucService } from './service.ts';
import { loadRooms, saveAffiliation } from './persistence.ts';

/** Every chat service of a server: a session ending on any host takes its devices out of every room. */
const services = new WeakMap<ServerServices, Set<MucService>>();

/** Rows removed per purge step of expired archive messages; the event loop gets a turn between steps. */
const PURGE_STEP = 1000;

export default defineModule({
  id: 'muc',
  xeps: [
    { xep: 45, version: '1.35.5', status: 'complete' },
    { xep: 421, version: '1.0.0', status: 'complete' },
    { xep: 410, version: '1.1.0', status: 'complete' },
  ],
  options: MucOptions,
  async setup(ctx) {
    const { host, options: o } = ctx;
    const jid = Jid.tryParse(o.jid ?? `conference.${host.name}`);
    if (!jid || jid.local !== '' || jid.resource !== '') throw new ConfigError([`modules.muc.jid: must be a bare domain, got ${o.jid}`]);
    const svc = new MucService(ctx, jid, { presence: handlePresence, message: handleMessage, roomIq, occupantIq });
    await loadRooms(svc);
    for (const room of svc.rooms.values()) {
      await historyFromArchive(svc, room).catch((err: unknown) => ctx.log.error({ err, room: room.jid.toString() }, 'history could not be read from the archive'));
    }
    try {
      ctx.onStop(ctx.router.addRoute(jid.domain, svc.deliver));
    } catch (err) {
      // A host's own name, or the same jid for two hosts (set jid per host then).
      throw new ConfigError([`modules.muc.jid: ${(err as Error).message}`]);
    }
    ctx.disco.item({ jid: jid.toString(), name: o.name });

    let all = services.get(ctx.server);
    if (!all) services.set(ctx.server, all = new Set());
    all.add(svc);
    ctx.onStop(() => {
      all.delete(svc);
      svc.proxy.clear();
    });

    // RFC 6121 §4.6.3 has the user's server send unavailable presence where directed presence went; a session that
    // never sent initial presence, or whose server (this one) closes it, is taken out here all the same.
    ctx.hook('session/closed', async ({ session }) => {
      const full = session.jid;
      if (!full) return;
      for (const s of services.get(ctx.server) ?? []) {
        for (const room of [...s.rooms.values()]) {
          if (!room.bySession.has(full.toString())) continue;
          await s.serial(room.node, async () => {
            const occ = room.bySession.get(full.toString());
            if (occ) await leave(s, room, occ, full);
          }).catch((err: unknown) => ctx.log.error({ err, room: room.jid.toString() }, 'removing a closed session from a room failed'));
        }
      }
    });

    // A removed account keeps no affiliations here, except a ban, and an only owner's, so no room is left ownerless.
    ctx.hook('account/removed', async ({ user }) => {
      for (const room of svc.rooms.values()) {
        const a = room.affiliations.get(user.bareString);
        if (!a || a.affiliation === 'outcast' || (a.affiliation === 'owner' && room.list('owner').length === 1)) continue;
        room.affiliations.delete(user.bareString);
        await saveAffiliation(svc, room, user.bareString);
      }
    });

    ctx.timer(60_000, () => svc.away.sweep(Date.now()));

    if (o.archive_retention_days > 0) {
      let running = false;
      const purge = async (): Promise<void> => {
        if (running) return;
        running = true;
        try {
          const before = Date.now() - o.archive_retention_days * 86_400_000;
          while ((await ctx.storage.archive.purge(jid.domain, before, PURGE_STEP)) === PURGE_STEP) {
            await new Promise<void>((resolve) => setImmediate(resolve));
          }
        } catch (err) {
          ctx.log.error({ err }, 'removing expired room archive messages failed');
        } finally {
          running = false;
        }
      };
      ctx.timer(3_600_000, () => void purge());
      const first = setTimeout(() => void purge(), 0);
      ctx.onStop(() => clearTimeout(first));
    }
    ctx.log.info({ jid: jid.toString(), rooms: svc.rooms.size }, 'chat service ready');
  },
});
