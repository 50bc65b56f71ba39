// Builds each host's backend chain from its (merged, validated) auth configuration. Backends other than the
// internal one are loaded only when a host uses them.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { hostAuthConfig } from '../config/load.ts';
import type { Storage } from '../storage/types.ts';
import { createAnonymousBackend } from './anonymous.ts';
import { HostAuth } from './host-auth.ts';
import { createInternalBackend } from './internal.ts';
import type { AuthBackend, AuthBackendContext } from './types.ts';

export async function createHostAuth(config: Config, host: string, storage: Storage, log: Logger): Promise<HostAuth> {
  const auth = hostAuthConfig(config, host);
  const ctx: AuthBackendContext = { host, storage, log: log.child({ host, component: 'auth' }), scramIterations: auth.scram_iterations };
  const backends: AuthBackend[] = [];
  for (const method of auth.methods) {
    switch (method) {
      case 'internal':
        backends.push(createInternalBackend(ctx));
        break;
      case 'external':
        backends.push((await import('./external.ts')).createExternalBackend(auth.external!, ctx));
        break;
      case 'http':
        backends.push((await import('./http.ts')).createHttpBackend(auth.http!, ctx));
        break;
      case 'jwt':
        backends.push((await import('./jwt.ts')).createJwtBackend(auth.jwt!, ctx));
        break;
      case 'anonymous':
        backends.push(createAnonymousBackend());
        break;
    }
  }
  return new HostAuth(host, backends, auth.mechanisms, auth.brute_force, storage.kv);
}
