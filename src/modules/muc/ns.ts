// The namespaces and status codes of XEP-0045 (Multi-User Chat) and the extensions rooms speak; they stay with
// the module that speaks them.
export const MUC_NS = {
  MUC: 'http://jabber.org/protocol/muc',
  USER: 'http://jabber.org/protocol/muc#user',
  ADMIN: 'http://jabber.org/protocol/muc#admin',
  OWNER: 'http://jabber.org/protocol/muc#owner',
  ROOMCONFIG: 'http://jabber.org/protocol/muc#roomconfig',
  ROOMINFO: 'http://jabber.org/protocol/muc#roominfo',
  REQUEST: 'http://jabber.org/protocol/muc#request',
  STABLE_ID: 'http://jabber.org/protocol/muc#stable_id',
  /** XEP-0410: the service answers an occupant's ping to its own occupant JID. */
  SELF_PING: 'http://jabber.org/protocol/muc#self-ping-optimization',
  /** XEP-0421. */
  OCCUPANT_ID: 'urn:xmpp:occupant-id:0',
  DATA: 'jabber:x:data',
  /** XEP-0249 direct invitations: client to client, the room never sees them. */
  CONFERENCE: 'jabber:x:conference',
  VCARD: 'vcard-temp',
  /** Parley's per-member setting for notifications while away from a members-only room (docs/muc.md). */
  PUSH: 'urn:parley:muc:push:0',
} as const;

/** The §15.6.2 status codes the service sends. */
export const STATUS = {
  NON_ANONYMOUS: '100',
  CONFIG_CHANGED: '104',
  SELF: '110',
  LOGGING_ON: '170',
  LOGGING_OFF: '171',
  NOW_NON_ANONYMOUS: '172',
  NOW_SEMI_ANONYMOUS: '173',
  CREATED: '201',
  NICK_ASSIGNED: '210',
  BANNED: '301',
  NEW_NICK: '303',
  KICKED: '307',
  AFFILIATION_CHANGE: '321',
  MEMBERS_ONLY: '322',
  ERROR_REMOVED: '333',
} as const;

export type StatusCode = (typeof STATUS)[keyof typeof STATUS];
