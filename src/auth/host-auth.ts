// A host's chain of authentication backends, tried in the configured order as ejabberd's auth_method list is.
import type { ScramCredentials, ScramHash } from '../c2s/sasl/credentials.ts';
import type { SaslMechanismName } from '../c2s/sasl/mechanism.ts';
import { AccountError } from './account-error.ts';
import { anonymousUsername } from './anonymous.ts';
import type { AuthBackend } from './types.ts';
import { LoginFailures, type LoginFailureOptions } from './login-failures.ts';
import { FastTokens } from './fast-tokens.ts';
import type { KeyValueStore } from '../storage/types.ts';

export class HostAuth {
  readonly host: string;
  readonly backends: readonly AuthBackend[];
  private readonly preference: readonly string[];
  /** Failed logins per IP on this host (brute-force protection). */
  readonly failures: LoginFailures;
  /** XEP-0484 tokens of the host's accounts, when the host has storage for them. */
  readonly fastTokens: FastTokens | undefined;

  constructor(host: string, backends: AuthBackend[], preference: readonly string[], bruteForce: LoginFailureOptions, kv?: KeyValueStore) {
    this.host = host;
    this.backends = backends;
    this.preference = preference;
    this.failures = new LoginFailures(bruteForce);
    this.fastTokens = kv ? new FastTokens(kv, host) : undefined;
  }

  /** Mechanisms this host's backends can serve on a connection, in the configured order of preference. */
  offered(secure: boolean, channelBinding: boolean): SaslMechanismName[] {
    const scram = this.backends.some((b) => b.verification === 'scram');
    const plain = this.backends.some((b) => b.checkPassword !== undefined);
    const out = this.preference.filter((m) => {
      if (m === 'PLAIN') return secure && plain;
      if (m.endsWith('-PLUS')) return scram && secure && channelBinding;
      return m.startsWith('SCRAM-') && scram;
    }) as SaslMechanismName[];
    if (this.backends.some((b) => b.verification === 'anonymous')) out.push('ANONYMOUS');
    return out;
  }

  async getScramCredentials(user: string, hash: ScramHash): Promise<ScramCredentials | undefined> {
    for (const b of this.backends) {
      const c = await b.getScramCredentials?.(user, hash);
      if (c) return c;
    }
    return undefined;
  }

  /** The first backend that accepts the password wins; its answer names the user. */
  async checkPassword(user: string, password: string): Promise<string | false> {
    for (const b of this.backends) {
      if (!b.checkPassword) continue;
      const r = await b.checkPassword(user, password);
      if (r !== false) return r;
    }
    return false;
  }

  async userExists(user: string): Promise<boolean> {
    for (const b of this.backends) if (await b.userExists(user)) return true;
    return false;
  }

  anonymousUsername(): string {
    return anonymousUsername();
  }

  private first<K extends 'register' | 'setPassword' | 'remove' | 'listUsers'>(op: K): AuthBackend {
    const b = this.backends.find((x) => x[op] !== undefined);
    if (!b) throw new AccountError('NOT_SUPPORTED', `the authentication backends of ${this.host} cannot ${op === 'listUsers' ? 'list users' : op}`);
    return b;
  }

  register(user: string, password: string): Promise<void> {
    return (this.first('register').register as NonNullable<AuthBackend['register']>)(user, password);
  }

  async setPassword(user: string, password: string): Promise<void> {
    await this.changePassword(user, password);
    // A new password ends every FAST token (XEP-0484 §6): a stolen device must not outlive it.
    await this.fastTokens?.revokeAll(user);
  }

  private async changePassword(user: string, password: string): Promise<void> {
    // The password changes where the account lives.
    for (const b of this.backends) {
      if (b.setPassword && (await b.userExists(user))) return b.setPassword(user, password);
    }
    return (this.first('setPassword').setPassword as NonNullable<AuthBackend['setPassword']>)(user, password);
  }

  async remove(user: string): Promise<void> {
    for (const b of this.backends) {
      if (b.remove && (await b.userExists(user))) return b.remove(user);
    }
    return (this.first('remove').remove as NonNullable<AuthBackend['remove']>)(user);
  }

  async listUsers(): Promise<string[]> {
    const all = new Set<string>();
    for (const b of this.backends) for (const u of (await b.listUsers?.()) ?? []) all.add(u);
    return [...all].sort();
  }

  async close(): Promise<void> {
    for (const b of this.backends) await b.close?.();
  }
}
