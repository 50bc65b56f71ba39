// XEP-0045 §10.1-10.2 and the muc#roomconfig field registry: a room's configuration, the muc#roomconfig form the owner is sent, and the
// reading of the submitted form (XEP-0004 data forms).
import { StanzaError } from '../../core/errors.ts';
import { xml, type Element } from '../../xml/element.ts';
import { Jid } from '../../xmpp/jid.ts';
import { MUC_NS } from './ns.ts';
import { isRole, type Role } from './roles.ts';

export const ALLOW_PM = ['anyone', 'participants', 'moderators', 'none'] as const;
export type AllowPm = (typeof ALLOW_PM)[number];
export const WHOIS = ['moderators', 'anyone'] as const;
export type Whois = (typeof WHOIS)[number];
/** Which rooms are archived when their owner has not said (see `archive` below). */
export const ARCHIVE_DEFAULTS = ['persistent', 'all', 'none'] as const;
export type ArchiveDefault = (typeof ARCHIVE_DEFAULTS)[number];

/** Parley's own field: notify members who are away from a members-only room (docs/muc.md). */
export const PUSH_FIELD = 'x-parley#roomconfig_pushaway';

export type RoomConfig = {
  name: string;
  description: string;
  lang: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  passwordProtected: boolean;
  password: string;
  /** At most this many occupants; 0 means the service's limit. */
  maxUsers: number;
  whois: Whois;
  /** Messages kept for and sent on joining (muc#maxhistoryfetch). */
  historyLength: number;
  /** Members of a members-only room may invite (and so add members); owners and admins always may. */
  allowInvites: boolean;
  allowPm: AllowPm;
  /** Participants (not only moderators) may change the subject. */
  changeSubject: boolean;
  /** Message archive (XEP-0313) on or off as the owner chose; undefined follows the service default. */
  archive: boolean | undefined;
  /** Roles whose presence is broadcast to the other occupants. */
  presenceBroadcast: Role[];
  /** Roles that may retrieve the member list (admins and owners always may). */
  getMemberList: Role[];
  /** Members away from a members-only room are notified of its messages (offline webhook and push). */
  pushAway: boolean;
};

/** Service-wide settings the form and its reading depend on. */
export type ConfigLimits = {
  /** The most occupants a room may allow. */
  maxUsers: number;
  /** The most history messages a room may keep. */
  maxHistory: number;
  /** Whether the service offers room archives at all. */
  archiving: boolean;
  archiveDefault: ArchiveDefault;
};

/** Whether the room's messages are archived now. */
export function archived(config: RoomConfig, limits: ConfigLimits): boolean {
  if (!limits.archiving) return false;
  if (config.archive !== undefined) return config.archive;
  return limits.archiveDefault === 'all' || (limits.archiveDefault === 'persistent' && config.persistent);
}

/** The occupant limit in force: the room's, within the service's. */
export function occupantLimit(config: RoomConfig, limits: ConfigLimits): number {
  return config.maxUsers === 0 ? limits.maxUsers : Math.min(config.maxUsers, limits.maxUsers);
}

/** Whether occupants see each other's real JIDs (a non-anonymous room). */
export function nonAnonymous(config: RoomConfig): boolean {
  return config.whois === 'anyone';
}

const bool = (v: boolean): string => (v ? '1' : '0');

function field(v: string, type: string, label: string, values: string[], options?: Array<[string, string]>): Element {
  return xml('field', { var: v, type, label },
    values.map((value) => xml('value', null, value)),
    options?.map(([l, value]) => xml('option', { label: l }, xml('value', null, value))));
}

const ROLE_OPTIONS: Array<[string, string]> = [['Moderator', 'moderator'], ['Participant', 'participant'], ['Visitor', 'visitor']];

