// The HTTP route table that every web service (WebSocket, BOSH, upload, admin, REST API, metrics) plugs into.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { discardBody, HttpError, sendText } from './respond.ts';

export type HttpRequest = {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Whether the request came over the TLS listener. */
  readonly secure: boolean;
  readonly remoteAddress: string;
  /** The part of the path after the route's prefix (for prefix routes), without a leading slash. */
  readonly rest: string;
};

export type HttpHandler = (r: HttpRequest) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean) => void;

type Route = { method: string; path: string; prefix: boolean; handler: HttpHandler };

/** Normalises IPv4-mapped IPv6 addresses as the c2s listener does. */
export function remoteAddressOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * The request target as a URL (RFC 9112 §3.2): origin-form ("/path?query") is taken as a path even when it starts
 * with "//" (which URL parsing would read as a host), absolute-form as it is; anything else is not routable.
 */
export function requestUrl(target: string): URL | undefined {
  try {
    if (target.startsWith('/')) return new URL(`http://localhost${target}`);
    if (/^https?:\/\//i.test(target)) return new URL(target);
  } catch {
    // Malformed: answered with 400.
  }
  return undefined;
}

export class HttpRoutes {
  private readonly routes: Route[] = [];
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  /**
   * Registers a handler; `path` is exact unless `prefix` is set, in which case it matches the path and
   * everything below it ("/upload" matches "/upload/a/b"). '*' matches every method. Returns the unregister function.
   */
  route(method: string, path: string, handler: HttpHandler, opts: { prefix?: boolean } = {}): () => void {
    const route: Route = { method: method.toUpperCase(), path: path.replace(/\/+$/, '') || '/', prefix: opts.prefix ?? false, handler };
    const clash = this.routes.find((r) => r.path === route.path && r.prefix === route.prefix && (r.method === route.method || r.method === '*' || route.method === '*'));
    if (clash) throw new Error(`HTTP route ${route.method} ${route.path} is already registered`);
    this.routes.push(route);
    // Longest paths first, so /admin/api wins over /admin; an exact route before a prefix route of the same path.
    this.routes.sort((a, b) => b.path.length - a.path.length || Number(a.prefix) - Number(b.prefix));
    return () => {
      const i = this.routes.indexOf(route);
      if (i >= 0) this.routes.splice(i, 1);
    };
  }

  /** Registers the handler of HTTP upgrades (WebSocket) on an exact path. */
  upgrade(path: string, handler: UpgradeHandler): () => void {
    if (this.upgrades.has(path)) throw new Error(`HTTP upgrade ${path} is already registered`);
    this.upgrades.set(path, handler);
    return () => { this.upgrades.delete(path); };
  }

  /**
   * The routes of the most specific path that matches: a request below /admin/api is /admin/api's to answer
   * (with 405 if its method is not there), never passed on to a shorter prefix such as /admin.
   */
  private match(pathname: string): Route[] {
    const matches = (r: Route): boolean => r.path === pathname || (r.prefix && (r.path === '/' || pathname.startsWith(`${r.path}/`)));
    const best = this.routes.find(matches);
    return best ? this.routes.filter((r) => r.path === best.path && matches(r)) : [];
  }

  async dispatch(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    const url = requestUrl(req.url ?? '/');
    if (!url) {
      sendText(res, 400, 'Bad request');
      discardBody(req);
      return;
    }
    const candidates = this.match(url.pathname);
    const method = (req.method ?? 'GET').toUpperCase();
    const route = candidates.find((r) => r.method === method || r.method === '*')
      ?? (method === 'HEAD' ? candidates.find((r) => r.method === 'GET') : undefined);
    if (!route) {
      if (candidates.length > 0) {
        const allowed = new Set(candidates.map((r) => r.method));
        if (allowed.has('GET')) allowed.add('HEAD');
        res.setHeader('Allow', [...allowed].join(', '));
        sendText(res, 405, 'Method not allowed');
      } else {
        sendText(res, 404, 'Not found');
      }
      discardBody(req);
      return;
    }
    const rest = route.prefix ? url.pathname.slice(route.path === '/' ? 1 : route.path.length + 1) : '';
    try {
      await route.handler({ req, res, url, secure, remoteAddress: remoteAddressOf(req), rest });
    } catch (err) {
      if (err instanceof HttpError) {
        if (!res.headersSent) {
          for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
          sendText(res, err.status, err.message);
          discardBody(req);
        } else {
          res.destroy();
        }
        return;
      }
      this.log.error({ err, path: url.pathname, method }, 'HTTP handler failed');
      if (!res.headersSent) {
        sendText(res, 500, 'Internal server error');
        discardBody(req);
      } else {
        res.destroy();
      }
    }
  }

  dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    const pathname = requestUrl(req.url ?? '/')?.pathname ?? '';
    const handler = this.upgrades.get(pathname);
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    try {
      handler(req, socket, head, secure);
    } catch (err) {
      this.log.error({ err, path: pathname }, 'HTTP upgrade handler failed');
      socket.destroy();
    }
  }
}
