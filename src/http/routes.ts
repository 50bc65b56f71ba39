// The HTTP route table that every web service (WebSocket, BOSH, upload, admin, REST API, metrics) plugs into.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { HttpError, sendText } from './respond.ts';

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
    const clash = this.routes.find((r) => r.path === path && r.prefix === (opts.prefix ?? false) && (r.method === method || r.method === '*' || method === '*'));
    if (clash) throw new Error(`HTTP route ${method} ${path} is already registered`);
    const route: Route = { method: method.toUpperCase(), path: path.replace(/\/+$/, '') || '/', prefix: opts.prefix ?? false, handler };
    this.routes.push(route);
    // Longest paths first, so /admin/api wins over /admin.
    this.routes.sort((a, b) => b.path.length - a.path.length);
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

  private match(pathname: string): Route[] {
    return this.routes.filter((r) => r.path === pathname || (r.prefix && (r.path === '/' || pathname.startsWith(`${r.path}/`))));
  }

  async dispatch(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendText(res, 400, 'Bad request');
      return;
    }
    const candidates = this.match(url.pathname);
    const method = (req.method ?? 'GET').toUpperCase();
    const route = candidates.find((r) => r.method === method || r.method === '*' || (method === 'HEAD' && r.method === 'GET'));
    if (!route) {
      if (candidates.length > 0) {
        res.setHeader('Allow', [...new Set(candidates.map((r) => r.method))].join(', '));
        sendText(res, 405, 'Method not allowed');
      } else {
        sendText(res, 404, 'Not found');
      }
      req.resume();
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
        } else {
          res.destroy();
        }
        req.resume();
        return;
      }
      this.log.error({ err, path: url.pathname, method }, 'HTTP handler failed');
      if (!res.headersSent) sendText(res, 500, 'Internal server error');
      else res.destroy();
    }
  }

  dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, secure: boolean): void {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      pathname = '';
    }
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
