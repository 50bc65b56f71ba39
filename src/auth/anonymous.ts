// SASL ANONYMOUS guests (RFC 4505): a random localpart per login; nothing is stored.
import { randomBytes } from 'node:crypto';
import type { AuthBackend } from './types.ts';

export function createAnonymousBackend(): AuthBackend {
  return {
    method: 'anonymous',
    verification: 'anonymous',
    // A guest exists while it is connected; routing finds its sessions before it asks.
    userExists: async () => false,
  };
}

export function anonymousUsername(): string {
  return `guest-${randomBytes(8).toString('hex')}`;
}
