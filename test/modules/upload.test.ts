// XEP-0363 HTTP File Upload: slots over XMPP, PUT and GET over the real HTTPS listener, the errors of §5 and §6,
// path traversal, expiry and account removal.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, relative, sep } from 'node:path';
import { xml, type Element } from '../../src/xml/element.ts';
import { parseElement } from '../../src/xml/parse.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const NS = 'urn:xmpp:http:upload:0';
const INFO = 'http://jabber.org/protocol/disco#info';
const ITEMS = 'http://jabber.org/protocol/disco#items';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

type Reply = { status: number; headers: IncomingHttpHeaders; body: Buffer };

/** One HTTP(S) request; `target` is a full URL, or a raw path sent byte for byte to the test server. */
function call(target: string | { t: TestServer; path: string; tls?: boolean }, method: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const h: Record<string, string | number> = { ...headers };
    if (data && h['Content-Length'] === undefined) h['Content-Length'] = data.length;
    const options = { method, headers: h, agent: false as const };
    let req;
    if (typeof target === 'string') {
      req = (target.startsWith('https:') ? httpsRequest : httpRequest)(target, options);
    } else {
      const secure = target.tls ?? true;
      const o = { ...options, hostname: 'localhost', port: secure ? target.t.httpsPort : target.t.httpPort, path: target.path };
      req = secure ? httpsRequest(o) : httpRequest(o);
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

const condition = (reply: Element): string | undefined => reply.getChild('error')?.getElements().find((e) => e.attrs.xmlns === STANZAS)?.name;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Every file below a directory, relative to it. */
function filesBelow(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  }
  return out.sort();
}

/** Waits (bounded) until a condition holds. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

class Uploader {
  private seq = 0;
  private readonly t: TestServer;
  readonly clients: RawClient[] = [];
  constructor(t: TestServer) { this.t = t; }

  async login(user: string): Promise<RawClient> {
    await this.t.register(user, 'pw');
    const c = await RawClient.connect(this.t.port);
    this.clients.push(c);
    await c.login(user, 'pw', 'r');
    return c;
  }

  iq(c: RawClient, to: string, payload: Element, type = 'get'): Promise<Element> {
    return this.raw(c, payload.toString(), to, type);
  }

  /** Sends an IQ with a payload given as XML text; the parsed reply. */
  async raw(c: RawClient, payload: string, to = 'upload.localhost', type = 'get'): Promise<Element> {
    const id = `u${++this.seq}`;
    c.send(`<iq type='${type}' id='${id}' to='${to}'>${payload}</iq>`);
    const raw = (await c.expect(new RegExp(`<iq[^>]*id="${id}"[^>]*(/>|>[\\s\\S]*?</iq>)`)))[0];
    const el = parseElement(raw);
    assert.ok(el, raw);
    return el;
  }

  /** Asks for a slot; the raw reply. */
  ask(c: RawClient, attrs: Record<string, string | number>, to = 'upload.localhost'): Promise<Element> {
    return this.iq(c, to, xml('request', { xmlns: NS, ...attrs }));
  }

  /** Asks for a slot that must be granted; its PUT and GET URLs. */
  async slot(c: RawClient, attrs: Record<string, string | number>): Promise<{ put: string; get: string }> {
    const reply = await this.ask(c, attrs);
    assert.equal(reply.attrs.type, 'result', reply.toString());
    const slot = reply.getChild('slot', NS);
    const put = slot?.getChild('put')?.attrs.url;
    const get = slot?.getChild('get')?.attrs.url;
    assert.ok(put && get, reply.toString());
    assert.equal(slot?.getChild('put')?.getChildren('header').length, 0, 'no headers needed beyond the URL');
    return { put, get };
  }

  close(): void {
    for (const c of this.clients) c.destroy();
  }
}

