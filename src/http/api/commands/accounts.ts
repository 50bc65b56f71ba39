// Account commands: register, unregister, change_password, check_account, registered_users. They go through
// the host's authentication backends (Accounts), as the CLI does.
import { removeUser } from '../../../admin/operations.ts';
import { OK, type ApiCommand } from './types.ts';

export const accountCommands: ApiCommand[] = [
  {
    name: 'register',
    async run(ctx) {
      const { host } = await ctx.account('user', 'host');
      const jid = await ctx.server.accounts.register(ctx.args.string('user'), host.name, ctx.args.string('password'));
      return `User ${jid} successfully registered`;
    },
  },
  {
    name: 'unregister',
    async run(ctx) {
      const { host, jid } = await ctx.account('user', 'host', { exists: true });
      await removeUser(ctx.server, jid.local, host.name);
      return OK;
    },
  },
  {
    name: 'change_password',
    async run(ctx) {
      const { host, jid } = await ctx.account('user', 'host', { exists: true });
      await ctx.server.accounts.setPassword(jid.local, host.name, ctx.args.string('newpass'));
      return OK;
    },
  },
  {
    // ejabberd's status code: 0 when the account exists, 1 when it does not.
    name: 'check_account',
    async run(ctx) {
      const { host, jid } = await ctx.account('user', 'host');
      return (await host.auth.userExists(jid.local)) ? 0 : 1;
    },
  },
  {
    name: 'registered_users',
    async run(ctx) {
      return ctx.server.accounts.list(ctx.host('host').name);
    },
  },
];
