// Roster commands: get_roster, add_rosteritem, delete_rosteritem. Changes are made by the roster module (through
// its roster/admin-* hooks), so they are pushed to the user's online resources with the presence that follows.
import { StanzaError } from '../../../core/errors.ts';
import { SUBSCRIPTIONS } from '../../../storage/types.ts';
import { Jid } from '../../../xmpp/jid.ts';
import type { RosterAdminRemoveEvent, RosterAdminSetEvent } from '../../../modules/roster/admin.ts';
import type { CommandContext } from '../context.ts';
import { ApiError, badArgument } from '../errors.ts';
import { OK, type ApiCommand } from './types.ts';

/** The limits a client's roster set has (RFC 6121 leaves them to the server; the roster module uses these). */
const MAX_TEXT = 1023;

function contactJid(ctx: CommandContext): Jid {
  const user = ctx.args.string('user');
  const host = ctx.args.string('host');
  try {
    return Jid.of(user, host);
  } catch (err) {
    if (err instanceof StanzaError) throw badArgument('user', `${user}@${host} is not a valid JID (${err.text ?? err.condition})`);
    throw err;
  }
}

/** `groups` as a list (ejabberd 24.02 and later), or `group` as one string with ';' between names (before). */
function groupsArg(ctx: CommandContext): string[] {
  const arg = ctx.args.has('groups') ? 'groups' : 'group';
  const raw = arg === 'groups' ? ctx.args.stringList('groups') : (ctx.args.optionalString('group') ?? '').split(';');
  const groups = [...new Set(raw.filter((g) => g !== ''))];
  if (groups.some((g) => g.length > MAX_TEXT)) throw badArgument(arg, `group names are at most ${MAX_TEXT} characters`);
  return groups;
}

const notLoaded = (host: string): ApiError => new ApiError('NOT_SUPPORTED', `the roster module is not loaded on ${host}`);

export const rosterCommands: ApiCommand[] = [
  {
    name: 'get_roster',
    async run(ctx) {
      const { host, jid } = await ctx.account('user', 'host', { exists: true });
      const [{ items }, requests] = await Promise.all([
        ctx.server.storage.roster.get(host.name, jid.local),
        ctx.server.storage.roster.pendingRequests(host.name, jid.local),
      ]);
      const incoming = new Set(requests.map((r) => r.from));
      // ejabberd's shape: pending says which subscription requests wait for an answer.
      return items.map((i) => ({
        jid: i.jid,
        nick: i.name ?? '',
        subscription: i.subscription,
        pending: i.ask && incoming.has(i.jid) ? 'both' : i.ask ? 'out' : incoming.has(i.jid) ? 'in' : 'none',
        groups: i.groups,
      }));
    },
  },
  {
    name: 'add_rosteritem',
    async run(ctx) {
      const { host, jid } = await ctx.account('localuser', 'localhost', { exists: true });
      const contact = contactJid(ctx);
      if (contact.equals(jid)) throw badArgument('user', 'a user is not a contact of itself');
      const nick = ctx.args.optionalString('nick') ?? '';
      if (nick.length > MAX_TEXT) throw badArgument('nick', `at most ${MAX_TEXT} characters`);
      const event: RosterAdminSetEvent = {
        host, user: jid, contact, name: nick === '' ? undefined : nick, groups: groupsArg(ctx),
        subscription: ctx.args.choice('subs', SUBSCRIPTIONS, 'none'),
      };
      if (!(await host.bus.run('roster/admin-set', event))) throw notLoaded(host.name);
      return OK;
    },
  },
  {
    name: 'delete_rosteritem',
    async run(ctx) {
      const { host, jid } = await ctx.account('localuser', 'localhost', { exists: true });
      const event: RosterAdminRemoveEvent = { host, user: jid, contact: contactJid(ctx), removed: false };
      if (!(await host.bus.run('roster/admin-remove', event))) throw notLoaded(host.name);
      if (!event.removed) throw new ApiError('ITEM_NOT_FOUND', `${event.contact.toString()} is not in the roster of ${jid.toString()}`);
      return OK;
    },
  },
];
