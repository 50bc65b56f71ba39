// GET /health: 200 {"status":"ok"} while the storage answers a trivial query and every listener accepts
// connections, 503 naming what fails otherwise. Open to anyone (load balancers, orchestrators): it says nothing more.
import type { ParleyServer } from '../server.ts';
import { sendJson } from './respond.ts';
import type { HttpRoutes } from './routes.ts';

/** How long the storage has to answer before it counts as down. */
const STORAGE_TIMEOUT_MS = 5000;

export function mountHealth(server: ParleyServer, routes: HttpRoutes): () => void {
  return routes.route('GET', '/health', async ({ res }) => {
    const failing: string[] = [];
    if (!(await answers(server))) failing.push('storage');
    if (!server.listenersUp()) failing.push('listeners');
    res.setHeader('Cache-Control', 'no-store');
    if (failing.length === 0) sendJson(res, 200, { status: 'ok' });
    else sendJson(res, 503, { status: 'unavailable', failing });
  });
}

async function answers(server: ParleyServer): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), STORAGE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([server.storage.ping().then(() => true, () => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
