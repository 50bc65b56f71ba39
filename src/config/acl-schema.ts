// Access control lists and rules, in the spirit of ejabberd's acl and access_rules.
import { z } from 'zod';

export const AclSchema = z.record(z.string(), z.strictObject({
  user: z.array(z.string()).optional().describe('bare JIDs, or localparts on every host'),
  server: z.array(z.string()).optional().describe('domains'),
  ip: z.array(z.string()).optional().describe('IP networks in CIDR notation'),
})).default({});

/** A rule list: the first entry whose ACL matches decides; a bare 'allow'/'deny' matches everyone. */
export const AccessRuleSchema = z.array(z.union([
  z.enum(['allow', 'deny']),
  z.strictObject({ allow: z.string() }),
  z.strictObject({ deny: z.string() }),
]));

export const AccessSchema = z.record(z.string(), AccessRuleSchema).default({});

export type AclConfig = z.infer<typeof AclSchema>;
export type AccessConfig = z.infer<typeof AccessSchema>;
