// XEP-0045 §5: roles (per visit) and affiliations (long-lived, by bare JID), their ranks and default roles.
import type { RoomConfig } from './config.ts';

export const AFFILIATIONS = ['owner', 'admin', 'member', 'none', 'outcast'] as const;
export type Affiliation = (typeof AFFILIATIONS)[number];
/** Affiliations kept in the room's lists ('none' is the absence of one). */
export type StoredAffiliation = Exclude<Affiliation, 'none'>;

export const ROLES = ['moderator', 'participant', 'visitor', 'none'] as const;
export type Role = (typeof ROLES)[number];

const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

export function affiliationRank(a: Affiliation): number {
  return AFFILIATION_RANK[a];
}

export function roleRank(r: Role): number {
  return ROLE_RANK[r];
}

export function isAffiliation(s: string | undefined): s is Affiliation {
  return s !== undefined && (AFFILIATIONS as readonly string[]).includes(s);
}

export function isRole(s: string | undefined): s is Role {
  return s !== undefined && (ROLES as readonly string[]).includes(s);
}

/** §5.1.2: the role an occupant gets on entering, from its affiliation and the room type. */
export function defaultRole(affiliation: Affiliation, config: RoomConfig): Role {
  switch (affiliation) {
    case 'owner':
    case 'admin':
      return 'moderator';
    case 'member':
      return 'participant';
    case 'none':
      return config.moderated ? 'visitor' : 'participant';
    case 'outcast':
      return 'none';
  }
}
