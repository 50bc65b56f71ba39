// Roster changes made by an administrator (the REST API's add_rosteritem and delete_rosteritem), done by the
// roster module so they are versioned, pushed to the user's resources (RFC 6121 §2.1.6) and followed by the
// presence the new subscription state implies (RFC 6121 §3), as the equivalent subscription exchange would be.
import { xml } from '../../xml/element.ts';
import type { Host } from '../../core/host.ts';
import type { ModuleContext } from '../../core/module.ts';
import type { RosterItem, Subscription } from '../../storage/types.ts';
import type { Jid } from '../../xmpp/jid.ts';
import { hasFrom, hasTo, type RosterService } from './roster-service.ts';
import type { PresenceBroadcaster } from './presence.ts';
import { removeRosterItem } from './roster-iq.ts';

/** Sets an item of a local user's roster, subscription included. A handler returning true did it. */
export type RosterAdminSetEvent = { host: Host; user: Jid; contact: Jid; name: string | undefined; groups: string[]; subscription: Subscription };
/** Removes an item, cancelling its subscriptions as a client's remove does; `removed` tells whether it existed. */
export type RosterAdminRemoveEvent = { host: Host; user: Jid; contact: Jid; removed: boolean };

declare module '../../core/hook-map.ts' {
  interface HookMap {
    'roster/admin-set': RosterAdminSetEvent;
    'roster/admin-remove': RosterAdminRemoveEvent;
  }
}

export function registerAdminHooks(ctx: ModuleContext<unknown>, roster: RosterService, presence: PresenceBroadcaster): void {
  const { host, router, sessions } = ctx;

  ctx.hook('roster/admin-set', async (e) => {
    const user = e.user.bare;
    const contact = e.contact.bare;
    const existing = await roster.item(user, contact);
    const before = existing?.subscription ?? 'none';
    const after = e.subscription;
    const item: RosterItem = {
      jid: contact.bareString,
      name: e.name,
      groups: e.groups,
      subscription: after,
      // A direction the administrator settles is no longer pending.
      ask: (existing?.ask ?? false) && !hasTo(after),
      approved: (existing?.approved ?? false) && !hasFrom(after),
    };
    await roster.put(user, item);
    if (hasFrom(after)) await ctx.storage.roster.setPendingRequest(host.name, user.local, contact.bareString, null);
    // The contact starts or stops seeing the user (§3.1.5, §3.2.2).
    if (hasFrom(after) && !hasFrom(before)) presence.sendCurrentTo(user, contact);
    if (!hasFrom(after) && hasFrom(before)) presence.sendUnavailableTo(user, contact);
    // The user starts seeing the contact: a probe brings the contact's presence if the contact shares it (§4.3).
    if (hasTo(after) && !hasTo(before) && sessions.available(user).length > 0) {
      await router.route(xml('presence', { type: 'probe', from: user.toString(), to: contact.toString() }), user, contact);
    }
    // The user stops seeing the contact: its resources are told the contact is gone (§3.3.3).
    if (!hasTo(after) && hasTo(before)) {
      for (const s of sessions.available(user)) {
        for (const r of sessions.available(contact)) {
          if (s.jid && r.jid) s.send(xml('presence', { type: 'unavailable', from: r.jid.toString(), to: s.jid.toString() }));
        }
      }
    }
    return true;
  });

  ctx.hook('roster/admin-remove', async (e) => {
    e.removed = await removeRosterItem(roster, router, e.user.bare, e.contact.bare);
    return true;
  });
}
