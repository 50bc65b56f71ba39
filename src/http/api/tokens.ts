// REST API tokens: "ptk_<id>_<secret>". The id is public (listed, used to revoke); only a SHA-256 hash of the
// whole token is stored, so a copy of the database does not hand out working tokens. `parley api-token` runs
// these commands through the admin channel when the server runs, else on the database directly.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ApiToken, ApiTokenStore } from '../../storage/types.ts';

const TOKEN_RE = /^ptk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const DAY_MS = 86_400_000;

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A fresh token and its public id. */
export function newToken(): { id: string; token: string } {
  const id = randomBytes(8).toString('hex');
  return { id, token: `ptk_${id}_${randomBytes(32).toString('base64url')}` };
}

/** The id a presented token claims, or undefined when it does not have a token's shape. */
export function tokenId(token: string): string | undefined {
  return TOKEN_RE.exec(token)?.[1];
}

/** Whether the presented token is the stored one: the hashes are compared in constant time. */
export function tokenMatches(token: string, storedHash: Buffer): boolean {
  const h = hashToken(token);
  return h.length === storedHash.length && timingSafeEqual(h, storedHash);
}

export type ApiTokenCommand =
  | { sub: 'create'; name: string | undefined; host: string | undefined; expiresDays: number | undefined }
  | { sub: 'list' }
  | { sub: 'revoke'; id: string };

export type ApiTokenCommandResult =
  | { sub: 'create'; token: string; info: ApiToken }
  | { sub: 'list'; tokens: ApiToken[] }
  | { sub: 'revoke'; id: string; revoked: boolean };

export const API_TOKEN_USAGE = 'usage: api-token create [--name N] [--host H] [--expires DAYS] | api-token list | api-token revoke ID';

/** The admin channel's wire form: [create, name, host, days] ('' when absent), [list], [revoke, id]. */
export function apiTokenWireArgs(cmd: ApiTokenCommand): string[] {
  switch (cmd.sub) {
    case 'create': return ['create', cmd.name ?? '', cmd.host ?? '', cmd.expiresDays === undefined ? '' : String(cmd.expiresDays)];
    case 'list': return ['list'];
    case 'revoke': return ['revoke', cmd.id];
  }
}

/** Validates a command (wire form) against the served hosts; throws a usage message otherwise. */
export function parseApiTokenArgs(args: string[], hosts: readonly string[]): ApiTokenCommand {
  const [sub, a = '', b = '', c = '', ...rest] = args;
  if (rest.length > 0) throw new Error(API_TOKEN_USAGE);
  if (sub === 'list' && args.length === 1) return { sub: 'list' };
  if (sub === 'revoke' && args.length === 2 && a !== '') return { sub: 'revoke', id: a };
  if (sub === 'create') {
    const host = b === '' ? undefined : b.toLowerCase();
    if (host !== undefined && !hosts.some((h) => h.toLowerCase() === host)) {
      throw new Error(`api-token create: host ${b} is not served (served: ${hosts.join(', ')})`);
    }
    let expiresDays: number | undefined;
    if (c !== '') {
      expiresDays = Number(c);
      if (!Number.isFinite(expiresDays) || expiresDays <= 0) throw new Error(`api-token create: --expires takes a positive number of days, not ${c}`);
    }
    if (a.length > 200) throw new Error('api-token create: the name is longer than 200 characters');
    return { sub: 'create', name: a === '' ? undefined : a, host, expiresDays };
  }
  throw new Error(API_TOKEN_USAGE);
}

export async function runApiTokenCommand(store: ApiTokenStore, cmd: ApiTokenCommand, now = Date.now()): Promise<ApiTokenCommandResult> {
  switch (cmd.sub) {
    case 'create': {
      const { id, token } = newToken();
      const info: ApiToken = {
        id,
        name: cmd.name ?? null,
        host: cmd.host ?? null,
        createdAt: now,
        expiresAt: cmd.expiresDays === undefined ? null : now + Math.round(cmd.expiresDays * DAY_MS),
        lastUsedAt: null,
      };
      await store.create({ id, name: info.name, host: info.host, createdAt: info.createdAt, expiresAt: info.expiresAt, hash: hashToken(token) });
      return { sub: 'create', token, info };
    }
    case 'list':
      return { sub: 'list', tokens: await store.list() };
    case 'revoke':
      return { sub: 'revoke', id: cmd.id, revoked: await store.revoke(cmd.id) };
  }
}
