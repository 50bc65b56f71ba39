// The core configuration schema: every key typed, defaulted and described; module options are validated by each module.
import { z } from 'zod';
import { AuthSchema } from './auth-schema.ts';
import { AccessSchema, AclSchema } from './acl-schema.ts';
import { HttpSchema } from './http-schema.ts';
import { hardeningLimits } from './limits-schema.ts';

const port = z.number().int().min(0).max(65535);
const seconds = z.number().positive();

export const StarttlsPolicy = z.enum(['required', 'optional', 'off']);

const listenerC2s = z.strictObject({
  port: port.default(5222).describe('client port with STARTTLS; 0 picks a free port'),
  bind: z.string().default('127.0.0.1').describe('address to listen on; 0.0.0.0 or :: for every interface'),
  starttls: StarttlsPolicy.default('required').describe('required: no authentication before TLS; optional; off'),
  enabled: z.boolean().default(true),
});

const listenerDirectTls = z.strictObject({
  port: port.default(5223).describe('client port with direct TLS (XEP-0368)'),
  bind: z.string().default('127.0.0.1'),
  enabled: z.boolean().default(true),
});

const listenerComponent = z.strictObject({
  port: port.default(5347).describe('external components (XEP-0114)'),
  bind: z.string().default('127.0.0.1'),
  enabled: z.boolean().default(false),
});

const listenerHttp = z.strictObject({
  port: port.default(5280).describe('plain HTTP: WebSocket, BOSH, web admin, REST API, metrics'),
  bind: z.string().default('127.0.0.1'),
  enabled: z.boolean().default(true),
});

const listenerHttps = z.strictObject({
  port: port.default(5443).describe('HTTPS with the server certificate: the same services, and upload URLs'),
  bind: z.string().default('127.0.0.1'),
  enabled: z.boolean().default(true),
});

const limits = z.strictObject({
  stanza_size_preauth: z.number().int().min(1024).default(10_000).describe('bytes per stanza before authentication'),
  stanza_size: z.number().int().min(1024).default(262_144).describe('bytes per stanza after authentication'),
  max_depth: z.number().int().min(4).default(64).describe('element nesting depth below the stanza'),
  max_attrs: z.number().int().min(8).default(256).describe('attributes per element'),
  negotiation_timeout: seconds.default(30).describe('seconds to finish TLS, SASL and bind'),
  sasl_payload: z.number().int().min(512).default(10_000).describe('bytes of base64 in one SASL element'),
  ...hardeningLimits,
});

const tls = z.strictObject({
  cert: z.string().optional().describe('PEM certificate chain; a self-signed one is generated under data_dir when unset'),
  key: z.string().optional().describe('PEM private key'),
});

const auth = AuthSchema;

/** Module options: `false` disables a module enabled by default; an object configures it. */
const modules = z.record(z.string(), z.union([z.literal(false), z.record(z.string(), z.unknown()).nullable()]));

const hostOverrides = z.strictObject({
  modules: modules.optional(),
  acl: AclSchema.optional().describe('ACLs for this host, added to (or replacing by name) the global ones'),
  access: AccessSchema.optional().describe('access rules for this host, replacing the global rule of the same name'),
  auth: z.record(z.string(), z.unknown()).optional().describe('auth keys for this host; merged over the global auth and validated'),
  admins: z.array(z.string()).optional().describe('admins of this host, in addition to the global ones'),
});

export const ConfigSchema = z.strictObject({
  hosts: z.array(z.string().min(1)).min(1).default(['localhost']).describe('virtual hosts served'),
  data_dir: z.string().default('./data').describe('where the database, generated certificate and admin socket live'),
  storage: z.strictObject({
    backend: z.enum(['sqlite']).default('sqlite'),
    path: z.string().optional().describe('SQLite file; default data_dir/parley.db'),
  }).default({ backend: 'sqlite' }),
  listen: z.strictObject({
    c2s: listenerC2s.default(listenerC2s.parse({})),
    c2s_direct_tls: listenerDirectTls.default(listenerDirectTls.parse({})),
    component: listenerComponent.default(listenerComponent.parse({})),
    http: listenerHttp.default(listenerHttp.parse({})),
    https: listenerHttps.default(listenerHttps.parse({})),
  }).default({
    c2s: listenerC2s.parse({}), c2s_direct_tls: listenerDirectTls.parse({}), component: listenerComponent.parse({}),
    http: listenerHttp.parse({}), https: listenerHttps.parse({}),
  }),
  http: HttpSchema.default(HttpSchema.parse({})).describe('HTTP listeners and the web services on them'),
  tls: tls.default({}),
  admins: z.array(z.string()).default([]).describe('bare JIDs with admin rights'),
  limits: limits.default(limits.parse({})),
  auth: auth.default(auth.parse({})),
  acl: AclSchema.describe('named access control lists: users, servers, IP networks'),
  access: AccessSchema.describe('access rules: c2s (who may log in), register, admin'),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
    xml: z.boolean().default(false).describe('log every XML element sent and received, per connection'),
  }).default({ level: 'info', xml: false }),
  admin_socket: z.string().optional().describe('local admin channel for the CLI; default data_dir/parley.sock'),
  components: z.record(z.string(), z.strictObject({
    secret: z.string().min(8).describe('shared secret of the XEP-0114 handshake'),
  })).default({}).describe('external components by domain, e.g. an app server at push.example.com'),
  modules: modules.default({}),
  host_config: z.record(z.string(), hostOverrides).default({}).describe('per-host overrides'),
});

export type Config = z.infer<typeof ConfigSchema>;
export type LimitsConfig = z.infer<typeof limits>;
export type { AuthConfig } from './auth-schema.ts';
export type ModulesConfig = z.infer<typeof modules>;