describe('HTTP file upload', () => {
  let t: TestServer;
  let u: Uploader;
  const root = (): string => join(t.dataDir, 'upload');

  before(async () => {
    t = await startServer({
      acl: { blocked: { user: ['blocked@localhost'] } },
      access: { upload: [{ deny: 'blocked' }, 'allow'] },
      modules: { upload: { max_file_size: 4096, quota: 10_000, slots_per_minute: 5, access: 'upload' } },
    });
    u = new Uploader(t);
  });
  after(async () => {
    u.close();
    await t.stop();
  });

  it('lists the service in the host\'s disco#items and answers disco#info with max-file-size', async () => {
    const c = await u.login('disco');
    const items = await u.iq(c, 'localhost', xml('query', { xmlns: ITEMS }));
    const listed = items.getChild('query', ITEMS)?.getChildren('item').map((i) => ({ ...i.attrs }));
    assert.ok(listed?.some((i) => i.jid === 'upload.localhost' && i.name === 'HTTP File Upload'), items.toString());

    const info = await u.iq(c, 'upload.localhost', xml('query', { xmlns: INFO }));
    assert.equal(info.attrs.type, 'result');
    assert.equal(info.attrs.from, 'upload.localhost');
    const q = info.getChild('query', INFO);
    assert.deepEqual(q?.getChild('identity')?.attrs, { category: 'store', type: 'file', name: 'HTTP File Upload' });
    assert.ok(q?.getChildren('feature').some((f) => f.attrs.var === NS));
    const form = q?.getChild('x', 'jabber:x:data');
    assert.equal(form?.attrs.type, 'result');
    const field = (name: string): string | undefined => form?.getChildren('field').find((f) => f.attrs.var === name)?.getChildText('value');
    assert.equal(field('FORM_TYPE'), NS);
    assert.equal(field('max-file-size'), '4096');

    const svcItems = await u.iq(c, 'upload.localhost', xml('query', { xmlns: ITEMS }));
    assert.equal(svcItems.attrs.type, 'result');
    const unknown = await u.iq(c, 'upload.localhost', xml('query', { xmlns: 'jabber:iq:version' }));
    assert.equal(condition(unknown), 'service-unavailable');
  });

  it('grants a slot, takes the PUT over HTTPS with 201 and serves the file back with its content type', async () => {
    const c = await u.login('alice');
    const content = Buffer.from('\x89PNG\r\n\x1a\n not really a picture');
    const { put, get } = await u.slot(c, { filename: 'my juliet.png', size: content.length, 'content-type': 'image/png' });
    assert.match(put, new RegExp(`^https://localhost:${t.httpsPort}/upload/localhost/[A-Za-z0-9_-]{24}/[A-Za-z0-9_-]{43}/my%20juliet\\.png$`));

    const before = await call(get, 'GET');
    assert.equal(before.status, 404, 'nothing to serve before the upload');

    const res = await call(put, 'PUT', content, { 'Content-Type': 'image/png' });
    assert.equal(res.status, 201);
    assert.equal(res.headers['access-control-allow-origin'], '*');

    const got = await call(get, 'GET');
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, content);
    assert.equal(got.headers['content-type'], 'image/png');
    assert.equal(got.headers['content-length'], String(content.length));
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    assert.match(String(got.headers['content-security-policy']), /sandbox/);
    assert.match(String(got.headers['content-disposition']), /^inline; filename="my juliet.png"; filename\*=UTF-8''my%20juliet\.png$/);
    assert.equal(got.headers['access-control-allow-origin'], '*');

    const head = await call(get, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(content.length));
    assert.equal(head.body.length, 0);

    const part = await call(get, 'GET', undefined, { Range: 'bytes=1-3' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1-3/${content.length}`);
    assert.deepEqual(part.body, content.subarray(1, 4));
    assert.equal((await call(get, 'GET', undefined, { Range: 'bytes=999-' })).status, 416);

    // Stored under <data_dir>/upload/<host>/<slot id>/<filename>, readable by the server alone.
    const stored = filesBelow(root()).filter((f) => !f.endsWith('.key'));
    const id = new URL(get).pathname.split('/')[3] as string;
    assert.ok(stored.includes(join('localhost', id, 'my juliet.png')), stored.join(', '));
    assert.equal(statSync(join(root(), 'localhost', id, 'my juliet.png')).mode & 0o077, 0);
    assert.equal(statSync(join(root(), 'localhost', id)).mode & 0o077, 0);
    assert.equal(statSync(join(t.dataDir, 'upload.key')).mode & 0o777, 0o600);
  });

  it('serves types a browser could run as attachments, and a slot without a content type as octet-stream', async () => {
    const c = await u.login('mallory');
    const page = '<script>alert(1)</script>';
    const html = await u.slot(c, { filename: 'page.html', size: page.length, 'content-type': 'text/html' });
    assert.equal((await call(html.put, 'PUT', page, { 'Content-Type': 'text/html; charset=utf-8' })).status, 201);
    const got = await call(html.get, 'GET');
    assert.equal(got.headers['content-type'], 'text/html');
    assert.match(String(got.headers['content-disposition']), /^attachment; /);
    assert.match(String(got.headers['content-security-policy']), /default-src 'none'; sandbox/);

    const blob = await u.slot(c, { filename: 'data.bin', size: 3 });
    assert.equal((await call(blob.put, 'PUT', 'abc', { 'Content-Type': 'application/x-whatever' })).status, 201);
    const b = await call(blob.get, 'GET');
    assert.equal(b.headers['content-type'], 'application/octet-stream');
    assert.match(String(b.headers['content-disposition']), /^attachment; filename="data.bin"/);
  });

  it('answers the CORS preflight of a browser PUT', async () => {
    const c = await u.login('browser');
    const { put } = await u.slot(c, { filename: 'a.txt', size: 1, 'content-type': 'text/plain' });
    const res = await call(put, 'OPTIONS', undefined, { Origin: 'https://web.example', 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' });
    assert.equal(res.status, 204);
    assert.equal(res.headers['access-control-allow-origin'], '*');
    assert.match(String(res.headers['access-control-allow-methods']), /PUT/);
    assert.match(String(res.headers['access-control-allow-headers']), /Content-Type/i);
  });

  it('refuses a file above max-file-size with not-acceptable and <file-too-large/>', async () => {
    const c = await u.login('big');
    const reply = await u.ask(c, { filename: 'huge.mp4', size: 4097, 'content-type': 'video/mp4' });
    assert.equal(reply.attrs.type, 'error');
    assert.equal(reply.getChild('error')?.attrs.type, 'modify');
    assert.equal(condition(reply), 'not-acceptable');
    assert.equal(reply.getChild('error')?.getChild('file-too-large', NS)?.getChildText('max-file-size'), '4096');
    assert.ok(reply.getChild('request', NS), 'the request is echoed');
  });

  it('refuses bad filenames, sizes and content types with bad-request', async () => {
    const c = await u.login('sloppy');
    const bad: Array<Record<string, string | number>> = [
      { size: 1 },
      { filename: 'a.txt' },
      { filename: 'a.txt', size: -1 },
      { filename: 'a.txt', size: '1e3' },
      { filename: 'a.txt', size: '99999999999999999' },
      { filename: '..', size: 1 },
      { filename: '.', size: 1 },
      { filename: '../../etc/passwd', size: 1 },
      { filename: '/etc/passwd', size: 1 },
      { filename: 'dir\\file.txt', size: 1 },
      { filename: '   ', size: 1 },
      { filename: 'x'.repeat(256), size: 1 },
      { filename: 'a.txt', size: 1, 'content-type': 'not a type' },
    ];
    for (const attrs of bad) {
      const reply = await u.ask(c, attrs);
      assert.equal(condition(reply), 'bad-request', JSON.stringify(attrs));
    }
    // Character references keep control characters that attribute normalisation would turn into spaces.
    for (const attrs of ["filename='tab&#9;here.txt' size='1'", "filename='nl&#10;.txt' size='1'", "filename='a.txt' size='1' content-type='text/plain&#13;&#10;X-Evil: 1'"]) {
      const reply = await u.raw(c, `<request xmlns='${NS}' ${attrs}/>`);
      assert.equal(condition(reply), 'bad-request', attrs);
    }
  });

  it('grants slots only to accounts of this host that its access rule allows', async () => {
    const c = await u.login('blocked');
    const reply = await u.ask(c, { filename: 'a.txt', size: 1 });
    assert.equal(condition(reply), 'not-allowed');
    assert.equal(reply.getChild('error')?.attrs.type, 'cancel');
  });

  it('refuses a slot over the quota with resource-constraint (wait) and a retry time, counting unused slots', async () => {
    const c = await u.login('hoarder');
    for (let i = 0; i < 2; i++) {
      const { put } = await u.slot(c, { filename: `f${i}.bin`, size: 4000 });
      assert.equal((await call(put, 'PUT', Buffer.alloc(4000, i))).status, 201);
    }
    const over = await u.ask(c, { filename: 'f2.bin', size: 4000 });
    assert.equal(condition(over), 'resource-constraint');
    assert.equal(over.getChild('error')?.attrs.type, 'wait');
    const stamp = over.getChild('error')?.getChild('retry', NS)?.attrs.stamp;
    assert.match(stamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Date.parse(stamp as string) > Date.now() + 29 * 86_400_000, 'when the oldest file expires (30 days)');

    // 8000 of 10000 bytes used: a 2000-byte slot still fits, and holds its share until it is used or lapses.
    await u.slot(c, { filename: 'small.bin', size: 2000 });
    const full = await u.ask(c, { filename: 'one.bin', size: 1 });
    assert.equal(condition(full), 'resource-constraint');
  });

  it('limits how many slots an account gets per minute', async () => {
    const c = await u.login('eager');
    for (let i = 0; i < 5; i++) await u.slot(c, { filename: `${i}.txt`, size: 1 });
    const sixth = await u.ask(c, { filename: '5.txt', size: 1 });
    assert.equal(condition(sixth), 'resource-constraint');
    assert.ok(sixth.getChild('error')?.getChild('retry', NS)?.attrs.stamp);
  });

  it('refuses a PUT with a bad token (403), the wrong size or type, a second PUT (409), and hides a bad GET token', async () => {
    const c = await u.login('bob');
    const body = Buffer.from('0123456789');
    const { put, get } = await u.slot(c, { filename: 'ten.txt', size: 10, 'content-type': 'text/plain' });
    const parts = put.split('/');
    const token = parts[6] as string;
    const forged = [...parts.slice(0, 6), `${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}`, ...parts.slice(7)].join('/');
    assert.equal((await call(forged, 'PUT', body, { 'Content-Type': 'text/plain' })).status, 403);
    const otherName = [...parts.slice(0, 7), 'other.txt'].join('/');
    assert.equal((await call(otherName, 'PUT', body, { 'Content-Type': 'text/plain' })).status, 404);

    assert.equal((await call(put, 'PUT', body.subarray(0, 5), { 'Content-Type': 'text/plain' })).status, 400);
    assert.equal((await call(put, 'PUT', Buffer.concat([body, body]), { 'Content-Type': 'text/plain' })).status, 413);
    assert.equal((await call(put, 'PUT', body, { 'Content-Type': 'image/png' })).status, 400);
    assert.equal((await call(put, 'PUT', body)).status, 400, 'the slot named a content type');
    assert.equal((await call(get, 'GET')).status, 404, 'nothing stored by the refused PUTs');

    assert.equal((await call(put, 'PUT', body, { 'Content-Type': 'text/plain; charset=utf-8' })).status, 201);
    assert.equal((await call(put, 'PUT', Buffer.from('9876543210'), { 'Content-Type': 'text/plain' })).status, 409);
    assert.deepEqual((await call(get, 'GET')).body, body, 'the first upload stays');
    assert.equal((await call(forged, 'GET')).status, 404);
  });

  it('keeps every request inside the upload directory: dot segments, encoded dots and slashes, absolute paths', async () => {
    const c = await u.login('climber');
    const secret = 'the file name is not a path';
    const { put, get } = await u.slot(c, { filename: 'a%2F..%2Fb.txt', size: secret.length });
    assert.ok(put.endsWith('/a%252F..%252Fb.txt'), put);
    assert.equal((await call(put, 'PUT', secret)).status, 201);
    assert.equal((await call(get, 'GET')).body.toString(), secret, 'a name with % is taken literally');

    const prefix = new URL(put).pathname.split('/').slice(0, 5).join('/'); // /upload/localhost/<id>/<token>
    const attempts = [
      '/upload/localhost/../../upload.key',
      '/upload/localhost/%2e%2e/%2e%2e/upload.key',
      '/upload/localhost/%2E%2E%2F%2E%2E%2Fupload.key',
      // <data_dir>/upload/localhost/<id>/ is three levels below data_dir, where the key and the database are.
      ...[1, 2, 3, 4].map((n) => `${prefix}/${'..%2F'.repeat(n)}upload.key`),
      ...[1, 2, 3, 4].map((n) => `${prefix}/${'%2e%2e%2f'.repeat(n)}upload.key`),
      `${prefix}/..%2F..%2F..%2Fparley.db`,
      `${prefix}/${encodeURIComponent(join(t.dataDir, 'upload.key'))}`,
      `${prefix}/..`,
      `${prefix}/%2e%2e`,
      `${prefix}/a%2F..%2Fb.txt/../../../../upload.key`,
      '/upload/localhost//etc/passwd',
      `/upload/localhost/${encodeURIComponent(join(t.dataDir, 'upload.key'))}`,
      `/upload/localhost/x/y/${encodeURIComponent(join(t.dataDir, 'upload.key'))}`,
      '/upload/localhost/..%5C..%5Cupload.key',
      '/upload/localhost/%00/%00/%00',
    ];
    for (const path of attempts) {
      for (const method of ['GET', 'PUT']) {
        const res = await call({ t, path }, method, method === 'PUT' ? 'evil' : undefined);
        assert.ok([400, 403, 404, 405].includes(res.status), `${method} ${path}: ${res.status}`);
        assert.ok(!res.body.toString().includes(secret), `${method} ${path} served the file`);
        assert.doesNotMatch(res.body.toString(), /^[0-9a-f]{64}$/m, `${method} ${path} served the key`);
      }
    }
    // Nothing was written anywhere but the slots' own directories.
    for (const f of filesBelow(root())) {
      const [hostDir, id, name, ...more] = f.split(sep);
      assert.ok(hostDir === 'localhost' && /^[A-Za-z0-9_-]{24}$/.test(id ?? '') && name && more.length === 0, f);
    }
    assert.ok(!filesBelow(t.dataDir).some((f) => f.endsWith('evil') || f === 'etc'));
  });

  it('removes an account\'s files with the account', async () => {
    const c = await u.login('leaver');
    const { put, get } = await u.slot(c, { filename: 'bye.txt', size: 3 });
    assert.equal((await call(put, 'PUT', 'bye')).status, 201);
    const id = new URL(get).pathname.split('/')[3] as string;
    assert.ok(existsSync(join(root(), 'localhost', id)));
    await t.server.hosts.get('localhost')?.removeAccount(Jid.parse('leaver@localhost'));
    assert.equal(existsSync(join(root(), 'localhost', id)), false);
    assert.equal((await call(get, 'GET')).status, 404);
    assert.equal(await t.server.storage.upload.get('localhost', id), undefined);
  });
});

describe('HTTP file upload expiry', () => {
  let t: TestServer;
  let u: Uploader;

  before(async () => {
    t = await startServer({ modules: { upload: { slot_ttl: 3, expire_after: 2, cleanup_interval: 1 } } });
    u = new Uploader(t);
  });
  after(async () => {
    u.close();
    await t.stop();
  });

  it('refuses the PUT of an expired slot with 403', async () => {
    const c = await u.login('late');
    const { put } = await u.slot(c, { filename: 'late.txt', size: 4 });
    await sleep(3500);
    assert.equal((await call(put, 'PUT', 'late')).status, 403);
  });

  it('deletes files after expire_after, and slots never used, in the background', async () => {
    const c = await u.login('brief');
    const { put, get } = await u.slot(c, { filename: 'brief.txt', size: 5 });
    assert.equal((await call(put, 'PUT', 'brief')).status, 201);
    const unused = await u.slot(c, { filename: 'never.txt', size: 5 });
    const id = new URL(get).pathname.split('/')[3] as string;
    const unusedId = new URL(unused.put).pathname.split('/')[3] as string;
    assert.ok(existsSync(join(t.dataDir, 'upload', 'localhost', id, 'brief.txt')));
    await until('the file is deleted', () => !existsSync(join(t.dataDir, 'upload', 'localhost', id)));
    assert.equal((await call(get, 'GET')).status, 404);
    await until('the unused slot is gone', async () => (await t.server.storage.upload.get('localhost', unusedId)) === undefined);
    assert.equal(await t.server.storage.upload.get('localhost', id), undefined);
  });
});

describe('HTTP file upload without HTTPS', () => {
  it('hands out URLs on the plain HTTP listener when HTTPS is off', async () => {
    const t = await startServer({ listen: { https: { enabled: false } } });
    const u = new Uploader(t);
    try {
      const c = await u.login('plain');
      const { put, get } = await u.slot(c, { filename: 'p.txt', size: 2 });
      assert.ok(put.startsWith(`http://localhost:${t.httpPort}/upload/localhost/`), put);
      assert.equal((await call(put, 'PUT', 'ok')).status, 201);
      assert.equal((await call(get, 'GET')).body.toString(), 'ok');
    } finally {
      u.close();
      await t.stop();
    }
  });
});
