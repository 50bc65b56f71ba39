// HTTP requests for tests: a small client over node:http(s) with a chosen source address, and raw exchanges for
// malformed or oversized requests.
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';

export type HttpReply = { status: number; headers: IncomingHttpHeaders; body: string };

export type HttpRequestOptions = {
  port: number;
  path: string;
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Source address of the connection (any of 127.0.0.0/8 works on loopback). */
  localAddress?: string;
  /** HTTPS, verifying the server certificate for `localhost`. */
  tls?: boolean;
};

export function request(o: HttpRequestOptions): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const send = o.tls ? httpsRequest : httpRequest;
    const req = send({
      host: '127.0.0.1', port: o.port, path: o.path, method: o.method ?? 'GET', headers: o.headers, agent: false,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      ...(o.tls ? { servername: 'localhost' } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer to ${o.method ?? 'GET'} ${o.path}`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** A raw HTTP/1.1 connection: write bytes, read whole responses (status line, headers, Content-Length body). */
export class RawHttp {
  private readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static open(port: number): Promise<RawHttp> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(new RawHttp(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next whole response on the connection; rejects if the connection closes first or after 10 s. */
  async response(): Promise<{ status: number; head: string; body: string }> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buffer.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (this.buffer.length >= end + 4 + length) {
          const body = this.buffer.subarray(end + 4, end + 4 + length).toString('utf8');
          this.buffer = this.buffer.subarray(end + 4 + length);
          return { status: Number(head.slice(9, 12)), head, body };
        }
      }
      if (this.closed) throw new Error(`connection closed; received: ${this.buffer.toString('latin1')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no whole response; received: ${this.buffer.toString('latin1')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves when the server has closed the connection (bounded). */
  async waitClosed(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
