// The muc module's options: the service, its limits, room defaults, archives and notifications for away members.
import { z } from 'zod';
import { ALLOW_PM, ARCHIVE_DEFAULTS, WHOIS, type RoomConfig } from './config.ts';

const RoomDefaults = z.strictObject({
  persistent: z.boolean().default(false).describe('new rooms are persistent'),
  public: z.boolean().default(true).describe('new rooms are listed in discovery'),
  members_only: z.boolean().default(false).describe('new rooms admit members only'),
  moderated: z.boolean().default(false).describe('new rooms are moderated (unaffiliated occupants enter as visitors)'),
  whois: z.enum(WHOIS).default('moderators').describe('who sees real JIDs in new rooms: moderators (semi-anonymous) or anyone'),
  history_length: z.number().int().min(0).default(20).describe('history messages new rooms keep and send on joining'),
  allow_invites: z.boolean().default(false).describe('members of members-only rooms may invite (and so add members)'),
  allow_pm: z.enum(ALLOW_PM).default('anyone').describe('who may send private messages: anyone, participants, moderators or none'),
  change_subject: z.boolean().default(false).describe('participants, not only moderators, may change the subject'),
  push_away: z.boolean().default(true).describe('members away from members-only rooms are notified of messages'),
});

export const MucOptions = z.strictObject({
  jid: z.string().min(1).optional().describe('the chat service JID (a domain that is not a host); default conference.<host>'),
  name: z.string().min(1).default('Chatrooms').describe('the service name shown in discovery'),
  create: z.enum(['anyone', 'local', 'admins']).default('local')
    .describe('who may create rooms: anyone, accounts of this server (local) or server admins'),
  max_rooms_per_user: z.number().int().min(0).default(20).describe('rooms one account may create and own; 0 for no limit; server admins are exempt'),
  max_occupants: z.number().int().min(1).default(500).describe('occupants per room at most; a room\'s maxusers cannot exceed it'),
  max_history: z.number().int().min(0).default(200).describe('history messages a room may keep at most'),
  max_message_size: z.number().int().min(256).default(16_384).describe('bytes per message to a room or occupant; larger ones get policy-violation'),
  message_rate: z.number().min(0).default(5).describe('messages per second an occupant may send on average; 0 for no limit'),
  message_burst: z.number().int().min(1).default(20).describe('messages an occupant may send in a burst before the rate applies'),
  max_nick_length: z.number().int().min(1).max(1023).default(64).describe('characters in a room nickname at most'),
  multi_session: z.boolean().default(true).describe('an account may be in a room under one nick from several devices'),
  archiving: z.boolean().default(true).describe('room message archives (XEP-0313) are offered'),
  archive_default: z.enum(ARCHIVE_DEFAULTS).default('persistent')
    .describe('rooms archived unless their owner says otherwise: persistent (persistent rooms), all or none'),
  archive_fulltext: z.boolean().default(false).describe('index room message bodies for full-text search (XEP-0431) when the storage can'),
  archive_retention_days: z.number().min(0).default(0).describe('days room messages stay archived; 0 keeps them until the room is destroyed'),
  page_size: z.number().int().min(1).default(50).describe('archive messages per page when a query does not say'),
  max_page_size: z.number().int().min(1).default(250).describe('archive messages per page at most'),
  room_defaults: RoomDefaults.prefault({}).describe('the configuration of new rooms'),
  push_away: z.strictObject({
    enabled: z.boolean().default(true).describe('members away from members-only rooms are notified (offline webhook, push)'),
    max: z.number().int().min(1).default(10).describe('notifications per room and member within `window` at most'),
    window: z.number().min(0).default(60).describe('seconds of the rate-limit window; 0 for no limit'),
  }).prefault({}).describe('notifications for members away from members-only rooms'),
}).refine((o) => o.room_defaults.history_length <= o.max_history, {
  message: 'room_defaults.history_length cannot exceed max_history', path: ['room_defaults', 'history_length'],
});

export type MucConfig = z.output<typeof MucOptions>;

/** The configuration a new room starts with. */
export function defaultConfig(o: MucConfig, node: string): RoomConfig {
  const d = o.room_defaults;
  return {
    name: node,
    description: '',
    lang: '',
    persistent: d.persistent,
    public: d.public,
    membersOnly: d.members_only,
    moderated: d.moderated,
    passwordProtected: false,
    password: '',
    maxUsers: 0,
    whois: d.whois,
    historyLength: Math.min(d.history_length, o.max_history),
    allowInvites: d.allow_invites,
    allowPm: d.allow_pm,
    changeSubject: d.change_subject,
    archive: undefined,
    presenceBroadcast: ['moderator', 'participant', 'visitor'],
    getMemberList: ['moderator'],
    pushAway: d.push_away,
  };
}
