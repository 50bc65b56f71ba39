// The HTTP backend against a real local endpoint: the request format, verdicts, retries, timeouts and the cache.
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { AccountError } from '../../src/auth/account-error.ts';
import { createHttpBackend, type HttpAuthOptions } from '../../src/auth/http.ts';
import type { AuthBackend, AuthBackendContext } from '../../src/auth/types.ts';
import type { Storage } from '../../src/storage/types.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

type Seen = { method: string | undefined; contentType: string | undefined; authorization: string | undefined; body: Record<string, unknown> };

/**
 * The app's endpoint. Users: alice/wonderland, carol/"pa:ss:word". Special users: `flaky` fails once with 500
 * then succeeds, `down` always answers 503, `slow` never answers, `forbidden` gets 403, `broken` gets a body that
 * is not JSON.
 */
class Endpoint {
  server: Server;
  url = '';
  seen: Seen[] = [];
  users = new Map<string, string>();
  flakyFailed = false;

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/xmpp/auth`;
  }

  reset(): void {
    this.seen = [];
    this.users = new Map([['alice', 'wonderland'], ['carol', 'pa:ss:word']]);
    this.flakyFailed = false;
  }

  of(user: string): Seen[] {
    return this.seen.filter((s) => s.body.user === user);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    this.seen.push({ method: req.method, contentType: req.headers['content-type'], authorization: req.headers.authorization, body });
    const user = String(body.user);
    const password = body.password as string | undefined;
    const answer = (result: boolean): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result }));
    };
    if (user === 'slow') return; // never answered; the connection is dropped at the end
    if (user === 'down') return void res.writeHead(503).end();
    if (user === 'forbidden') return void res.writeHead(403).end();
    if (user === 'broken') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
    if (user === 'flaky' && !this.flakyFailed) {
      this.flakyFailed = true;
      return void res.writeHead(500).end();
    }
    if (user === 'flaky') return answer(true);
    const known = this.users.has(user);
    switch (body.action) {
      case 'auth': return answer(known && this.users.get(user) === password);
      case 'isuser': return answer(known);
      case 'register':
        if (!known) this.users.set(user, password as string);
        return answer(!known);
      case 'setpass':
        if (known) this.users.set(user, password as string);
        return answer(known);
      case 'removeuser':
        this.users.delete(user);
        return answer(known);
      default:
        return void res.writeHead(400).end();
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const endpoint = new Endpoint();
let logLines: string[] = [];

function backend(opts: Partial<HttpAuthOptions> = {}): AuthBackend {
  const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
  const ctx: AuthBackendContext = { host: 'localhost', storage: {} as Storage, log, scramIterations: 4096 };
  return createHttpBackend({ url: endpoint.url, timeout: 5, retries: 1, cache_seconds: 0, headers: {}, manage_accounts: false, ...opts }, ctx);
}

const backendError = (err: unknown): boolean => err instanceof AccountError && err.code === 'BACKEND';

before(() => endpoint.start());
after(() => endpoint.stop());
beforeEach(() => {
  endpoint.reset();
  logLines = [];
});

describe('http backend', () => {
  it('POSTs the documented JSON and accepts {"result": true}', async () => {
    const b = backend({ headers: { Authorization: 'Bearer app-token' } });
    assert.equal(b.verification, 'plain');
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.deepEqual(endpoint.seen, [{
      method: 'POST',
      contentType: 'application/json',
      authorization: 'Bearer app-token',
      body: { action: 'auth', user: 'alice', server: 'localhost', password: 'wonderland' },
    }]);
  });

  it('sends the prepared localpart and a password with colons as it is', async () => {
    const b = backend();
    assert.equal(await b.checkPassword?.('Carol', 'pa:ss:word'), 'carol');
    assert.equal(endpoint.seen[0]?.body.user, 'carol');
  });

  it('refuses a wrong password without retrying', async () => {
    const b = backend({ retries: 3 });
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(await b.checkPassword?.('nobody', 'wonderland'), false);
    assert.equal(endpoint.seen.length, 2);
  });

  it('treats a 4xx answer as a plain refusal, not retried', async () => {
    const b = backend({ retries: 3 });
    assert.equal(await b.checkPassword?.('forbidden', 'x'), false);
    assert.equal(await b.userExists('forbidden'), false);
    assert.equal(endpoint.of('forbidden').length, 2);
  });

  it('retries after a 500 and then succeeds', async () => {
    const b = backend({ retries: 1 });
    assert.equal(await b.checkPassword?.('flaky', 'x'), 'flaky');
    assert.equal(endpoint.of('flaky').length, 2);
  });

  it('gives up after the configured retries with a backend error', async () => {
    const b = backend({ retries: 2 });
    await assert.rejects(b.checkPassword?.('down', 'secret-down-pw') as Promise<string | false>, (err) => backendError(err) && /HTTP 503/.test((err as Error).message));
    assert.equal(endpoint.of('down').length, 3);
    assert.ok(!logLines.join('').includes('secret-down-pw'), 'the password is never logged');
  });

  it('times out a request that gets no answer, retries it, then fails', async () => {
    const b = backend({ timeout: 0.3, retries: 1 });
    await assert.rejects(b.checkPassword?.('slow', 'x') as Promise<string | false>, backendError);
    assert.equal(endpoint.of('slow').length, 2);
  });

  it('fails as a backend error when the endpoint cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const b = backend({ url: `http://127.0.0.1:${port}/auth`, retries: 1 });
    await assert.rejects(b.checkPassword?.('alice', 'wonderland') as Promise<string | false>, backendError);
  });

  it('fails as a backend error on an answer that is not the documented JSON', async () => {
    const b = backend({ retries: 3 });
    await assert.rejects(b.checkPassword?.('broken', 'x') as Promise<string | false>, backendError);
    assert.equal(endpoint.of('broken').length, 1, 'a malformed answer is not retried');
  });

  it('asks isuser for userExists', async () => {
    const b = backend();
    assert.equal(await b.userExists('alice'), true);
    assert.equal(await b.userExists('nobody'), false);
    assert.deepEqual(endpoint.seen.map((s) => s.body), [
      { action: 'isuser', user: 'alice', server: 'localhost' },
      { action: 'isuser', user: 'nobody', server: 'localhost' },
    ]);
  });

  it('without a cache, asks every time', async () => {
    const b = backend();
    await b.checkPassword?.('alice', 'wonderland');
    await b.checkPassword?.('alice', 'wonderland');
    assert.equal(endpoint.seen.length, 2);
  });

  it('caches successes only', async () => {
    const b = backend({ cache_seconds: 300 });
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.equal(endpoint.seen.length, 1);
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(endpoint.seen.length, 3);
  });

  it('offers no account management unless manage_accounts is on', () => {
    const b = backend();
    assert.equal(b.register, undefined);
    assert.equal(b.setPassword, undefined);
    assert.equal(b.remove, undefined);
  });

  it('with manage_accounts, sends register, setpass and removeuser, and drops cached passwords', async () => {
    const b = backend({ manage_accounts: true, cache_seconds: 300 });
    await b.register?.('dave', 'first');
    await assert.rejects(b.register?.('dave', 'again') as Promise<void>, (err) => err instanceof AccountError && err.code === 'EXISTS');
    assert.equal(await b.checkPassword?.('dave', 'first'), 'dave');
    await b.setPassword?.('dave', 'second');
    assert.equal(await b.checkPassword?.('dave', 'first'), false, 'the cached password was dropped');
    assert.equal(await b.checkPassword?.('dave', 'second'), 'dave');
    await b.remove?.('dave');
    assert.equal(await b.checkPassword?.('dave', 'second'), false);
    await assert.rejects(b.setPassword?.('dave', 'x') as Promise<void>, (err) => err instanceof AccountError && err.code === 'NOT_FOUND');
    await assert.rejects(b.remove?.('dave') as Promise<void>, (err) => err instanceof AccountError && err.code === 'NOT_FOUND');
    assert.deepEqual(endpoint.seen.slice(0, 2).map((s) => s.body), [
      { action: 'register', user: 'dave', server: 'localhost', password: 'first' },
      { action: 'register', user: 'dave', server: 'localhost', password: 'again' },
    ]);
  });

  it('never retries register', async () => {
    const b = backend({ manage_accounts: true, retries: 3 });
    await assert.rejects(b.register?.('down', 'x') as Promise<void>, backendError);
    assert.equal(endpoint.of('down').length, 1);
  });
});

describe('http backend end to end', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ auth: { methods: ['http'], http: { url: endpoint.url } } });
  });
  after(() => t?.stop());

  it('logs in with PLAIN over STARTTLS through the endpoint', async () => {
    const c = await RawClient.connect(t.port);
    assert.equal(await c.login('alice', 'wonderland', 'web'), 'alice@localhost/web');
    c.destroy();
    assert.deepEqual(endpoint.of('alice').at(-1)?.body, { action: 'auth', user: 'alice', server: 'localhost', password: 'wonderland' });
  });

  it('refuses a wrong password', async () => {
    const c = await RawClient.connect(t.port);
    await c.openStream();
    await c.starttls();
    await c.openStream();
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0alice\0wrong').toString('base64')}</auth>`);
    await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/);
    c.destroy();
  });
});
