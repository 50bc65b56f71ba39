// The browser chat client's files over real HTTP: the index page's settings, static files with types and
// validators, and paths that must not leave the package directory.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, type TestServer } from '../helpers/server.ts';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentType, resolveInside } from '../../src/http/chat/static.ts';

/** A raw GET, so the path reaches the server exactly as written (fetch would normalise dot segments). */
function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('browser chat at /chat', () => {
  let t: TestServer;

  before(async () => {
    t = await startServer();
  });

  after(async () => {
    await t.stop();
  });

  it('redirects /chat to /chat/', async () => {
    const r = await rawGet(t.httpPort, '/chat');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/chat/');
  });

  it('serves an index page that starts Converse.js on this server\'s WebSocket, without inline script', async () => {
    const r = await rawGet(t.httpPort, '/chat/');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    const json = r.body.match(/<script type="application\/json" id="parley-chat-config">([^<]*)<\/script>/);
    assert.ok(json, r.body);
    const config = JSON.parse(json[1] as string) as Record<string, unknown>;
    assert.equal(config.websocket_url, `ws://127.0.0.1:${t.httpPort}/ws`);
    assert.equal(config.default_domain, 'localhost');
    assert.equal(config.auto_login, false);
    assert.equal(config.allow_user_trust_override, 'off');
    assert.equal(config.assets_path, '/chat/');
    const csp = String(r.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /script-src[^;]*'unsafe-inline'/);
    assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${t.httpPort}`));
    // Every executable script is a file; the settings are a JSON data block.
    for (const m of r.body.matchAll(/<script([^>]*)>/g)) assert.match(m[1] as string, /src="|type="application\/json"/);
  });

  it('takes the default domain from the Host header when it is a served host, and wss over HTTPS', async () => {
    const r = await rawGet(t.httpPort, '/chat/', { host: `localhost:${t.httpPort}` });
    const config = JSON.parse((r.body.match(/id="parley-chat-config">([^<]*)</) as RegExpMatchArray)[1] as string) as Record<string, unknown>;
    assert.equal(config.websocket_url, `ws://localhost:${t.httpPort}/ws`);
    assert.equal(config.default_domain, 'localhost');
    const bad = await rawGet(t.httpPort, '/chat/', { host: 'evil"><script>' });
    assert.equal(bad.status, 400);
    const secure = await fetch(`https://localhost:${t.httpsPort}/chat/`);
    const body = await secure.text();
    assert.match(body, new RegExp(`"websocket_url":"wss://localhost:${t.httpsPort}/ws"`));
  });

  it('serves the client files with their types, caching headers and validators', async () => {
    const js = await rawGet(t.httpPort, '/chat/converse.min.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.match(String(js.headers['cache-control']), /max-age=\d+/);
    assert.ok(js.headers.etag);
    assert.ok(js.body.length > 100_000);
    const again = await rawGet(t.httpPort, '/chat/converse.min.js', { 'if-none-match': String(js.headers.etag) });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    const css = await rawGet(t.httpPort, '/chat/converse.min.css');
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const init = await rawGet(t.httpPort, '/chat/parley-init.js');
    assert.equal(init.status, 200);
    assert.match(String(init.headers['content-type']), /^text\/javascript/);
    assert.match(init.body, /converse\.initialize/);
    assert.equal(contentType('a/b.wasm'), 'application/wasm');
    assert.equal(contentType('x.mp3'), 'audio/mpeg');
    assert.equal(contentType('noext'), 'application/octet-stream');
  });

  it('refuses paths that would leave the package directory, hidden files and unknown files', async () => {
    for (const path of [
      '/chat/../package.json', '/chat/%2e%2e/package.json', '/chat/..%2fpackage.json', '/chat/%2e%2e%2fpackage.json',
      '/chat/images/..%5c..%5cpackage.json', '/chat/.hidden', '/chat/nothing.js', '/chat/images/', '/chat/%00',
      '/chat/%E0%A4%A', '/chat/images//favicon.ico', '/chat/..', '/chat/%2e%2e', '/chat/images',
    ]) {
      const r = await rawGet(t.httpPort, path);
      assert.ok(r.status === 404 || r.status === 400, `${path}: ${r.status}`);
      assert.doesNotMatch(r.body, /"name": "converse.js"/);
    }
  });

  it('answers only GET and HEAD', async () => {
    const r = await fetch(`http://127.0.0.1:${t.httpPort}/chat/`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 405);
    const head = await fetch(`http://127.0.0.1:${t.httpPort}/chat/converse.min.css`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
  });
});

describe('static path resolution', () => {
  it('finds files inside the root only, symbolic links included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-static-'));
    try {
      const root = join(dir, 'root');
      mkdirSync(join(root, 'sub'), { recursive: true });
      writeFileSync(join(root, 'sub', 'a.js'), 'a');
      writeFileSync(join(dir, 'secret.txt'), 'secret');
      symlinkSync(join(dir, 'secret.txt'), join(root, 'link.txt'));
      assert.equal(await resolveInside(root, 'sub/a.js'), join(root, 'sub', 'a.js'));
      assert.equal(await resolveInside(root, 'sub%2Fa.js'), undefined);
      assert.equal(await resolveInside(root, '../secret.txt'), undefined);
      assert.equal(await resolveInside(root, 'sub/../../secret.txt'), undefined);
      assert.equal(await resolveInside(root, 'link.txt'), undefined);
      assert.equal(await resolveInside(root, 'missing.js'), undefined);
      assert.equal(await resolveInside(root, ''), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('browser chat disabled', () => {
  it('is not served when http.chat.enabled is false', async () => {
    const t = await startServer({ http: { chat: { enabled: false }, admin: { enabled: false } } });
    try {
      assert.equal((await rawGet(t.httpPort, '/chat/')).status, 404);
      assert.equal((await rawGet(t.httpPort, '/admin/login')).status, 404);
    } finally {
      await t.stop();
    }
  });
});
