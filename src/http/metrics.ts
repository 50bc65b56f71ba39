// GET /metrics: the metrics registry in the Prometheus text format 0.0.4
// <https://prometheus.io/docs/instrumenting/exposition_formats/>, for the networks in http.metrics.allow and,
// when http.metrics.token is set, for requests that carry it as a bearer token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList } from 'node:net';
import { addNetwork, inNetworks } from '../auth/access.ts';
import type { ParleyServer } from '../server.ts';
import { addServerCollectors } from './metrics-collectors.ts';
import { HttpError, sendText } from './respond.ts';
import type { HttpRequest, HttpRoutes } from './routes.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function mountMetrics(server: ParleyServer, routes: HttpRoutes): (() => void) | undefined {
  const options = server.config.http.metrics;
  if (!options.enabled) return undefined;
  const allow = new BlockList();
  for (const net of options.allow) addNetwork(allow, net);
  // Compared as digests, so the comparison takes the same time whatever the length of the guess.
  const token = options.token === undefined ? undefined : digest(options.token);
  const log = server.log.child({ component: 'metrics' });

  const authorize = (r: HttpRequest): void => {
    if (!inNetworks(allow, r.remoteAddress)) throw new HttpError(403, 'Forbidden');
    if (token === undefined) return;
    const m = /^Bearer +(\S+) *$/i.exec(r.req.headers.authorization ?? '');
    if (!m || !timingSafeEqual(digest(m[1] as string), token)) {
      throw new HttpError(401, 'Unauthorized', { 'WWW-Authenticate': 'Bearer realm="metrics"' });
    }
  };

  const removeCollectors = addServerCollectors(server, server.metrics);
  const removeRoute = routes.route('GET', '/metrics', async (r) => {
    authorize(r);
    const body = await server.metrics.render((name, err) => log.warn({ err, metric: name }, 'metric left out of the scrape'));
    r.res.setHeader('Cache-Control', 'no-store');
    sendText(r.res, 200, body, METRICS_CONTENT_TYPE);
  });
  return () => {
    removeRoute();
    removeCollectors();
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
