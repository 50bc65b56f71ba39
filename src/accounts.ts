// Account operations shared by the CLI, the admin channel and (later) in-band registration and the REST API.
import { deriveScramCredentials } from './c2s/sasl/credentials.ts';
import { StanzaError, StorageError } from './core/errors.ts';
import type { Storage } from './storage/types.ts';
import { prepareLocalpart } from './xmpp/precis.ts';

export class AccountError extends Error {
  readonly code: 'HOST_UNKNOWN' | 'INVALID_USERNAME' | 'INVALID_PASSWORD' | 'EXISTS' | 'NOT_FOUND';
  constructor(code: AccountError['code'], message: string) {
    super(message);
    this.name = 'AccountError';
    this.code = code;
  }
}

export class Accounts {
  private readonly storage: Storage;
  private readonly hosts: readonly string[];
  private readonly iterations: number;

  constructor(storage: Storage, hosts: readonly string[], iterations: number) {
    this.storage = storage;
    this.hosts = hosts;
    this.iterations = iterations;
  }

  /** Normalizes a username to its JID localpart, or explains why it cannot be one. */
  username(raw: string): string {
    try {
      return prepareLocalpart(raw);
    } catch (err) {
      throw new AccountError('INVALID_USERNAME', `invalid username "${raw}": ${err instanceof StanzaError ? err.text ?? err.condition : String(err)}`);
    }
  }

  host(raw: string): string {
    const host = raw.toLowerCase();
    if (!this.hosts.includes(host)) throw new AccountError('HOST_UNKNOWN', `host ${raw} is not served (served: ${this.hosts.join(', ')})`);
    return host;
  }

  private credentials(password: string) {
    if (password.length === 0) throw new AccountError('INVALID_PASSWORD', 'empty password');
    try {
      return [deriveScramCredentials(password, 'SHA-1', this.iterations), deriveScramCredentials(password, 'SHA-256', this.iterations)];
    } catch {
      throw new AccountError('INVALID_PASSWORD', 'the password contains characters SASLprep prohibits');
    }
  }

  async register(user: string, host: string, password: string): Promise<string> {
    const h = this.host(host);
    const u = this.username(user);
    try {
      await this.storage.accounts.create(h, u, this.credentials(password));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'CONFLICT') throw new AccountError('EXISTS', `user ${u}@${h} already exists`);
      throw err;
    }
    return `${u}@${h}`;
  }

  async setPassword(user: string, host: string, password: string): Promise<string> {
    const h = this.host(host);
    const u = this.username(user);
    try {
      await this.storage.accounts.setCredentials(h, u, this.credentials(password));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NOT_FOUND') throw new AccountError('NOT_FOUND', `no user ${u}@${h}`);
      throw err;
    }
    return `${u}@${h}`;
  }

  async unregister(user: string, host: string): Promise<string> {
    const h = this.host(host);
    const u = this.username(user);
    try {
      await this.storage.accounts.remove(h, u);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NOT_FOUND') throw new AccountError('NOT_FOUND', `no user ${u}@${h}`);
      throw err;
    }
    return `${u}@${h}`;
  }

  async list(host: string): Promise<string[]> {
    return this.storage.accounts.list(this.host(host));
  }
}
