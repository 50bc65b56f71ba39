// Options of the REST API (`http.api`).
import { z } from 'zod';

export const ApiHttpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('serve the REST API at /api (POST /api/<command> with a JSON body)'),
  basic_auth: z.boolean().default(true)
    .describe('accept HTTP Basic with an admin JID and password, besides API tokens (`parley api-token create`)'),
  plain_http: z.enum(['loopback', 'allow', 'deny']).default('loopback')
    .describe('requests over the plain HTTP listener: only from loopback (a local proxy or script), from anywhere, or never'),
});

export type ApiHttpOptions = z.infer<typeof ApiHttpSchema>;
