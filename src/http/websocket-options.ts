// Options of XMPP over WebSocket (`http.websocket`, RFC 7395): the /ws endpoint on both HTTP listeners.
import { z } from 'zod';

/** An Origin header value as browsers send it: scheme://host[:port], no path. */
const origin = z.string()
  .regex(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/\s]+\/?$/, 'an origin such as https://app.example.com')
  .transform((o) => o.replace(/\/$/, '').toLowerCase());

export const WebSocketHttpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('accept XMPP over WebSocket (RFC 7395) at /ws on the HTTP and HTTPS listeners'),
  origins: z.array(origin).optional()
    .describe('browser origins allowed to connect (others get 403); unset allows any. Clients that send no Origin (native apps) are always allowed'),
  plain_http: z.boolean().default(true)
    .describe('whether ws:// on the plain HTTP listener may authenticate (fine on loopback); in production use wss:// or a TLS-terminating proxy'),
});

export type WebSocketHttpOptions = z.infer<typeof WebSocketHttpSchema>;
