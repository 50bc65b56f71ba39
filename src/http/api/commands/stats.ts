// Counters: get_offline_count, stats and stats_host, answered as ejabberd does ({value: n} and {stat: n}).
import type { Host } from '../../../core/host.ts';
import type { CommandContext } from '../context.ts';
import type { ApiCommand } from './types.ts';

const STATS = ['registeredusers', 'onlineusers', 'onlineusersnode', 'uptimeseconds'] as const;
const HOST_STATS = ['registeredusers', 'onlineusers'] as const;

async function stat(ctx: CommandContext, name: (typeof STATS)[number], hosts: Host[]): Promise<number> {
  switch (name) {
    case 'registeredusers': {
      let n = 0;
      for (const h of hosts) {
        // Accounts in Parley's own database are counted there, without listing them.
        const internalOnly = h.auth.backends.every((b) => b.method === 'internal');
        n += internalOnly ? await ctx.server.storage.accounts.count(h.name) : (await h.auth.listUsers()).length;
      }
      return n;
    }
    case 'onlineusers':
    case 'onlineusersnode': {
      const names = new Set(hosts.map((h) => h.jid.domain));
      let n = 0;
      for (const s of ctx.server.sessions.sessions()) if (s.jid && names.has(s.jid.domain)) n++;
      return n;
    }
    case 'uptimeseconds':
      return Math.floor((Date.now() - ctx.server.startedAt) / 1000);
  }
}

export const statsCommands: ApiCommand[] = [
  {
    name: 'get_offline_count',
    async run(ctx) {
      const { host, jid } = await ctx.account('user', 'host', { exists: true });
      return { value: await ctx.server.storage.offline.count(host.name, jid.local) };
    },
  },
  {
    name: 'stats',
    async run(ctx) {
      const name = ctx.args.choice('name', STATS);
      return { stat: await stat(ctx, name, ctx.visibleHosts()) };
    },
  },
  {
    name: 'stats_host',
    async run(ctx) {
      const name = ctx.args.choice('name', HOST_STATS);
      return { stat: await stat(ctx, name, [ctx.host('host')]) };
    },
  },
];