/** §10.1.3 / §10.2: the form, with the room's current values. */
export function configForm(room: { jid: Jid; config: RoomConfig; owners: string[]; admins: string[] }, limits: ConfigLimits): Element {
  const c = room.config;
  const maxOptions = [10, 20, 30, 50, 100, 200, 500, 1000].filter((n) => n < limits.maxUsers);
  return xml('x', { xmlns: MUC_NS.DATA, type: 'form' },
    xml('title', null, `Configuration for ${room.jid.toString()}`),
    xml('instructions', null, 'Complete this form to configure the room; submit it unchanged to accept the current configuration.'),
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, MUC_NS.ROOMCONFIG)),
    field('muc#roomconfig_roomname', 'text-single', 'Natural-Language Room Name', [c.name]),
    field('muc#roomconfig_roomdesc', 'text-single', 'Short Description of Room', [c.description]),
    field('muc#roomconfig_lang', 'text-single', 'Natural Language for Room Discussions', [c.lang]),
    field('muc#roomconfig_persistentroom', 'boolean', 'Make Room Persistent?', [bool(c.persistent)]),
    field('muc#roomconfig_publicroom', 'boolean', 'Make Room Publicly Searchable?', [bool(c.public)]),
    field('muc#roomconfig_membersonly', 'boolean', 'Make Room Members-Only?', [bool(c.membersOnly)]),
    field('muc#roomconfig_moderatedroom', 'boolean', 'Make Room Moderated?', [bool(c.moderated)]),
    field('muc#roomconfig_passwordprotectedroom', 'boolean', 'Password Required to Enter?', [bool(c.passwordProtected)]),
    field('muc#roomconfig_roomsecret', 'text-private', 'Password', c.password === '' ? [] : [c.password]),
    field('muc#roomconfig_maxusers', 'list-single', 'Maximum Number of Occupants',
      [c.maxUsers === 0 ? 'none' : String(c.maxUsers)],
      [...maxOptions.map((n): [string, string] => [String(n), String(n)]), [`None (at most ${limits.maxUsers})`, 'none']]),
    field('muc#roomconfig_whois', 'list-single', 'Who May Discover Real JIDs?', [c.whois],
      [['Moderators Only', 'moderators'], ['Anyone', 'anyone']]),
    field('muc#maxhistoryfetch', 'text-single', 'Maximum Number of History Messages Returned by Room', [String(c.historyLength)]),
    limits.archiving ? field('muc#roomconfig_enablearchiving', 'boolean', 'Enable Message Archiving?', [bool(archived(c, limits))]) : undefined,
    field('muc#roomconfig_changesubject', 'boolean', 'Allow Occupants to Change Subject?', [bool(c.changeSubject)]),
    field('muc#roomconfig_allowinvites', 'boolean', 'Allow Members to Invite Others?', [bool(c.allowInvites)]),
    field('muc#roomconfig_allowpm', 'list-single', 'Who Can Send Private Messages?', [c.allowPm],
      [['Anyone', 'anyone'], ['Anyone with Voice', 'participants'], ['Moderators Only', 'moderators'], ['Nobody', 'none']]),
    field('muc#roomconfig_presencebroadcast', 'list-multi', 'Roles for which Presence is Broadcasted', c.presenceBroadcast, ROLE_OPTIONS),
    field('muc#roomconfig_getmemberlist', 'list-multi', 'Roles that May Retrieve Member List', c.getMemberList, ROLE_OPTIONS),
    field(PUSH_FIELD, 'boolean', 'Notify Members Who Are Not in the Room (Members-Only Rooms)?', [bool(c.pushAway)]),
    field('muc#roomconfig_roomadmins', 'jid-multi', 'Room Admins', room.admins),
    field('muc#roomconfig_roomowners', 'jid-multi', 'Room Owners', room.owners),
  );
}

/** What a submitted form asks for: the new configuration and, when given, the full owner and admin lists. */
export type ConfigChange = { config: RoomConfig; owners: string[] | undefined; admins: string[] | undefined };

function unacceptable(text: string): StanzaError {
  return new StanzaError('not-acceptable', text);
}

function parseBool(v: string, name: string): boolean {
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw unacceptable(`${name} must be a boolean`);
}

function parseJids(values: string[], name: string): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (v === '') continue;
    const j = Jid.tryParse(v);
    if (!j) throw unacceptable(`${name}: ${v} is not a JID`);
    out.add(j.bare.toString());
  }
  return [...out];
}

