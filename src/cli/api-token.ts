// `parley api-token create|list|revoke`: REST API tokens, through the running server's admin channel, else on the
// database directly. A new token is printed once, alone on stdout, so scripts can capture it.
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { openStorage } from '../storage/open.ts';
import type { ApiToken } from '../storage/types.ts';
import {
  API_TOKEN_USAGE, parseApiTokenArgs, runApiTokenCommand, type ApiTokenCommand, type ApiTokenCommandResult,
} from '../http/api/tokens.ts';
import { adminRequest } from './admin-client.ts';

export type ApiTokenOptions = { name?: string | undefined; host?: string | undefined; expires?: string | undefined };

/** Positionals after `api-token` and the --name/--host/--expires options, in the admin channel's wire form. */
function wireArgs(positionals: string[], opts: ApiTokenOptions): string[] {
  const [sub, ...rest] = positionals;
  const hasOptions = opts.name !== undefined || opts.host !== undefined || opts.expires !== undefined;
  if (sub === 'create' && rest.length === 0) return ['create', opts.name ?? '', opts.host ?? '', opts.expires ?? ''];
  if (sub === 'list' && rest.length === 0 && !hasOptions) return ['list'];
  if (sub === 'revoke' && rest.length === 1 && !hasOptions) return ['revoke', rest[0] as string];
  throw new Error(API_TOKEN_USAGE);
}

export async function apiTokenCommand(config: Config, positionals: string[], opts: ApiTokenOptions): Promise<number> {
  let wire: string[];
  let command: ApiTokenCommand;
  try {
    wire = wireArgs(positionals, opts);
    command = parseApiTokenArgs(wire, config.hosts);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 64;
  }
  let result: ApiTokenCommandResult;
  const response = await adminRequest(config.admin_socket ?? join(config.data_dir, 'parley.sock'), 'api-token', wire);
  if (response) {
    if (!response.ok) {
      process.stderr.write(`error: ${response.error}\n`);
      return 1;
    }
    result = response.result as ApiTokenCommandResult;
  } else {
    const storage = openStorage(config);
    try {
      result = await runApiTokenCommand(storage.apiTokens, command);
    } finally {
      storage.close();
    }
  }
  return print(result);
}

const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());

function print(result: ApiTokenCommandResult): number {
  switch (result.sub) {
    case 'create': {
      const t = result.info;
      process.stdout.write(`${result.token}\n`);
      process.stderr.write(`created API token ${t.id}${t.name ? ` (${t.name})` : ''} for ${t.host ?? 'every host'}, `
        + `${t.expiresAt === null ? 'never expires' : `expires ${time(t.expiresAt)}`}; it is shown only this once\n`);
      return 0;
    }
    case 'list': {
      const now = Date.now();
      const row = (cells: string[]): boolean => process.stdout.write(cells.join('\t') + '\n');
      row(['ID', 'NAME', 'HOST', 'CREATED', 'EXPIRES', 'LAST USED']);
      for (const t of result.tokens as ApiToken[]) {
        const expires = t.expiresAt !== null && t.expiresAt <= now ? `${time(t.expiresAt)} (expired)` : time(t.expiresAt);
        row([t.id, t.name ?? '-', t.host ?? '*', time(t.createdAt), expires, time(t.lastUsedAt)]);
      }
      return 0;
    }
    case 'revoke':
      if (!result.revoked) {
        process.stderr.write(`error: no API token ${result.id}\n`);
        return 1;
      }
      process.stdout.write(`revoked API token ${result.id}\n`);
      return 0;
  }
}
