// `parley invite create [--host H] [--expires DAYS]`: a single-use invitation to register an account in-band
// (XEP-0401 token, redeemed through XEP-0445). Written to the database directly, which a running server reads on
// each redemption; the token is printed once and stored only as a digest.
import type { Config } from '../config/schema.ts';
import { openStorage } from '../storage/open.ts';
import { createInvite } from '../modules/register/invites.ts';

export const INVITE_USAGE = 'usage: parley invite create [--host H] [--expires DAYS]';

export async function inviteCommand(config: Config, positionals: string[], opts: { host?: string | undefined; expires?: string | undefined }): Promise<number> {
  if (positionals.length !== 1 || positionals[0] !== 'create') {
    process.stderr.write(`${INVITE_USAGE}\n`);
    return 64;
  }
  const wanted = (opts.host ?? config.hosts[0] as string).toLowerCase();
  // The host as configured: the server keys its data by that name.
  const host = config.hosts.find((h) => h.toLowerCase() === wanted);
  if (host === undefined) {
    process.stderr.write(`error: host ${wanted} is not served (served: ${config.hosts.join(', ')})\n`);
    return 1;
  }
  let expiresDays: number | undefined;
  if (opts.expires !== undefined) {
    expiresDays = Number(opts.expires);
    if (!Number.isFinite(expiresDays) || expiresDays <= 0) {
      process.stderr.write(`--expires takes a positive number of days\n${INVITE_USAGE}\n`);
      return 64;
    }
  }
  const storage = openStorage(config);
  try {
    const invite = await createInvite(storage.kv, host, { expiresDays });
    process.stdout.write(`${invite.token}\n${invite.uri}\n${invite.expires ? `expires ${invite.expires.toISOString()}` : 'does not expire'}\n`);
  } finally {
    storage.close();
  }
  return 0;
}
