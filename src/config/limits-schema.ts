// Abuse protection for client connections: read shaping, stanza and subscription rates, the send queue, connection
// caps and sessions per account. Spread into the core `limits` section (schema.ts); every default is documented.
import { z } from 'zod';

const rate = (bytesPerSecond: number, burst: number, what: string) => z.strictObject({
  bytes_per_second: z.number().int().min(0).default(bytesPerSecond)
    .describe(`sustained bytes per second read from one connection ${what}; 0 turns shaping off`),
  burst: z.number().int().min(1024).default(burst).describe('bytes that may arrive at once before reading pauses'),
});

const readRatePreauth = rate(2048, 16_384, 'before authentication (TLS handshake included)');
const readRate = rate(10_240, 65_536, 'after authentication');

const stanzaRate = z.strictObject({
  per_second: z.number().int().min(0).default(50).describe('sustained stanzas (and other top-level elements) per second after authentication; 0 turns the limit off'),
  burst: z.number().int().min(1).default(200)
    .describe('stanzas accepted at once; past it reading pauses, and a client that is another burst ahead is closed with policy-violation'),
});

const subscriptionRate = z.strictObject({
  per_minute: z.number().int().min(0).default(60).describe('presence subscription changes (subscribe, subscribed, unsubscribe, unsubscribed) one session may send per minute; 0 turns the limit off'),
  burst: z.number().int().min(1).default(30).describe('subscription changes accepted at once'),
});

const sendQueue = z.strictObject({
  max_bytes: z.number().int().min(65_536).default(1_048_576)
    .describe('bytes written to a connection and not yet taken by the client; past it stanzas wait, unwritten'),
  max_stanzas: z.number().int().min(1).default(1000)
    .describe('stanzas waiting for a client that does not read; past it the stream is closed with resource-constraint'),
  stall_timeout: z.number().positive().default(60)
    .describe('seconds a client may leave stanzas waiting before the stream is closed with connection-timeout'),
});

const connections = z.strictObject({
  max_total: z.number().int().min(0).default(10_000).describe('client connections open at once on the TCP listeners; 0: no cap'),
  max_unauthenticated_per_ip: z.number().int().min(0).default(20)
    .describe('connections from one address that have not authenticated yet; 0: no cap'),
  attempts_per_ip_per_minute: z.number().int().min(0).default(60).describe('new connections from one address per minute; 0: no cap'),
  exempt: z.array(z.string()).default(['127.0.0.1', '::1'])
    .describe('addresses or networks (CIDR) the per-address caps do not apply to, such as a local proxy'),
});

/** The keys this file adds to `limits`. */
export const hardeningLimits = {
  read_rate_preauth: readRatePreauth.prefault({}).describe('read shaping before authentication'),
  read_rate: readRate.prefault({}).describe('read shaping after authentication'),
  stanza_rate: stanzaRate.prefault({}).describe('stanzas per session after authentication'),
  subscription_rate: subscriptionRate.prefault({}).describe('presence subscription changes per session'),
  send_queue: sendQueue.prefault({}).describe('output waiting for a client that reads slowly or not at all'),
  connections: connections.prefault({}).describe('caps on client connections per address and in total'),
  max_sessions_per_account: z.number().int().min(0).default(10).describe('resources one account may have bound at once; 0: no cap'),
  max_sessions_policy: z.enum(['refuse', 'replace_oldest']).default('refuse')
    .describe('at the cap: refuse the new bind (resource-constraint) or close the oldest session (conflict)'),
};

export type ReadRate = z.infer<typeof readRate>;
export type ConnectionCaps = z.infer<typeof connections>;
