// create_invite: a single-use invitation to register an account in-band (XEP-0401 token, redeemed through
// XEP-0445 by the register module), as `parley invite create` makes.
import { createInvite } from '../../../modules/register/invites.ts';
import { badArgument } from '../errors.ts';
import type { ApiCommand } from './types.ts';

export const inviteCommands: ApiCommand[] = [
  {
    name: 'create_invite',
    async run(ctx) {
      const host = ctx.host('host');
      let expiresDays: number | undefined;
      if (ctx.args.has('expires')) {
        expiresDays = Number(ctx.args.string('expires'));
        if (!Number.isFinite(expiresDays) || expiresDays <= 0) throw badArgument('expires', 'a positive number of days');
      }
      const invite = await createInvite(ctx.server.storage.kv, host.name, { expiresDays });
      return { token: invite.token, uri: invite.uri, expires: invite.expires?.toISOString() ?? null };
    },
  },
];
