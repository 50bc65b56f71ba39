// Options of the metrics endpoint (`http.metrics`): who may scrape /metrics. /health is always open.
import { BlockList } from 'node:net';
import { z } from 'zod';
import { addNetwork } from '../auth/access.ts';

const network = z.string().refine((n) => addNetwork(new BlockList(), n), { message: 'not an IP address or network (addr/bits)' });

export const MetricsHttpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('serve Prometheus metrics at /metrics'),
  allow: z.array(network).default(['127.0.0.0/8', '::1/128'])
    .describe('networks allowed to scrape /metrics (others get 403); loopback only by default'),
  token: z.string().min(16).optional()
    .describe('when set, scrapers must also send "Authorization: Bearer <token>" (others get 401)'),
});

export type MetricsHttpOptions = z.infer<typeof MetricsHttpSchema>;
