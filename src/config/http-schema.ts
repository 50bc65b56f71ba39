// The HTTP section of the configuration: limits of the HTTP listeners, then one sub-section per web service.
import { z } from 'zod';
import { BoshSchema } from '../http/bosh-options.ts';
import { WebSocketHttpSchema } from '../http/websocket-options.ts';
import { MetricsHttpSchema } from '../http/metrics-options.ts';
import { ApiHttpSchema } from '../http/api/options.ts';
import { AdminHttpSchema } from '../http/admin/options.ts';
import { ChatHttpSchema } from '../http/chat/options.ts';

export const HttpSchema = z.strictObject({
  max_header_size: z.number().int().min(1024).max(1_048_576).default(16_384)
    .describe('bytes of request line and headers; above it the request gets 431'),
  max_headers: z.number().int().min(8).max(2000).default(100).describe('header fields read per request'),
  max_body: z.number().int().min(1024).default(1_048_576).describe('bytes of a request body (uploads have their own limit); above it 413'),
  headers_timeout: z.number().positive().default(20).describe('seconds to receive the request headers'),
  request_timeout: z.number().positive().default(300).describe('seconds to receive a whole request'),
  public_url: z.url().optional().describe('the URL clients reach the HTTPS listener at (behind a proxy); default https://<host>:<https port>'),
  websocket: WebSocketHttpSchema.default(WebSocketHttpSchema.parse({})).describe('XMPP over WebSocket (RFC 7395) at /ws'),
  metrics: MetricsHttpSchema.default(MetricsHttpSchema.parse({})).describe('Prometheus metrics at /metrics (health at /health is always served)'),
  admin: AdminHttpSchema.default(AdminHttpSchema.parse({})).describe('the web admin at /admin'),
  chat: ChatHttpSchema.default(ChatHttpSchema.parse({})).describe('the browser chat client at /chat'),
  api: ApiHttpSchema.default(ApiHttpSchema.parse({})).describe('the REST API at /api'),
  bosh: BoshSchema.default(BoshSchema.parse({})).describe('XMPP over BOSH (XEP-0124, XEP-0206) at /bosh'),
});

export type HttpConfig = z.infer<typeof HttpSchema>;
