// The HTTP and HTTPS listeners: plain node:http servers handing every request and upgrade to one route table.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { HttpConfig } from '../config/http-schema.ts';
import type { HttpRoutes } from './routes.ts';

export type HttpListenerOptions = {
  bind: string;
  port: number;
  /** TLS certificate and key (PEM) for the HTTPS listener; absent for plain HTTP. */
  tls?: { cert: string; key: string };
  name: string;
};

/** Statuses for the parser's and the server's errors (Node's own choices when no handler is installed). */
const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

/** A response already being written on this socket cannot be followed by another status line (Node's own
 * handler looks at the same internal field). */
function responseStarted(socket: Duplex): boolean {
  const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  return current?.headersSent === true;
}

export class HttpListener {
  private readonly server: HttpServer;
  private readonly sockets = new Set<Socket>();
  private readonly options: HttpListenerOptions;
  private readonly log: Logger;
  address: AddressInfo | undefined;

  constructor(routes: HttpRoutes, config: HttpConfig, options: HttpListenerOptions, log: Logger) {
    this.options = options;
    this.log = log;
    const common = {
      maxHeaderSize: config.max_header_size,
      // Node refuses a headers timeout longer than the request timeout; the whole request's limit covers the headers.
      headersTimeout: Math.min(config.headers_timeout, config.request_timeout) * 1000,
      requestTimeout: config.request_timeout * 1000,
      keepAliveTimeout: 5000,
    };
    const secure = options.tls !== undefined;
    this.server = secure
      ? createHttpsServer({ ...common, cert: options.tls?.cert, key: options.tls?.key, minVersion: 'TLSv1.2' })
      : createHttpServer(common);
    // Node keeps at most maxHeadersCount fields and drops the rest silently: one more than allowed is read, so a
    // request with too many is seen and refused (431) rather than handled without some of its headers.
    this.server.maxHeadersCount = config.max_headers + 1;
    const tooMany = (config.max_headers + 1) * 2;
    const refuseTooMany = (socket: Duplex): void => {
      socket.end('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    };
    this.server.on('request', (req, res) => {
      if (req.rawHeaders.length >= tooMany) {
        res.writeHead(431, { Connection: 'close', 'Content-Length': 0 }).end();
        req.resume();
        return;
      }
      routes.dispatch(req, res, secure).catch((err: unknown) => {
        // The route table answers handler failures itself; this is a failure while answering (a bad header value).
        this.log.error({ err, path: req.url }, 'HTTP request failed');
        res.destroy();
      });
    });
    this.server.on('upgrade', (req, socket, head) => {
      if (req.rawHeaders.length >= tooMany) refuseTooMany(socket);
      else routes.dispatchUpgrade(req, socket, head, secure);
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // With a listener here Node no longer answers by itself: the status is ours to write, on the raw socket.
      this.log.debug({ err: err.message, code: err.code }, 'HTTP client error');
      const status = err.code === 'ECONNRESET' || !socket.writable ? undefined : CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request';
      if (status === undefined || responseStarted(socket)) socket.destroy();
      else socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
    this.server.on('tlsClientError', (err: Error) => this.log.debug({ err: err.message }, 'HTTPS TLS client error'));
  }

  /** Whether the listener accepts connections. */
  get listening(): boolean {
    return this.server.listening;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: this.options.bind, port: this.options.port, backlog: 511 }, () => {
        this.server.off('error', reject);
        this.server.on('error', (err) => this.log.error({ err, listener: this.options.name }, 'listener error'));
        this.address = this.server.address() as AddressInfo;
        this.log.info({ listener: this.options.name, address: this.address.address, port: this.address.port }, 'listening');
        resolve(this.address);
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}
