// Options of the web admin (`http.admin`): where it answers, its logins' lifetimes, page sizes.
import { z } from 'zod';

export const AdminHttpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('serve the web admin at /admin (admins log in with their JID and password)'),
  session_ttl: z.number().int().min(1).default(28_800).describe('seconds a login lasts at most, however active'),
  idle_timeout: z.number().int().min(1).default(1_800).describe('seconds without a request after which a login ends'),
  max_sessions: z.number().int().min(1).default(1_000).describe('logins kept at once; the oldest ends when a new one would exceed it'),
  plain_http: z.enum(['loopback', 'allow', 'deny']).default('loopback')
    .describe('the admin over the plain HTTP listener (passwords in clear): only from loopback (a local TLS proxy), from anywhere, or never'),
  page_size: z.number().int().min(1).max(1_000).default(50).describe('rows per page in user lists'),
});

export type AdminHttpOptions = z.infer<typeof AdminHttpSchema>;
