// The HTTP and HTTPS listeners: plain node:http servers handing every request and upgrade to one route table.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
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
      headersTimeout: config.headers_timeout * 1000,
      requestTimeout: config.request_timeout * 1000,
      keepAliveTimeout: 5000,
    };
    const secure = options.tls !== undefined;
    this.server = secure
      ? createHttpsServer({ ...common, cert: options.tls?.cert, key: options.tls?.key, minVersion: 'TLSv1.2' })
      : createHttpServer(common);
    this.server.maxHeadersCount = config.max_headers;
    this.server.on('request', (req, res) => void routes.dispatch(req, res, secure));
    this.server.on('upgrade', (req, socket, head) => routes.dispatchUpgrade(req, socket, head, secure));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      // Node answers 431 for oversized headers itself when the socket is still writable.
      this.log.debug({ err: err.message, code: err.code }, 'HTTP client error');
      if (socket.writable && err.code === 'HPE_HEADER_OVERFLOW') {
        socket.end('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else if (socket.writable) {
        socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      } else {
        socket.destroy();
      }
    });
    this.server.on('tlsClientError', (err: Error) => this.log.debug({ err: err.message }, 'HTTPS TLS client error'));
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
