// Options of the BOSH service (XEP-0124, XEP-0206): the `http.bosh` section of the configuration.
import { z } from 'zod';

/** '*' or an Origin header value as browsers send it: scheme://host[:port], no path. */
const origin = z.union([
  z.literal('*'),
  z.string()
    .regex(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\s]+\/?$/, "'*' or an origin such as https://app.example.com")
    .transform((o) => o.replace(/\/$/, '').toLowerCase()),
]);

export const BoshSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('serve BOSH on the HTTP and HTTPS listeners'),
  plain_http: z.boolean().default(true)
    .describe('allow BOSH sessions (and so authentication) on the plain HTTP listener, where STARTTLS is impossible; false points clients to HTTPS'),
  max_wait: z.number().int().min(1).max(600).default(60).describe('longest seconds a request is held (the client may ask for less)'),
  max_hold: z.number().int().min(0).max(10).default(1).describe('most requests held at once (the client may ask for fewer)'),
  max_requests: z.number().int().min(1).max(20).default(2).describe("simultaneous requests allowed ('requests'); at least hold + 1"),
  inactivity: z.number().int().min(1).max(3600).default(60).describe('seconds without a held request before the session ends'),
  polling: z.number().int().min(0).max(60).default(2).describe('shortest seconds between two empty requests of a polling session (hold 0)'),
  max_pause: z.number().int().min(0).max(3600).default(120).describe('longest session pause (XEP-0124 §10) in seconds; 0 disables pausing'),
  max_sessions: z.number().int().min(1).default(10_000).describe('BOSH sessions open at once; more are refused'),
  cors_origins: z.array(origin).default(['*'])
    .describe("browser origins allowed to use BOSH (Access-Control-Allow-Origin; others get 403); '*' allows any"),
});

export type BoshOptions = z.infer<typeof BoshSchema>;
