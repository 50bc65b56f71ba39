// One interface per storage concern; a backend implements all of them.
import type { ScramCredentials } from '../c2s/sasl/credentials.ts';

export type AccountRecord = {
  host: string;
  username: string;
  /** Stored SCRAM keys, one set per hash; plaintext passwords are never stored. */
  scram: ScramCredentials[];
  createdAt: number;
};

export interface AccountStore {
  create(host: string, username: string, scram: ScramCredentials[]): Promise<void>; // StorageError CONFLICT if it exists
  get(host: string, username: string): Promise<AccountRecord | undefined>;
  exists(host: string, username: string): Promise<boolean>;
  setCredentials(host: string, username: string, scram: ScramCredentials[]): Promise<void>; // NOT_FOUND
  /** Removes the account and everything stored for it. */
  remove(host: string, username: string): Promise<void>; // NOT_FOUND
  list(host: string): Promise<string[]>;
  count(host: string): Promise<number>;
}

export const SUBSCRIPTIONS = ['none', 'to', 'from', 'both'] as const;
export type Subscription = (typeof SUBSCRIPTIONS)[number];

export type RosterItem = {
  jid: string; // bare JID of the contact
  name?: string | undefined;
  subscription: Subscription;
  /** Outbound subscription request pending (ask='subscribe'). */
  ask: boolean;
  /** Inbound subscription pre-approved by the user (RFC 6121 §3.4). */
  approved: boolean;
  groups: string[];
};

export interface RosterStore {
  /** All items with their current version. */
  get(host: string, username: string): Promise<{ version: number; items: RosterItem[] }>;
  getItem(host: string, username: string, contact: string): Promise<RosterItem | undefined>;
  /** Writes an item and bumps the roster version; returns the new version. */
  put(host: string, username: string, item: RosterItem): Promise<number>;
  /** Deletes an item and bumps the version; returns the new version. */
  delete(host: string, username: string, contact: string): Promise<number>;
  /** Pending inbound subscription requests (RFC 6121 §3.1.3), with the stanza to redeliver at next login. */
  pendingRequests(host: string, username: string): Promise<Array<{ from: string; stanza: string }>>;
  setPendingRequest(host: string, username: string, from: string, stanza: string | null): Promise<void>;
}

export interface Storage {
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  close(): void;
}
