// Session commands: connected_users, connected_users_info, kick_session.
import { StanzaError, StreamError } from '../../../core/errors.ts';
import { Jid } from '../../../xmpp/jid.ts';
import type { C2sSession } from '../../../core/session.ts';
import type { CommandContext } from '../context.ts';
import { ApiError, badArgument } from '../errors.ts';
import { OK, type ApiCommand } from './types.ts';

/** Bound sessions on the hosts the caller may see, in JID order. */
function visibleSessions(ctx: CommandContext): Array<C2sSession & { jid: NonNullable<C2sSession['jid']> }> {
  const out: Array<C2sSession & { jid: NonNullable<C2sSession['jid']> }> = [];
  for (const s of ctx.server.sessions.sessions()) {
    if (s.jid && ctx.mayActOn(s.jid.domain)) out.push(s as C2sSession & { jid: NonNullable<C2sSession['jid']> });
  }
  return out.sort((a, b) => (a.jid.toString() < b.jid.toString() ? -1 : 1));
}

export const sessionCommands: ApiCommand[] = [
  {
    name: 'connected_users',
    run: (ctx) => visibleSessions(ctx).map((s) => s.jid.toString()),
  },
  {
    name: 'connected_users_info',
    run(ctx) {
      const now = Date.now();
      return visibleSessions(ctx).map((s) => ({
        jid: s.jid.toString(),
        // 'tls' (direct TLS) says it already; STARTTLS and the HTTP transports get the suffix when protected.
        connection: s.secure && s.transport !== 'tls' ? `${s.transport}_tls` : s.transport,
        ip: s.remoteAddress,
        priority: s.priority,
        uptime: Math.round((now - s.startedAt) / 1000),
        status: s.available ? s.presence?.getChildText('show') ?? 'available' : 'unavailable',
        resource: s.jid.resource,
        statustext: s.presence?.getChildText('status') ?? '',
      }));
    },
  },
  {
    name: 'kick_session',
    async run(ctx) {
      const { jid } = await ctx.account('user', 'host');
      const resource = ctx.args.string('resource');
      const reason = ctx.args.optionalString('reason');
      let full: Jid;
      try {
        full = Jid.of(jid.local, jid.domain, resource);
      } catch (err) {
        if (err instanceof StanzaError) throw badArgument('resource', `not a valid resource (${err.text ?? err.condition})`);
        throw err;
      }
      const session = ctx.server.sessions.get(full);
      if (!session) throw new ApiError('SESSION_NOT_FOUND', `no session ${full.toString()}`, { argument: 'resource' });
      session.close(new StreamError('policy-violation', reason || 'Kicked by an administrator'));
      return OK;
    },
  },
];
