// XEP-0156 connection-method discovery: /.well-known/host-meta (XRD) and host-meta.json (JRD) list the
// WebSocket endpoints (and BOSH when configured) as the client can reach them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SaxesParser } from 'saxes';
import { client } from '@xmpp/client';
import { startServer, type TestServer } from '../helpers/server.ts';
import { hostMetaLinks, REL_BOSH, REL_WEBSOCKET, type HostMetaLink } from '../../src/http/host-meta.ts';
import type { ParleyServer } from '../../src/server.ts';
import type { HttpRequest } from '../../src/http/routes.ts';
import { parseConfig } from '../../src/config/load.ts';

type Reply = { status: number; headers: IncomingHttpHeaders; body: string };

function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // The certificate names localhost: verified against that whatever Host header the test sends.
    const req = request(u, { headers, servername: 'localhost' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The Link elements of an XRD document, read with an independent XML parser. */
function xrdLinks(body: string): HostMetaLink[] {
  const links: HostMetaLink[] = [];
  let root = '';
  const parser = new SaxesParser({ xmlns: true });
  parser.on('opentag', (tag) => {
    if (root === '') root = `{${tag.uri}}${tag.local}`;
    if (tag.local === 'Link' && tag.uri === 'http://docs.oasis-open.org/ns/xri/xrd-1.0') {
      links.push({ rel: String(tag.attributes.rel?.value), href: String(tag.attributes.href?.value) });
    }
  });
  parser.write(body).close();
  assert.equal(root, '{http://docs.oasis-open.org/ns/xri/xrd-1.0}XRD');
  return links;
}

const websocketOnly = (links: HostMetaLink[]): HostMetaLink[] => links.filter((l) => l.rel === REL_WEBSOCKET);

describe('XEP-0156 host-meta', () => {
  let t: TestServer;
  let boshEnabled: boolean;
  before(async () => {
    t = await startServer();
    const bosh = (t.server.config.http as Record<string, unknown>).bosh as { enabled?: boolean } | undefined;
    boshEnabled = bosh !== undefined && bosh.enabled !== false;
  });
  after(async () => {
    await t.stop();
  });

  it('serves XRD over plain HTTP: the HTTPS listener first, then ws:// at the Host the request named', async () => {
    const r = await get(`http://127.0.0.1:${t.httpPort}/.well-known/host-meta`, { host: `chat.example.com:${t.httpPort}` });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/xrd+xml; charset=utf-8');
    assert.equal(r.headers['access-control-allow-origin'], '*');
    const links = xrdLinks(r.body);
    assert.deepEqual(websocketOnly(links), [
      { rel: REL_WEBSOCKET, href: `${t.server.httpUrls.https?.replace(/^https/, 'wss')}/ws` },
      { rel: REL_WEBSOCKET, href: `ws://chat.example.com:${t.httpPort}/ws` },
    ]);
    // BOSH (its own service) is listed on the same bases when it is configured.
    assert.deepEqual(links.filter((l) => l.rel === REL_BOSH), boshEnabled ? [
      { rel: REL_BOSH, href: `${t.server.httpUrls.https}/bosh` },
      { rel: REL_BOSH, href: `http://chat.example.com:${t.httpPort}/bosh` },
    ] : []);
  });

  it('serves JRD over HTTPS with only the wss:// URL at the Host the request named', async () => {
    const r = await get(`https://127.0.0.1:${t.httpsPort}/.well-known/host-meta.json`, { host: 'chat.example.com' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.deepEqual(websocketOnly((JSON.parse(r.body) as { links: HostMetaLink[] }).links), [{ rel: REL_WEBSOCKET, href: 'wss://chat.example.com/ws' }]);
  });

  it('ignores a Host header that cannot be part of a URL', async () => {
    const r = await get(`https://127.0.0.1:${t.httpsPort}/.well-known/host-meta.json`, { host: 'x"/><Link rel="evil' });
    assert.equal(r.status, 200);
    assert.deepEqual(websocketOnly((JSON.parse(r.body) as { links: HostMetaLink[] }).links), [{ rel: REL_WEBSOCKET, href: `${t.server.httpUrls.https?.replace(/^https/, 'wss')}/ws` }]);
  });

  it('lists a URL xmpp.js can log in with', async () => {
    await t.register('frank', 'frank-secret');
    const r = await get(`https://127.0.0.1:${t.httpsPort}/.well-known/host-meta.json`);
    const href = (JSON.parse(r.body) as { links: HostMetaLink[] }).links.find((l) => l.rel === REL_WEBSOCKET)?.href;
    assert.equal(href, `wss://127.0.0.1:${t.httpsPort}/ws`);
    const xmpp = client({ service: href, domain: 'localhost', username: 'frank', password: 'frank-secret', resource: 'web' });
    xmpp.reconnect.stop();
    xmpp.on('error', () => undefined);
    try {
      assert.equal(String(await xmpp.start()), 'frank@localhost/web');
    } finally {
      await xmpp.stop().catch(() => undefined);
    }
  });
});

describe('XEP-0156 host-meta behind a proxy (http.public_url)', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ http: { public_url: 'https://chat.example.com/xmpp/' } });
  });
  after(async () => {
    await t.stop();
  });

  it('lists only the public URL, whichever listener and Host the request came with', async () => {
    const want = [{ rel: REL_WEBSOCKET, href: 'wss://chat.example.com/xmpp/ws' }];
    const plain = await get(`http://127.0.0.1:${t.httpPort}/.well-known/host-meta.json`, { host: 'internal:8080' });
    assert.deepEqual(websocketOnly((JSON.parse(plain.body) as { links: HostMetaLink[] }).links), want);
    const secure = await get(`https://127.0.0.1:${t.httpsPort}/.well-known/host-meta.json`);
    assert.deepEqual(websocketOnly((JSON.parse(secure.body) as { links: HostMetaLink[] }).links), want);
  });
});

