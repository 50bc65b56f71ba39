// Options of the browser chat client (`http.chat`): Converse.js served at /chat.
import { z } from 'zod';

export const ChatHttpSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('serve the Converse.js web client at /chat'),
  websocket_url: z.string().regex(/^wss?:\/\//, 'a ws:// or wss:// URL').optional()
    .describe('the XMPP WebSocket URL the client connects to; default ws(s)://<the host the page was loaded from>/ws'),
  domain: z.string().optional().describe('the default domain of the login form; default the page\'s host when it is served, else the first host'),
});

export type ChatHttpOptions = z.infer<typeof ChatHttpSchema>;
