// Account operations shared by the CLI, the admin channel, in-band registration and (later) the REST API.
// Each goes through the host's authentication backends, so an external user database is managed in place.
import type { HostAuth } from './auth/host-auth.ts';
import { AccountError } from './auth/account-error.ts';
import { StanzaError } from './core/errors.ts';
import { prepareLocalpart } from './xmpp/precis.ts';

export { AccountError };

export class Accounts {
  private readonly auth: ReadonlyMap<string, HostAuth>;

  constructor(auth: ReadonlyMap<string, HostAuth>) {
    this.auth = auth;
  }

  /** Normalizes a username to its JID localpart, or explains why it cannot be one. */
  username(raw: string): string {
    try {
      return prepareLocalpart(raw);
    } catch (err) {
      throw new AccountError('INVALID_USERNAME', `invalid username "${raw}": ${err instanceof StanzaError ? err.text ?? err.condition : String(err)}`);
    }
  }

  hostAuth(raw: string): HostAuth {
    const auth = this.auth.get(raw.toLowerCase());
    if (!auth) throw new AccountError('HOST_UNKNOWN', `host ${raw} is not served (served: ${[...this.auth.keys()].join(', ')})`);
    return auth;
  }

  async register(user: string, host: string, password: string): Promise<string> {
    const auth = this.hostAuth(host);
    const u = this.username(user);
    await auth.register(u, password);
    return `${u}@${auth.host}`;
  }

  async setPassword(user: string, host: string, password: string): Promise<string> {
    const auth = this.hostAuth(host);
    const u = this.username(user);
    await auth.setPassword(u, password);
    return `${u}@${auth.host}`;
  }

  /** XEP-0484: forgets every FAST token of an account (`parley fast-revoke`); returns how many clients had one. */
  async revokeFastTokens(user: string, host: string): Promise<{ jid: string; revoked: number }> {
    const auth = this.hostAuth(host);
    const u = this.username(user);
    if (!auth.fastTokens) throw new AccountError('NOT_SUPPORTED', `${auth.host} keeps no FAST tokens`);
    return { jid: `${u}@${auth.host}`, revoked: await auth.fastTokens.revokeAll(u) };
  }

  async unregister(user: string, host: string): Promise<string> {
    const auth = this.hostAuth(host);
    const u = this.username(user);
    await auth.remove(u);
    return `${u}@${auth.host}`;
  }

  async list(host: string): Promise<string[]> {
    return this.hostAuth(host).listUsers();
  }
}
