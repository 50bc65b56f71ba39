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

export type OfflineMessage = {
  id: number;
  /** The stanza as stored (serialized XML, with its delay stamp). */
  stanza: string;
  from: string;
  storedAt: number;
};

export interface OfflineStore {
  /**
   * Stores a message for an account unless it already holds `quota` messages; the write is durable when the
   * promise resolves. Returns the new message's id and the count after storing, or undefined when over quota.
   */
  store(host: string, username: string, from: string, stanza: string, quota: number): Promise<{ id: number; count: number } | undefined>;
  count(host: string, username: string): Promise<number>;
  /** Stored messages in the order they arrived. */
  list(host: string, username: string, limit?: number): Promise<OfflineMessage[]>;
  remove(host: string, username: string, ids: number[]): Promise<void>;
  removeAll(host: string, username: string): Promise<number>;
}

export const OUTBOX_STATES = ['pending', 'delivered', 'dead'] as const;
export type OutboxState = (typeof OUTBOX_STATES)[number];

/** One durable job for a background sender (webhooks, push): retried with back-off, then dead-lettered. */
export type OutboxJob = {
  id: number;
  kind: string;
  payload: string;
  state: OutboxState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  createdAt: number;
};

export interface OutboxStore {
  add(host: string, kind: string, payload: string, at?: number): Promise<number>;
  /** Pending jobs of a kind whose next attempt is due, oldest first. */
  due(kind: string, now: number, limit: number): Promise<OutboxJob[]>;
  markDelivered(id: number): Promise<void>;
  /** Records a failed attempt: retried at `nextAttemptAt`, or dead when `dead` is set. */
  markFailed(id: number, error: string, nextAttemptAt: number, dead: boolean): Promise<void>;
  counts(kind?: string): Promise<Record<OutboxState, number>>;
  list(opts: { kind?: string; state?: OutboxState; limit: number }): Promise<OutboxJob[]>;
  /** Puts dead jobs back in the queue (operator action). */
  retryDead(kind?: string): Promise<number>;
  /** Drops delivered jobs older than a time, so the table does not grow forever. */
  purgeDelivered(olderThan: number): Promise<number>;
}

/** A XEP-0357 registration: notify `service` (an app server JID) on `node` when the account is away. */
export type PushRegistration = { service: string; node: string; options: string | null; createdAt: number };

export interface PushStore {
  /** Adds or replaces the registration for (service, node). */
  enable(host: string, username: string, reg: { service: string; node: string; options: string | null }): Promise<void>;
  /** Removes one node of a service, or every node of it when `node` is undefined; returns how many. */
  disable(host: string, username: string, service: string, node?: string): Promise<number>;
  list(host: string, username: string): Promise<PushRegistration[]>;
  /** Removes a node for every account (a push service learned the device token is gone). */
  removeNode(service: string, node: string): Promise<number>;
}

/** A small per-account key-value store for minor modules (vCards, private XML, last activity...). */
export interface KeyValueStore {
  get(host: string, username: string, ns: string, key: string): Promise<string | undefined>;
  /** Writes a value (durable when the promise resolves); undefined deletes it. */
  set(host: string, username: string, ns: string, key: string, value: string | undefined): Promise<void>;
  /** Every key and value of a namespace for an account. */
  entries(host: string, username: string, ns: string): Promise<Array<[string, string]>>;
}

/** A publish-subscribe node owned by an account (XEP-0163 PEP). */
export type PepNode = { node: string; config: string; createdAt: number };
export type PepItem = { id: string; payload: string; publisher: string; publishedAt: number };

export interface PepStore {
  getNode(host: string, username: string, node: string): Promise<PepNode | undefined>;
  listNodes(host: string, username: string): Promise<PepNode[]>;
  /** Creates the node or replaces its configuration (serialized by the module). */
  putNode(host: string, username: string, node: string, config: string): Promise<void>;
  /** Deletes a node and its items; returns whether it existed. */
  deleteNode(host: string, username: string, node: string): Promise<boolean>;
  /**
   * Publishes (or replaces) an item, then keeps at most `maxItems` newest items; returns the ids dropped.
   * Item order is publication order: a re-published id moves to the newest place.
   */
  publish(host: string, username: string, node: string, item: { id: string; payload: string; publisher: string }, maxItems: number): Promise<string[]>;
  retract(host: string, username: string, node: string, id: string): Promise<boolean>;
  /** Items newest first; all when `ids` is omitted, else those ids; at most `max`. */
  items(host: string, username: string, node: string, opts?: { ids?: string[]; max?: number }): Promise<PepItem[]>;
  purge(host: string, username: string, node: string): Promise<number>;
}

