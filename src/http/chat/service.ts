// The browser chat client at /chat: Converse.js (https://conversejs.org, the `converse.js` npm package) served
// from its dist/ directory, with an index page that points it at this server's XMPP WebSocket endpoint (RFC 7395, /ws).
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParleyServer } from '../../server.ts';
import type { HttpRequest, HttpRoutes } from '../routes.ts';
import { HttpError, sendText } from '../respond.ts';
import { escapeHtml } from '../admin/html.ts';
import { resolveInside, sendFile } from './static.ts';
import { INIT_NAME, INIT_SCRIPT } from './init-script.ts';

/** Where the package's built files are; undefined when the package is not installed. */
export function converseDist(): string | undefined {
  try {
    return dirname(fileURLToPath(import.meta.resolve('converse.js/dist/converse.min.js')));
  } catch {
    return undefined;
  }
}

/** Host header values we are willing to echo into a URL: a DNS name or an IP literal, with an optional port. */
const HOST_HEADER = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export type ChatPageConfig = {
  websocket_url: string;
  default_domain: string;
  assets_path: string;
  auto_login: false;
  discover_connection_methods: false;
  allow_registration: false;
  view_mode: 'fullscreen';
  show_connection_url_input: false;
  allow_user_trust_override: 'off';
};

/** Converse's settings for a request: the WebSocket on the host the page came from, that host as default domain. */
export function chatConfig(server: ParleyServer, r: HttpRequest): ChatPageConfig {
  const o = server.config.http.chat;
  const hostHeader = r.req.headers.host ?? '';
  if (!HOST_HEADER.test(hostHeader)) throw new HttpError(400, 'Bad Host header');
  const hostname = hostHeader.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
  const domain = o.domain ?? (server.hosts.has(hostname) ? hostname : (server.config.hosts[0] as string));
  return {
    websocket_url: o.websocket_url ?? `${r.secure ? 'wss' : 'ws'}://${hostHeader}/ws`,
    default_domain: domain,
    assets_path: '/chat/',
    auto_login: false,
    discover_connection_methods: false,
    allow_registration: false,
    view_mode: 'fullscreen',
    show_connection_url_input: false,
    // "This is a trusted device" starts unticked: the browser keeps no login unless the user asks it to.
    allow_user_trust_override: 'off',
  };
}

/** JSON that is safe inside a <script type="application/json"> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

function originOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return undefined;
  }
}

/**
 * Scripts only from this origin; images and media from this server's listeners (uploaded files live on the HTTPS
 * one) and nowhere else, so the page never reaches out to third parties. Converse sets inline styles (lit) and
 * compiles WebAssembly for OMEMO.
 */
function csp(server: ParleyServer, websocketUrl: string): string {
  const own = [...new Set([server.httpUrls.http, server.httpUrls.https, server.config.http.public_url].map(originOf).filter((o) => o !== undefined))];
  const media = ["'self'", 'data:', 'blob:', ...own].join(' ');
  const ws = originOf(websocketUrl);
  return [
    "default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self' 'unsafe-inline'",
    `img-src ${media}`, `media-src ${media}`, `connect-src 'self'${ws ? ` ${ws}` : ''}`,
    "font-src 'self' data:", "worker-src 'self' blob:", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'self'",
  ].join('; ');
}

function indexPage(config: ChatPageConfig): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat · ${escapeHtml(config.default_domain)}</title>
<link rel="stylesheet" href="/chat/converse.min.css">
<script type="application/json" id="parley-chat-config">${scriptJson(config)}</script>
<script type="module" src="/chat/${INIT_NAME}"></script>
</head>
<body class="converse-fullscreen">
<noscript>This chat client needs JavaScript.</noscript>
</body>
</html>
`;
}

export class ChatService {
  private readonly server: ParleyServer;
  private readonly dist: string | undefined;

  constructor(server: ParleyServer) {
    this.server = server;
    this.dist = converseDist();
    if (!this.dist) server.log.warn('the converse.js package is not installed: /chat answers 503');
  }

  readonly handle = async (r: HttpRequest): Promise<void> => {
    const method = r.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      r.req.resume();
      throw new HttpError(405, 'Method not allowed', { Allow: 'GET, HEAD' });
    }
    if (r.url.pathname === '/chat') {
      r.res.writeHead(301, { Location: '/chat/', 'Content-Length': 0 });
      r.res.end();
      return;
    }
    if (!this.dist) throw new HttpError(503, 'The chat client is not installed (npm package converse.js)');
    if (r.rest === '') return this.index(r);
    if (r.rest === INIT_NAME) return this.initScript(r);
    // The package's dist/ is the rest of /chat/: Converse loads some files (OMEMO's WebAssembly) relative to the
    // page rather than to assets_path, so the two must be one directory.
    const file = await resolveInside(this.dist, r.rest);
    if (!file) throw new HttpError(404, 'Not found');
    // Not content-hashed names: cached for an hour, then revalidated by ETag.
    return sendFile(r, file, 'public, max-age=3600');
  };

  private index(r: HttpRequest): void {
    const config = chatConfig(this.server, r);
    const body = Buffer.from(indexPage(config), 'utf8');
    r.res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': csp(this.server, config.websocket_url),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'same-origin',
    });
    r.res.end(r.req.method === 'HEAD' ? undefined : body);
  }

  private initScript(r: HttpRequest): void {
    r.res.setHeader('Cache-Control', 'no-cache');
    sendText(r.res, 200, INIT_SCRIPT, 'text/javascript; charset=utf-8');
  }
}

/** The HttpService entry: mounts /chat unless disabled. */
export function mountChat(server: ParleyServer, routes: HttpRoutes): (() => void) | undefined {
  if (!server.config.http.chat.enabled) return undefined;
  const chat = new ChatService(server);
  return routes.route('*', '/chat', chat.handle, { prefix: true });
}
