// The modules that ship with Parley. The core never imports these; the server is handed this list.
import type { ModuleDefinition } from '../core/module.ts';
import disco from './disco.ts';
import caps from './caps.ts';
import pep from './pep/index.ts';
import ping from './ping.ts';
import offline from './offline.ts';
import offlineWebhook from './offline-webhook.ts';
import push from './push.ts';
import pushService from './push-service/index.ts';
import register from './register/index.ts';
import roster from './roster/index.ts';
import vcard from './vcard.ts';
import vcardXupdate from './vcard-xupdate.ts';
import privateStorage from './private.ts';
import version from './version.ts';
import time from './time.ts';
import last from './last.ts';
import carbons from './carbons.ts';
import csi from './csi.ts';
import keepalive from './keepalive.ts';
import blocking from './blocking.ts';
import smacks from './smacks/index.ts';
import mam from './mam/index.ts';
import limits from './limits.ts';
import upload from './upload/index.ts';
import muc from './muc/index.ts';

export const builtinModules: ModuleDefinition[] = [
  disco, caps, pep, ping, roster, offline, offlineWebhook, register, push, pushService,
  vcard, vcardXupdate, privateStorage, version, time, last, smacks, carbons, csi, keepalive, blocking, mam, limits, upload, muc,
] as ModuleDefinition[];
