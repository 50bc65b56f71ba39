// Authentication configuration: the backend chain and each backend's options (per host through host_config).
import { z } from 'zod';
import { AUTH_METHODS } from '../auth/types.ts';

export const ExternalAuthSchema = z.strictObject({
  program: z.string().min(1).describe('the extauth program (ejabberd protocol), run without a shell'),
  args: z.array(z.string()).default([]).describe('arguments for the program'),
  pool_size: z.number().int().min(1).max(64).default(1).describe('processes kept running'),
  timeout: z.number().positive().default(10).describe('seconds to wait for one answer'),
  cache_seconds: z.number().min(0).default(0).describe('cache successful auth results this long (0: off)'),
});

export const HttpAuthSchema = z.strictObject({
  url: z.url().describe('the app endpoint; Parley POSTs JSON to it'),
  timeout: z.number().positive().default(5).describe('seconds per request'),
  retries: z.number().int().min(0).max(5).default(1).describe('retries on network errors and 5xx answers'),
  cache_seconds: z.number().min(0).default(0).describe('cache successful auth results this long (0: off)'),
  headers: z.record(z.string(), z.string()).default({}).describe('extra request headers, e.g. Authorization'),
  manage_accounts: z.boolean().default(false)
    .describe('send register/setpass/removeuser to the endpoint too (otherwise accounts are managed by the app alone)'),
});

export const JwtAuthSchema = z.strictObject({
  algorithms: z.array(z.enum(['HS256', 'RS256', 'ES256'])).min(1).default(['HS256']).describe('accepted signing algorithms'),
  secret: z.string().min(16).optional().describe('shared secret for HS256'),
  public_key: z.string().optional().describe('PEM file with the public key for RS256/ES256'),
  claim: z.string().default('sub').describe('claim holding the user: a bare JID or a localpart'),
  issuer: z.string().optional(),
  audience: z.string().optional(),
  clock_tolerance: z.number().min(0).default(30).describe('seconds of clock skew tolerated on exp/nbf'),
});

export const BruteForceSchema = z.strictObject({
  max_failures: z.number().int().min(1).default(20).describe('failed logins from one IP before it is refused'),
  window: z.number().positive().default(600).describe('seconds over which failures are counted'),
  ban_seconds: z.number().positive().default(600).describe('how long a refused IP stays refused'),
  backoff_after: z.number().int().min(1).default(3)
    .describe('failed logins for one account from one IP before that IP must wait between attempts for it'),
  backoff_base: z.number().positive().default(1).describe('seconds of the first wait; each further failure doubles it'),
  backoff_max: z.number().positive().default(300).describe('the longest wait, in seconds'),
});

export const AUTH_MECHANISMS = ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'] as const;

export const AuthSchema = z.strictObject({
  methods: z.array(z.enum(AUTH_METHODS)).min(1).default(['internal']).describe('backends, tried in order'),
  scram_iterations: z.number().int().min(4096).default(4096).describe('PBKDF2 iterations for new SCRAM keys'),
  mechanisms: z.array(z.enum(AUTH_MECHANISMS)).default([...AUTH_MECHANISMS])
    .describe('offered SASL mechanisms, in order of preference; PLAIN only ever over TLS'),
  external: ExternalAuthSchema.optional(),
  http: HttpAuthSchema.optional(),
  jwt: JwtAuthSchema.optional(),
  brute_force: BruteForceSchema.default(BruteForceSchema.parse({})),
}).superRefine((auth, ctx) => {
  for (const m of ['external', 'http', 'jwt'] as const) {
    if (auth.methods.includes(m) && !auth[m]) ctx.addIssue({ code: 'custom', path: [m], message: `method ${m} needs an auth.${m} section` });
  }
  if (auth.jwt && auth.methods.includes('jwt')) {
    const needsKey = auth.jwt.algorithms.some((a) => a !== 'HS256');
    if (auth.jwt.algorithms.includes('HS256') && !auth.jwt.secret) ctx.addIssue({ code: 'custom', path: ['jwt', 'secret'], message: 'HS256 needs a secret' });
    if (needsKey && !auth.jwt.public_key) ctx.addIssue({ code: 'custom', path: ['jwt', 'public_key'], message: 'RS256/ES256 need a public_key' });
  }
});

export type AuthConfig = z.infer<typeof AuthSchema>;
