// The HTTP section of the configuration: limits of the HTTP listeners, then one sub-section per web service.
import { z } from 'zod';

export const HttpSchema = z.strictObject({
  max_header_size: z.number().int().min(1024).max(1_048_576).default(16_384)
    .describe('bytes of request line and headers; above it the request gets 431'),
  max_headers: z.number().int().min(8).max(2000).default(100).describe('header fields read per request'),
  max_body: z.number().int().min(1024).default(1_048_576).describe('bytes of a request body (uploads have their own limit); above it 413'),
  headers_timeout: z.number().positive().default(20).describe('seconds to receive the request headers'),
  request_timeout: z.number().positive().default(300).describe('seconds to receive a whole request'),
  public_url: z.url().optional().describe('the URL clients reach the HTTPS listener at (behind a proxy); default https://<host>:<https port>'),
});

export type HttpConfig = z.infer<typeof HttpSchema>;