describe('hostMetaLinks by configuration', () => {
  /**
   * A server as far as host-meta reads it, from a configuration. http.bosh belongs to the BOSH service: it is set
   * as given (absent unless given), so these cases hold whether or not that service is part of the build.
   */
  function links(http: Record<string, unknown>, secure: boolean, host: string | null = 'chat.example.com'): HostMetaLink[] {
    const { bosh, ...known } = http;
    const config = parseConfig({ http: known });
    const section = config.http as Record<string, unknown>;
    if (bosh === undefined) delete section.bosh;
    else section.bosh = bosh;
    const server = { config, httpUrls: { http: 'http://localhost:5280', https: 'https://localhost:5443' } } as unknown as ParleyServer;
    const r = { secure, req: { headers: host === null ? {} : { host } } } as unknown as HttpRequest;
    return hostMetaLinks(server, r);
  }

  it('lists nothing for WebSocket when it is disabled', () => {
    assert.deepEqual(links({ websocket: { enabled: false } }, false), []);
  });

  it('lists no ws:// URL when plain_http is off', () => {
    assert.deepEqual(links({ websocket: { plain_http: false } }, false), [{ rel: REL_WEBSOCKET, href: 'wss://localhost:5443/ws' }]);
  });

  it('falls back to the listener URLs without a Host header', () => {
    assert.deepEqual(links({}, false, null), [
      { rel: REL_WEBSOCKET, href: 'wss://localhost:5443/ws' },
      { rel: REL_WEBSOCKET, href: 'ws://localhost:5280/ws' },
    ]);
  });

  it('lists BOSH at /bosh when http.bosh is configured and enabled', () => {
    assert.deepEqual(links({ bosh: { enabled: true } }, true), [
      { rel: REL_WEBSOCKET, href: 'wss://chat.example.com/ws' },
      { rel: REL_BOSH, href: 'https://chat.example.com/bosh' },
    ]);
    assert.deepEqual(links({ bosh: {} }, false).filter((l) => l.rel === REL_BOSH), [
      { rel: REL_BOSH, href: 'https://localhost:5443/bosh' },
      { rel: REL_BOSH, href: 'http://chat.example.com/bosh' },
    ]);
    assert.deepEqual(links({ bosh: { enabled: false } }, true).filter((l) => l.rel === REL_BOSH), []);
  });
});
