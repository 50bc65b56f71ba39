// The modules that ship with Parley. The core never imports these; the server is handed this list.
import type { ModuleDefinition } from '../core/module.ts';
import disco from './disco.ts';
import ping from './ping.ts';
import offline from './offline.ts';
import offlineWebhook from './offline-webhook.ts';
import push from './push.ts';
import pushService from './push-service/index.ts';
import register from './register/index.ts';
import roster from './roster/index.ts';

export const builtinModules: ModuleDefinition[] = [disco, ping, roster, offline, offlineWebhook, register, push, pushService] as ModuleDefinition[];
