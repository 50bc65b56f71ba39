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
  /** Messages stored for all of a host's accounts (the metrics endpoint reports it). */
  total(host: string): Promise<number>;
  /** Stored messages in the order they arrived. */
  list(host: string, username: string, limit?: number): Promise<OfflineMessage[]>;
  remove(host: string, username: string, ids: number[]): Promise<void>;
  removeAll(host: string, username: string): Promise<number>;
  /**
   * Journals a message written to a session that acknowledges what it receives (XEP-0198), so a hard kill
   * cannot lose it: the row is durable by the next barrier() and stays out of count() and list() while held.
   * Rows still held when storage opens (the process died) become ordinary stored messages. The id is final at once.
   */
  hold(host: string, username: string, from: string, stanza: string): number;
  /** The client acknowledged these held messages: they are gone (durable by the next barrier()). */
  release(ids: number[]): void;
  /** The session ended without acknowledging them: the held rows become ordinary stored messages, the account's
   * count after that is returned. */
  unhold(host: string, username: string, ids: number[]): Promise<number>;
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
   * Appends a message to a user's archive; the id is final when the promise resolves, the row durable after
   * the next Storage.barrier() (rows are written in groups). `text`, when given, is indexed
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

/** A token for the REST API. Only a SHA-256 hash of the secret is kept; the token itself is shown once. */
export type ApiToken = {
  /** Public identifier, part of the token, used to list and revoke it. */
  id: string;
  name: string | null;
  /** The one host the token may act on; null for every host. */
  host: string | null;
  createdAt: number;
  /** ms since the epoch; null: never expires. */
  expiresAt: number | null;
  lastUsedAt: number | null;
};

export interface ApiTokenStore {
  create(token: Omit<ApiToken, 'lastUsedAt'> & { hash: Buffer }): Promise<void>; // CONFLICT if the id exists
  get(id: string): Promise<(ApiToken & { hash: Buffer }) | undefined>;
  list(): Promise<ApiToken[]>;
  /** Deletes the token; returns whether it existed. */
  revoke(id: string): Promise<boolean>;
  markUsed(id: string, at: number): Promise<void>;
}

/** A XEP-0363 upload slot: reserved when granted, `uploadedAt` set once its file is stored. */
export type UploadSlot = {
  host: string;
  /** Random, URL-safe; names the file's directory. */
  id: string;
  username: string;
  filename: string;
  size: number;
  /** As the client declared it in the slot request, or null when it gave none. */
  contentType: string | null;
  createdAt: number;
  /** The PUT must start before this time (ms). */
  expiresAt: number;
  uploadedAt: number | null;
};

/** What an account's slots hold against its quota: uploaded files since a time plus pending slots not yet expired. */
export type UploadUsage = { used: number; oldestUpload: number | undefined; firstPendingExpiry: number | undefined };

export interface UploadStore {
  /**
   * Records a slot unless the account's usage (files uploaded at or after `since`, plus pending slots expiring
   * after `slot.createdAt`) plus the slot's size exceeds `quota` (0: none); one transaction, so concurrent
   * requests cannot overshoot. Returns the usage that refused it, or undefined when reserved.
   */
  reserve(slot: UploadSlot, quota: number, since: number): Promise<UploadUsage | undefined>;
  get(host: string, id: string): Promise<UploadSlot | undefined>;
  /** Marks a pending slot uploaded; false when it is gone or already uploaded. */
  markUploaded(host: string, id: string, at: number): Promise<boolean>;
  listByOwner(host: string, username: string): Promise<UploadSlot[]>;
  /** Up to `limit` slots to clean: uploaded before `uploadedBefore` (when given), or pending and expired before `pendingBefore`. */
  expired(host: string, opts: { uploadedBefore?: number | undefined; pendingBefore: number; limit: number }): Promise<UploadSlot[]>;
  remove(host: string, ids: string[]): Promise<number>;
}

/** A stored (persistent) multi-user chat room (XEP-0045); stores are keyed by the chat service's domain. */
export type MucRoomRecord = {
  /** The room's localpart. */
  node: string;
  /** The room configuration, serialized by the module (JSON). */
  config: string;
  /** The subject, serialized by the module (JSON), or null when never set. */
  subject: string | null;
  /** The room's secret for occupant ids (XEP-0421), so they survive restarts. */
  secret: string;
  createdAt: number;
};

/** A long-lived affiliation with a room, by bare JID (or domain, for a ban). */
export type MucAffiliationRecord = {
  jid: string;
  affiliation: 'owner' | 'admin' | 'member' | 'outcast';
  nick: string | null;
  reason: string | null;
  /** The member's own choice to be notified of messages while away from the room. */
  notify: boolean;
};

export interface MucStore {
  /** Every stored room of a chat service, with its affiliations. */
  rooms(host: string): Promise<Array<{ room: MucRoomRecord; affiliations: MucAffiliationRecord[] }>>;
  /** Adds or replaces a room's record; with `affiliations`, also replaces its whole affiliation list (one transaction). */
  saveRoom(host: string, room: MucRoomRecord, affiliations?: MucAffiliationRecord[]): Promise<void>;
  /** Sets one affiliation of a stored room; undefined removes it. */
  setAffiliation(host: string, node: string, jid: string, entry: Omit<MucAffiliationRecord, 'jid'> | undefined): Promise<void>;
  /** Removes a room and its affiliations; returns whether it was stored. */
  removeRoom(host: string, node: string): Promise<boolean>;
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
  readonly upload: UploadStore;
  readonly apiTokens: ApiTokenStore;
  readonly muc: MucStore;
  /**
   * Resolves once every write issued before the call is durable (archive rows and journaled messages are written
   * behind, in groups): what the server acknowledges to a client waits for this.
   */
  barrier(): Promise<void>;
  /** A trivial query: resolves when the backend answers, rejects otherwise (the health check). */
  ping(): Promise<void>;
  close(): void;
}
