// The internal backend: salted SCRAM keys in Parley's own database.
import { deriveScramCredentials, verifyPasswordWithScram } from '../c2s/sasl/credentials.ts';
import { StorageError } from '../core/errors.ts';
import { AccountError } from './account-error.ts';
import type { AuthBackend, AuthBackendContext } from './types.ts';

export function createInternalBackend(ctx: AuthBackendContext): AuthBackend {
  const { host, storage } = ctx;
  const credentials = (password: string) => {
    if (password.length === 0) throw new AccountError('INVALID_PASSWORD', 'empty password');
    try {
      return [deriveScramCredentials(password, 'SHA-1', ctx.scramIterations), deriveScramCredentials(password, 'SHA-256', ctx.scramIterations)];
    } catch {
      throw new AccountError('INVALID_PASSWORD', 'the password contains characters SASLprep prohibits');
    }
  };
  const notFound = (user: string) => (err: unknown): never => {
    if (err instanceof StorageError && err.code === 'NOT_FOUND') throw new AccountError('NOT_FOUND', `no user ${user}@${host}`);
    throw err;
  };
  return {
    method: 'internal',
    verification: 'scram',
    async getScramCredentials(user, hash) {
      return (await storage.accounts.get(host, user))?.scram.find((c) => c.hash === hash);
    },
    async checkPassword(user, password) {
      const account = await storage.accounts.get(host, user);
      const creds = account?.scram.find((c) => c.hash === 'SHA-256') ?? account?.scram[0];
      return creds !== undefined && verifyPasswordWithScram(password, creds) ? user : false;
    },
    userExists: (user) => storage.accounts.exists(host, user),
    async register(user, password) {
      try {
        await storage.accounts.create(host, user, credentials(password));
      } catch (err) {
        if (err instanceof StorageError && err.code === 'CONFLICT') throw new AccountError('EXISTS', `user ${user}@${host} already exists`);
        throw err;
      }
    },
    setPassword: (user, password) => storage.accounts.setCredentials(host, user, credentials(password)).catch(notFound(user)),
    remove: (user) => storage.accounts.remove(host, user).catch(notFound(user)),
    listUsers: () => storage.accounts.list(host),
  };
}
