// The server-wide web services mounted on the HTTP route table (per-host features such as upload register
// their own routes through their module context instead).
import type { ParleyServer } from '../server.ts';
import type { HttpRoutes } from './routes.ts';
import { mountRestApi } from './api/index.ts';
import { mountWebSocket } from './websocket.ts';
import { mountHostMeta } from './host-meta.ts';
import { mountHealth } from './health.ts';
import { mountMetrics } from './metrics.ts';
import { mountWebAdmin } from './admin/service.ts';
import { mountChat } from './chat/service.ts';
import { mountBosh } from './bosh.ts';

export type HttpService = (server: ParleyServer, routes: HttpRoutes) => void | Promise<void> | (() => void | Promise<void>) | Promise<() => void | Promise<void>>;

/** Each service mounts its routes; what a mount returns is called when the server stops. */
export const httpServices: HttpService[] = [
  mountWebSocket,
  mountHostMeta,
  mountHealth,
  mountMetrics,
  mountWebAdmin,
  mountChat,
  mountRestApi,
  mountBosh,
];
