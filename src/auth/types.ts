// Authentication backends: where a host's accounts live and how their passwords are checked.
import type { Logger } from 'pino';
import type { ScramCredentials, ScramHash } from '../c2s/sasl/credentials.ts';
import type { Storage } from '../storage/types.ts';

export const AUTH_METHODS = ['internal', 'external', 'http', 'jwt', 'anonymous'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** How a backend's passwords can be checked, which decides the SASL mechanisms a host offers. */
export type Verification = 'scram' | 'plain' | 'anonymous';

export interface AuthBackend {
  readonly method: AuthMethod;
  /** 'scram': stored SCRAM keys (SCRAM and PLAIN); 'plain': a plaintext check only (PLAIN over TLS); 'anonymous'. */
  readonly verification: Verification;
  /** Stored SCRAM keys of a user (backends with 'scram' verification). */
  getScramCredentials?(user: string, hash: ScramHash): Promise<ScramCredentials | undefined>;
  /**
   * Checks a plaintext password. Returns the authenticated localpart (usually `user`; a JWT backend takes it from
   * a claim) or false. Throws only for backend failures (timeouts, a dead program), never for a wrong password.
   */
  checkPassword?(user: string, password: string): Promise<string | false>;
  /** Whether the account exists; unknown accounts get service-unavailable when routed to. */
  userExists(user: string): Promise<boolean>;
  /** Account management, where the backend supports it. register throws AccountError('EXISTS') for a taken name. */
  register?(user: string, password: string): Promise<void>;
  setPassword?(user: string, password: string): Promise<void>;
  remove?(user: string): Promise<void>;
  listUsers?(): Promise<string[]>;
  close?(): void | Promise<void>;
}

export type AuthBackendContext = {
  host: string;
  storage: Storage;
  log: Logger;
  scramIterations: number;
};
