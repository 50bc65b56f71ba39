// A virtual host: its hook bus, IQ table, disco features and the modules loaded on it.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { Jid } from '../xmpp/jid.ts';
import { HookBus } from './hooks.ts';
import { IqTable } from './iq.ts';
import type { Router } from './router.ts';
import type { SessionManager } from './session-manager.ts';
import type { Storage } from '../storage/types.ts';
import type { HostAuth } from '../auth/host-auth.ts';
import type { AccessControl } from '../auth/access.ts';

/** What every host shares with the rest of the server. */
export type ServerServices = {
  readonly config: Config;
  readonly storage: Storage;
  readonly sessions: SessionManager;
  readonly router: Router;
  readonly log: Logger;
  readonly hosts: Map<string, Host>;
  readonly startedAt: number;
  readonly access: AccessControl;
  readonly accounts: import('../accounts.ts').Accounts;
  /** The HTTP route table shared by every web service. */
  readonly http: import('../http/routes.ts').HttpRoutes;
  /** Base URLs of the HTTP listeners as clients reach them (no trailing slash); known once started. */
  readonly httpUrls: { http?: string; https?: string };
  /** The metrics registry (served at /metrics); modules add their own instruments to it. */
  readonly metrics: import('./metrics.ts').Metrics;
};

export type Identity = { category: string; type: string; name?: string };
/** An entry of the host's disco#items (XEP-0030 §4): a service on its own JID, optionally a node of it. */
export type DiscoItem = { jid: string; node?: string; name?: string };

export class Host {
  readonly name: string;
  readonly jid: Jid;
  readonly bus: HookBus;
  readonly iq = new IqTable();
  /** disco#info features of the host (and of accounts, for features they have on the server). */
  readonly features = new Set<string>();
  readonly accountFeatures = new Set<string>();
  readonly identities: Identity[] = [{ category: 'server', type: 'im', name: 'Parley' }];
  /** Services listed in the host's disco#items, registered by the modules that run them (ctx.disco.item). */
  readonly discoItems = new Set<DiscoItem>();
  readonly server: ServerServices;
  readonly log: Logger;
  /** The host's authentication backends: who exists and how passwords are checked. */
  readonly auth: HostAuth;

  constructor(name: string, server: ServerServices, auth: HostAuth) {
    this.name = name;
    this.auth = auth;
    this.jid = Jid.parse(name);
    this.server = server;
    this.log = server.log.child({ host: name });
    this.bus = new HookBus((hook, owner, err) => {
      if ((err as Error)?.name === 'StanzaError') return;
      this.log.error({ err, hook, module: owner }, 'hook handler failed');
    });
  }

  /**
   * Removes an account through the host's auth backends. Modules hear of it before (roster: cancel the
   * subscriptions while they are still known) and after; ending the account's sessions is the caller's choice.
   */
  async removeAccount(user: Jid): Promise<void> {
    const bare = user.bare;
    await this.bus.run('account/removing', { host: this, user: bare });
    await this.server.accounts.unregister(bare.local, this.name);
    try {
      await this.bus.run('account/removed', { host: this, user: bare });
    } catch {
      // The account is gone; a failing listener (already logged by the bus) does not bring it back.
    }
  }

  /** Admin rights follow the 'admin' access rule (the admins list by default). */
  isAdmin(jid: Jid): boolean {
    return this.server.access.allowed('admin', { jid, host: this.name });
  }
}
