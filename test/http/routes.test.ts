// The shared HTTP layer (route table, answers and bounded bodies, listeners) over real sockets: unknown paths and
// methods, HEAD, prefix routes, body and header limits, handler failures, and the HTTPS listener.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { HttpSchema } from '../../src/config/http-schema.ts';
import { HttpListener } from '../../src/http/listener.ts';
import { HttpError, readBody, sendJson, sendText } from '../../src/http/respond.ts';
import { HttpRoutes } from '../../src/http/routes.ts';
import { request, RawHttp } from '../helpers/http.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const MAX_BODY = 2048;

describe('HTTP route table and listener', () => {
  const logLines: string[] = [];
  const log = pino({ level: 'debug' }, new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  }));
  const config = HttpSchema.parse({ max_body: MAX_BODY, max_header_size: 2048 });
  const routes = new HttpRoutes(log);
  let listener: HttpListener;
  let port: number;

  before(async () => {
    routes.route('GET', '/t/echo', ({ res }) => sendText(res, 200, 'hello'));
    routes.route('POST', '/t/body', async ({ req, res }) => {
      const body = await readBody(req, config.max_body);
      sendJson(res, 200, { length: body.length, last: body.subarray(-1).toString('latin1') });
    });
    routes.route('POST', '/t/only-post', ({ res }) => sendText(res, 204, ''));
    routes.route('GET', '/t/files', ({ res, rest }) => sendJson(res, 200, { files: rest }), { prefix: true });
    routes.route('GET', '/t/files/deep', ({ res, rest }) => sendJson(res, 200, { deep: rest }), { prefix: true });
    routes.route('GET', '/t/boom', () => {
      throw new Error('kaboom');
    });
    routes.route('GET', '/t/teapot', () => {
      throw new HttpError(401, 'Who are you?', { 'WWW-Authenticate': 'Bearer realm="t"' });
    });
    listener = new HttpListener(routes, config, { bind: '127.0.0.1', port: 0, name: 'test' }, log);
    port = (await listener.listen()).port;
  });
  after(() => listener.close());

  it('answers 404 for a path nothing is registered on', async () => {
    const r = await request({ port, path: '/nothing/here' });
    assert.equal(r.status, 404);
    assert.equal(r.body, 'Not found');
  });

  it('answers 405 with Allow for a known path and another method (HEAD allowed where GET is)', async () => {
    const a = await request({ port, path: '/t/echo', method: 'DELETE' });
    assert.equal(a.status, 405);
    assert.equal(a.headers.allow, 'GET, HEAD');
    const b = await request({ port, path: '/t/only-post' });
    assert.equal(b.status, 405);
    assert.equal(b.headers.allow, 'POST');
  });

  it('answers HEAD like GET, without the body', async () => {
    const get = await request({ port, path: '/t/echo' });
    const head = await request({ port, path: '/t/echo', method: 'HEAD' });
    assert.equal(get.status, 200);
    assert.equal(get.body, 'hello');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], '5');
    assert.equal(head.headers['content-type'], get.headers['content-type']);
  });

  it('matches prefix routes on whole path segments and hands over the rest; the most specific path decides', async () => {
    assert.deepEqual(JSON.parse((await request({ port, path: '/t/files/a/b%20c?x=1' })).body), { files: 'a/b%20c' });
    assert.deepEqual(JSON.parse((await request({ port, path: '/t/files' })).body), { files: '' });
    assert.equal((await request({ port, path: '/t/filesystem' })).status, 404);
    assert.deepEqual(JSON.parse((await request({ port, path: '/t/files/deep/x' })).body), { deep: 'x' });
    // /t/files/deep owns its subtree: another method is refused there, not passed on to /t/files.
    const post = await request({ port, path: '/t/files/deep/x', method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  it('takes an origin-form target starting with // as a path, not as a host', async () => {
    const raw = await RawHttp.open(port);
    raw.write('GET //evil.example/t/echo HTTP/1.1\r\nHost: localhost\r\n\r\n');
    assert.equal((await raw.response()).status, 404);
    raw.write('GET http://localhost/t/echo HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const absolute = await raw.response();
    assert.equal(absolute.status, 200);
    assert.equal(absolute.body, 'hello');
    raw.destroy();
  });

  it('reads a body up to http.max_body and refuses a larger declared one with 413', async () => {
    const ok = await request({ port, path: '/t/body', method: 'POST', body: 'a'.repeat(MAX_BODY - 1) + 'z' });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { length: MAX_BODY, last: 'z' });
    const big = await request({ port, path: '/t/body', method: 'POST', body: 'a'.repeat(MAX_BODY + 1) });
    assert.equal(big.status, 413);
    // Declared far above the limit and never sent: refused at once, from the header alone.
    const raw = await RawHttp.open(port);
    raw.write(`POST /t/body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n\r\n`);
    assert.equal((await raw.response()).status, 413);
    raw.destroy();
  });

  it('refuses a chunked body that grows past http.max_body with 413, and the connection serves the next request', async () => {
    const raw = await RawHttp.open(port);
    const chunk = (s: string): string => `${s.length.toString(16)}\r\n${s}\r\n`;
    raw.write('POST /t/body HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (let i = 0; i < 6; i++) raw.write(chunk('b'.repeat(500)));
    // The answer comes while the body is still being sent; the rest of it is read and dropped.
    const refused = await raw.response();
    assert.equal(refused.status, 413);
    raw.write(chunk('b'.repeat(500)) + '0\r\n\r\n');
    raw.write('GET /t/echo HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const next = await raw.response();
    assert.equal(next.status, 200);
    assert.equal(next.body, 'hello');
    // A chunked body within the limit is read whole.
    raw.write('POST /t/body HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n');
    raw.write(chunk('c'.repeat(1000)) + chunk('d'.repeat(999)) + chunk('e') + '0\r\n\r\n');
    const read = await raw.response();
    assert.equal(read.status, 200);
    assert.deepEqual(JSON.parse(read.body), { length: 2000, last: 'e' });
    raw.destroy();
  });

  it('answers 431 to headers above http.max_header_size and closes', async () => {
    const raw = await RawHttp.open(port);
    raw.write(`GET /t/echo HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'h'.repeat(4000)}\r\n\r\n`);
    const r = await raw.response();
    assert.equal(r.status, 431);
    await raw.waitClosed();
  });

  it('answers 431 to more header fields than http.max_headers, rather than dropping some', async () => {
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: v\r\n`).join('');
    const ok = await RawHttp.open(port);
    ok.write(`GET /t/echo HTTP/1.1\r\nHost: localhost\r\n${fields(98)}Connection: close\r\n\r\n`); // 100 in all
    assert.notEqual((await ok.response()).status, 431);
    ok.destroy();
    const raw = await RawHttp.open(port);
    raw.write(`GET /t/echo HTTP/1.1\r\nHost: localhost\r\n${fields(100)}\r\n\r\n`); // 101
    assert.equal((await raw.response()).status, 431);
    await raw.waitClosed();
  });

  it('answers 400 to a request that is not HTTP and closes', async () => {
    const raw = await RawHttp.open(port);
    raw.write('HELLO\r\n\r\n');
    assert.equal((await raw.response()).status, 400);
    await raw.waitClosed();
  });

  it('turns a handler exception into 500 and logs it', async () => {
    const r = await request({ port, path: '/t/boom' });
    assert.equal(r.status, 500);
    assert.equal(r.body, 'Internal server error');
    assert.ok(!r.body.includes('kaboom'));
    const line = logLines.find((l) => l.includes('HTTP handler failed'));
    assert.ok(line, 'the failure is logged');
    assert.match(line, /kaboom/);
    assert.match(line, /"path":"\/t\/boom"/);
  });

  it('answers an HttpError with its status and headers', async () => {
    const r = await request({ port, path: '/t/teapot' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="t"');
    assert.equal(r.body, 'Who are you?');
  });

  it('answers 404 to an upgrade on a path without an upgrade handler', async () => {
    const raw = await RawHttp.open(port);
    raw.write('GET /t/echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    assert.equal((await raw.response()).status, 404);
    raw.destroy();
  });

  it('refuses a second route on the same method and path, however spelt', () => {
    assert.throws(() => routes.route('get', '/t/echo', () => undefined), /already registered/);
    assert.throws(() => routes.route('GET', '/t/echo/', () => undefined), /already registered/);
    assert.throws(() => routes.route('*', '/t/only-post', () => undefined), /already registered/);
    // The same path as a prefix route is another route.
    const remove = routes.route('GET', '/t/echo', () => undefined, { prefix: true });
    remove();
  });

  it('accepts a headers timeout longer than the request timeout (the request timeout covers both)', async () => {
    const l = new HttpListener(routes, HttpSchema.parse({ headers_timeout: 20, request_timeout: 10 }), { bind: '127.0.0.1', port: 0, name: 'short' }, log);
    const p = (await l.listen()).port;
    assert.equal((await request({ port: p, path: '/t/echo' })).body, 'hello');
    await l.close();
  });
});

describe('HTTPS listener', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer();
  });
  after(() => t.stop());

  it('serves the route table over TLS with the server certificate', async () => {
    assert.ok(t.httpsPort > 0);
    const r = await request({ port: t.httpsPort, path: '/health', tls: true });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
    assert.equal((await request({ port: t.httpsPort, path: '/nothing', tls: true })).status, 404);
  });

  it('applies the header limit over TLS too', async () => {
    const r = await request({ port: t.httpsPort, path: '/health', tls: true, headers: { 'X-Big': 'h'.repeat(20_000) } }).catch((err: Error) => err);
    assert.ok(!(r instanceof Error), `an answer, not ${String(r)}`);
    assert.equal(r.status, 431);
  });
});
