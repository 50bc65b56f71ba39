// Options of the HTTP file upload module (XEP-0363), validated at start-up.
import { z } from 'zod';

const MiB = 1024 * 1024;

export const UploadOptions = z.strictObject({
  jid: z.string().min(1).optional().describe('the upload service JID (a domain that is not a host); default upload.<host>'),
  // 20 MiB takes phone photos and short compressed videos, leaves room for several files in the default quota, and
  // uploads within the HTTP listener's request_timeout (300 s) on a slow (~1 Mbit/s) mobile uplink.
  max_file_size: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(20 * MiB)
    .describe('bytes of the largest file a slot is granted for (announced in disco#info as max-file-size)'),
  quota: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(100 * MiB)
    .describe('bytes an account may hold: its stored files plus the slots it has not used yet; 0 = unlimited'),
  slot_ttl: z.number().positive().max(86_400).default(300).describe('seconds within which a slot\'s PUT must start'),
  expire_after: z.number().min(0).default(30 * 86_400)
    .describe('seconds a file is kept after its upload, then deleted (default 30 days); 0 = kept until the account is removed'),
  cleanup_interval: z.number().min(1).max(86_400).default(3600).describe('seconds between sweeps deleting expired files and unused slots'),
  slots_per_minute: z.number().int().min(0).default(60).describe('slots an account may be granted per minute; 0 = unlimited'),
  access: z.string().min(1).optional()
    .describe('an access rule (from the access section) an account must pass to get slots; default: every account of this host'),
  secret: z.string().min(32).optional()
    .describe('key of the HMAC that signs upload URLs; default a random key generated once in data_dir/upload.key'),
  dir: z.string().min(1).optional().describe('where files are stored, relative to data_dir; default data_dir/upload'),
}).refine((o) => o.quota === 0 || o.max_file_size <= o.quota, { message: 'max_file_size cannot exceed quota (0 = unlimited)', path: ['max_file_size'] });

export type UploadConfig = z.output<typeof UploadOptions>;
