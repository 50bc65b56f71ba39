// Who is calling the REST API: a bearer API token (RFC 6750), or an administrator's JID and password over HTTP
// Basic (RFC 7617) checked by the host's authentication backends. Failed attempts count towards the same
// per-IP refusal as failed client logins (LoginFailures).
import type { ParleyServer } from '../../server.ts';
import { LoginFailures } from '../../auth/login-failures.ts';
import { Jid } from '../../xmpp/jid.ts';
import { ApiError } from './errors.ts';
import { tokenId, tokenMatches } from './tokens.ts';

export type ApiCaller = {
  /** For logs: "token <id>" or the admin's JID; never a secret. */
  readonly who: string;
  /** Hosts the caller may act on; undefined: every host, and JIDs of other domains as senders. */
  readonly hosts: ReadonlySet<string> | undefined;
};

const CHALLENGE = { 'WWW-Authenticate': 'Bearer realm="parley", Basic realm="parley", charset="UTF-8"' };
/** last_used_at is written at most this often per token. */
const TOUCH_INTERVAL_MS = 60_000;

export class ApiAuthenticator {
  private readonly server: ParleyServer;
  private readonly basic: boolean;
  /** Failed bearer tokens per IP (passwords count on their host's own LoginFailures). */
  private readonly failures: LoginFailures;
  private readonly touched = new Map<string, number>();

  constructor(server: ParleyServer, opts: { basic: boolean }) {
    this.server = server;
    this.basic = opts.basic;
    this.failures = new LoginFailures(server.config.auth.brute_force);
  }

  async authenticate(header: string | undefined, ip: string): Promise<ApiCaller> {
    if (header === undefined || header.trim() === '') throw new ApiError('AUTH_REQUIRED', 'credentials required: an API token (Bearer) or an admin JID and password (Basic)', { headers: CHALLENGE });
    if (this.failures.isBanned(ip)) throw tooMany();
    const space = header.indexOf(' ');
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer') return this.bearer(value, ip);
    if (scheme === 'basic' && this.basic) return this.basicAuth(value, ip);
    throw new ApiError('AUTH_REQUIRED', `unsupported authorization scheme ${scheme}`, { headers: CHALLENGE });
  }

  private async bearer(token: string, ip: string): Promise<ApiCaller> {
    const id = tokenId(token);
    const stored = id === undefined ? undefined : await this.server.storage.apiTokens.get(id);
    if (!stored || !tokenMatches(token, stored.hash)) {
      this.failures.recordFailure(ip);
      throw invalid();
    }
    const now = Date.now();
    if (stored.expiresAt !== null && stored.expiresAt <= now) throw new ApiError('TOKEN_EXPIRED', `API token ${stored.id} has expired`, { headers: CHALLENGE });
    if ((this.touched.get(stored.id) ?? 0) + TOUCH_INTERVAL_MS <= now) {
      this.touched.set(stored.id, now);
      await this.server.storage.apiTokens.markUsed(stored.id, now);
    }
    return { who: `token ${stored.id}`, hosts: stored.host === null ? undefined : new Set([stored.host]) };
  }

  private async basicAuth(value: string, ip: string): Promise<ApiCaller> {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const jid = colon > 0 ? Jid.tryParse(decoded.slice(0, colon)) : undefined;
    const host = jid ? this.server.hosts.get(jid.domain) : undefined;
    if (!jid || !host || jid.local === '' || jid.resource !== '') {
      this.failures.recordFailure(ip);
      throw invalid();
    }
    const failures = host.auth.failures;
    if (failures.isBanned(ip)) throw tooMany();
    const user = await host.auth.checkPassword(jid.local, decoded.slice(colon + 1));
    if (user === false) {
      failures.recordFailure(ip, jid.bareString);
      throw invalid();
    }
    const admin = Jid.of(user, host.name);
    const hosts = [...this.server.hosts].filter(([, h]) => h.isAdmin(admin)).map(([key]) => key);
    if (hosts.length === 0) throw new ApiError('FORBIDDEN', `${admin.toString()} is not an administrator`);
    return { who: admin.toString(), hosts: hosts.length === this.server.hosts.size ? undefined : new Set(hosts) };
  }
}

const invalid = (): ApiError => new ApiError('INVALID_CREDENTIALS', 'invalid credentials', { headers: CHALLENGE });
const tooMany = (): ApiError => new ApiError('TOO_MANY_FAILURES', 'too many failed attempts from your address; try again later');