function parseRoles(values: string[], name: string): Role[] {
  const out: Role[] = [];
  for (const v of values) {
    if (!isRole(v) || v === 'none') throw unacceptable(`${name}: unknown role ${v}`);
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

/**
 * Reads a submitted muc#roomconfig form onto the current configuration: fields left out keep their value, an
 * unusable value is not-acceptable (§10.1.3), fields of other forms are ignored.
 */
export function applyConfigForm(x: Element, current: RoomConfig, limits: ConfigLimits): ConfigChange {
  const c: RoomConfig = { ...current, presenceBroadcast: [...current.presenceBroadcast], getMemberList: [...current.getMemberList] };
  let owners: string[] | undefined;
  let admins: string[] | undefined;
  let archiving: string | undefined;
  let logging: string | undefined;
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var ?? '';
    const values = f.getChildren('value').map((v) => v.text());
    const v = (values[0] ?? '').trim();
    switch (name) {
      case 'FORM_TYPE':
        if (v !== MUC_NS.ROOMCONFIG) throw StanzaError.badRequest(`FORM_TYPE must be ${MUC_NS.ROOMCONFIG}`);
        break;
      case 'muc#roomconfig_roomname': c.name = (values[0] ?? '').slice(0, 256); break;
      case 'muc#roomconfig_roomdesc': c.description = (values[0] ?? '').slice(0, 1024); break;
      case 'muc#roomconfig_lang': c.lang = v.slice(0, 35); break;
      case 'muc#roomconfig_persistentroom': c.persistent = parseBool(v, name); break;
      case 'muc#roomconfig_publicroom': c.public = parseBool(v, name); break;
      case 'muc#roomconfig_membersonly': c.membersOnly = parseBool(v, name); break;
      case 'muc#roomconfig_moderatedroom': c.moderated = parseBool(v, name); break;
      case 'muc#roomconfig_passwordprotectedroom': c.passwordProtected = parseBool(v, name); break;
      case 'muc#roomconfig_roomsecret': c.password = values[0] ?? ''; break;
      case 'muc#roomconfig_maxusers': {
        if (v === 'none' || v === '') c.maxUsers = 0;
        else if (/^\d{1,9}$/.test(v) && Number(v) >= 1 && Number(v) <= limits.maxUsers) c.maxUsers = Number(v);
        else throw unacceptable(`${name} must be none or a number from 1 to ${limits.maxUsers}`);
        break;
      }
      case 'muc#roomconfig_whois':
        if (!(WHOIS as readonly string[]).includes(v)) throw unacceptable(`${name} must be moderators or anyone`);
        c.whois = v as Whois;
        break;
      case 'muc#maxhistoryfetch':
        if (!/^\d{1,9}$/.test(v) || Number(v) > limits.maxHistory) throw unacceptable(`${name} must be a number from 0 to ${limits.maxHistory}`);
        c.historyLength = Number(v);
        break;
      case 'muc#roomconfig_enablearchiving': archiving = v; break;
      case 'muc#roomconfig_enablelogging': logging = v; break;
      case 'muc#roomconfig_changesubject': c.changeSubject = parseBool(v, name); break;
      case 'muc#roomconfig_allowinvites': c.allowInvites = parseBool(v, name); break;
      case 'muc#roomconfig_allowpm':
        if (!(ALLOW_PM as readonly string[]).includes(v)) throw unacceptable(`${name} must be anyone, participants, moderators or none`);
        c.allowPm = v as AllowPm;
        break;
      case 'muc#roomconfig_presencebroadcast': c.presenceBroadcast = parseRoles(values, name); break;
      case 'muc#roomconfig_getmemberlist': c.getMemberList = parseRoles(values, name); break;
      case PUSH_FIELD: c.pushAway = parseBool(v, name); break;
      case 'muc#roomconfig_roomadmins': admins = parseJids(values, name); break;
      case 'muc#roomconfig_roomowners': owners = parseJids(values, name); break;
      default:
        break;
    }
  }
  // Archiving as shown in the form is the effective setting; a value that differs from it is the owner's choice,
  // the same value leaves the room following the default (so a room made persistent becomes archived).
  // muc#roomconfig_enablelogging is read as the same switch for clients that know only that field.
  const asked = archiving ?? logging;
  if (asked !== undefined && limits.archiving) {
    const want = parseBool(asked, 'muc#roomconfig_enablearchiving');
    if (want !== archived(current, limits)) c.archive = want;
  }
  if (c.passwordProtected && c.password === '') throw unacceptable('A password-protected room needs a password');
  if (!c.passwordProtected) c.password = '';
  if (owners !== undefined && owners.length === 0) throw unacceptable('A room needs at least one owner');
  return { config: c, owners, admins };
}

/** The configuration as stored: JSON, with every field. */
export function encodeConfig(c: RoomConfig): string {
  return JSON.stringify(c);
}

/** A stored configuration over the defaults, so fields added later take their default. */
export function decodeConfig(text: string, defaults: RoomConfig): RoomConfig {
  const raw = JSON.parse(text) as Partial<RoomConfig>;
  return { ...defaults, ...raw };
}
