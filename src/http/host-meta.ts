// XEP-0156: Discovering Alternative XMPP Connection Methods <https://xmpp.org/extensions/xep-0156.html> 1.4.0
// The Web Host Metadata (RFC 6415) documents listing the WebSocket (RFC 7395) and BOSH (XEP-0206) endpoints:
// /.well-known/host-meta (XRD) and /.well-known/host-meta.json (JRD).
import type { ParleyServer } from '../server.ts';
import { serialize, xml } from '../xml/element.ts';
import type { HttpRequest, HttpRoutes } from './routes.ts';
import { sendText } from './respond.ts';
import { WEBSOCKET_PATH } from './websocket.ts';

const XRD_NS = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';
export const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket';
export const REL_BOSH = 'urn:xmpp:alt-connections:xbosh';
const BOSH_PATH = '/bosh';

export type HostMetaLink = { rel: string; href: string };

/** A Host header that can go into a URL as it is: a DNS name or bracketed IPv6 address, and a port. */
const HOST_HEADER = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$/;

export function mountHostMeta(server: ParleyServer, routes: HttpRoutes): () => void {
  const xrd = routes.route('GET', '/.well-known/host-meta', (r) => {
    const doc = xml('XRD', { xmlns: XRD_NS }, hostMetaLinks(server, r).map((l) => xml('Link', { rel: l.rel, href: l.href })));
    allowAnyOrigin(r);
    sendText(r.res, 200, `<?xml version='1.0' encoding='utf-8'?>\n${serialize(doc)}\n`, 'application/xrd+xml; charset=utf-8');
  });
  const jrd = routes.route('GET', '/.well-known/host-meta.json', (r) => {
    allowAnyOrigin(r);
    sendText(r.res, 200, JSON.stringify({ links: hostMetaLinks(server, r) }), 'application/json; charset=utf-8');
  });
  return () => {
    xrd();
    jrd();
  };
}

/** Web clients on any origin read these documents to find the endpoints (XEP-0156 §3). */
function allowAnyOrigin(r: HttpRequest): void {
  r.res.setHeader('Access-Control-Allow-Origin', '*');
}

/**
 * The endpoints as this client can reach them. With http.public_url set (behind a proxy) that URL is the only
 * base. Otherwise the base is the Host the request was sent to on the listener it came in on, and a request over
 * plain HTTP also learns the HTTPS listener; secure endpoints come first.
 */
export function hostMetaLinks(server: ParleyServer, r: HttpRequest): HostMetaLink[] {
  const http = server.config.http;
  const host = r.req.headers.host;
  const named = host !== undefined && HOST_HEADER.test(host) ? host : undefined;
  const bases: Array<{ url: string; secure: boolean }> = [];
  if (http.public_url !== undefined) {
    const url = http.public_url.replace(/\/+$/, '');
    bases.push({ url, secure: url.startsWith('https:') });
  } else if (r.secure) {
    const url = named !== undefined ? `https://${named}` : server.httpUrls.https;
    if (url) bases.push({ url, secure: true });
  } else {
    if (server.httpUrls.https) bases.push({ url: server.httpUrls.https, secure: true });
    const url = named !== undefined ? `http://${named}` : server.httpUrls.http;
    if (url) bases.push({ url, secure: false });
  }
  const ws = http.websocket;
  const bosh = boshSettings(http);
  const links: HostMetaLink[] = [];
  for (const base of bases) {
    if (ws.enabled && (base.secure || ws.plain_http)) {
      links.push({ rel: REL_WEBSOCKET, href: `${base.url.replace(/^http/, 'ws')}${WEBSOCKET_PATH}` });
    }
    if (bosh.enabled && (base.secure || bosh.plainHttp)) links.push({ rel: REL_BOSH, href: `${base.url}${BOSH_PATH}` });
  }
  return links;
}

/**
 * BOSH is configured under http.bosh by its own service, which may not be present in this build: the key is read
 * without assuming its shape. Listed when the section exists and is not disabled.
 */
function boshSettings(http: object): { enabled: boolean; plainHttp: boolean } {
  const section: unknown = (http as Record<string, unknown>).bosh;
  if (section === true) return { enabled: true, plainHttp: true };
  if (section === null || typeof section !== 'object') return { enabled: false, plainHttp: false };
  const s = section as Record<string, unknown>;
  return { enabled: s.enabled !== false, plainHttp: s.plain_http !== false };
}