/** Which side of a conversation an archived message was on, seen from the archive's owner. */
export type ArchiveDirection = 'in' | 'out';

/** One message of a user's archive (XEP-0313). */
export type ArchivedMessage = {
  /** Opaque, unpredictable, unique within the archive and never reused (XEP-0313 §3, XEP-0359). */
  id: string;
  /** When it was archived, in ms; never decreases along the archive's order. */
  at: number;
  /** The other party: the recipient of an outgoing message, the sender of an incoming one. */
  with: string;
  direction: ArchiveDirection;
  /** The message as stored (serialized XML). */
  stanza: string;
};

/** Filters of an archive query; every one narrows the result set. */
export type ArchiveFilter = {
  /** A bare JID matches either party's bare address; a full JID matches exactly. */
  with?: string | undefined;
  /** Inclusive bounds on `at`, in ms. */
  start?: number | undefined;
  end?: number | undefined;
  /** Exclusive bounds by message id (XEP-0313 before-id/after-id); NOT_FOUND when unknown. */
  afterId?: string | undefined;
  beforeId?: string | undefined;
  /** Only these messages; NOT_FOUND when one is unknown. */
  ids?: string[] | undefined;
  /** Full-text search on the indexed text (see `ArchiveStore.fullText`): every word must occur. */
  text?: string | undefined;
};

/** XEP-0059 paging: `before` (an id, or '' for the last page) pages backwards, `after` or `index` forwards. */
export type ArchivePageRequest = { max: number; after?: string | undefined; before?: string | undefined; index?: number | undefined };

export type ArchivePage = {
  /** Oldest first, whatever the paging direction. */
  messages: ArchivedMessage[];
  /**
   * Messages matching the filters, ignoring paging; undefined when counting would mean reading a great many
   * rows (XEP-0059 §2.2 lets a server leave the count out then).
   */
  count: number | undefined;
  /** Position of the first message in the filtered set, when it is cheap to know. */
  firstIndex: number | undefined;
  /** No further message in the paging direction: the page was not cut by `max`. */
  complete: boolean;
};

export const ARCHIVE_DEFAULTS = ['always', 'never', 'roster'] as const;
export type ArchiveDefault = (typeof ARCHIVE_DEFAULTS)[number];
/** XEP-0441 preferences: JIDs always or never archived, and the rule for everyone else. */
export type ArchivePrefs = { default: ArchiveDefault; always: string[]; never: string[] };

export interface ArchiveStore {
  /** Whether `text` filters work, i.e. the backend has a full-text index. */
  readonly fullText: boolean;
  /**
   * Appends a message to a user's archive; durable when the promise resolves. `text`, when given, is indexed
   * for full-text search. Returns the new message's id and time.
   */
  append(host: string, username: string, entry: { with: string; direction: ArchiveDirection; stanza: string; text?: string | undefined }): Promise<{ id: string; at: number }>;
  /** One page of a user's archive; StorageError NOT_FOUND when an id in the filter or paging is not in it. */
  query(host: string, username: string, filter: ArchiveFilter, page: ArchivePageRequest): Promise<ArchivePage>;
  /** The oldest and newest messages of an archive (XEP-0313 metadata). */
  bounds(host: string, username: string): Promise<{ first: { id: string; at: number }; last: { id: string; at: number } } | undefined>;
  getPrefs(host: string, username: string): Promise<ArchivePrefs | undefined>;
  setPrefs(host: string, username: string, prefs: ArchivePrefs): Promise<void>;
  /** Removes a user's archive and preferences; returns how many messages. */
  removeAll(host: string, username: string): Promise<number>;
  /** Removes at most `limit` of a host's messages archived before `time`, oldest first; returns how many. */
  purge(host: string, time: number, limit: number): Promise<number>;
}

export interface Storage {
  readonly accounts: AccountStore;
  readonly roster: RosterStore;
  readonly offline: OfflineStore;
  readonly outbox: OutboxStore;
  readonly push: PushStore;
  readonly kv: KeyValueStore;
  readonly pep: PepStore;
  readonly archive: ArchiveStore;
  close(): void;
}
