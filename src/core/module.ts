// The module contract: a feature declares its options and registers everything through its context, so it can
// be listed, configured per host and unloaded cleanly.
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Storage } from '../storage/types.ts';
import type { Element } from '../xml/element.ts';
import type { FoldHookMap, HookMap } from './hook-map.ts';
import type { FoldHandler, RunHandler } from './hooks.ts';
import type { DiscoItem, Host, ServerServices } from './host.ts';
import type { IqHandler, IqTarget } from './iq.ts';
import type { Router } from './router.ts';
import type { HttpHandler } from '../http/routes.ts';
import type { SessionManager } from './session-manager.ts';

export type XepSupport = { xep: number; version: string; status: 'complete' | 'partial' };

export type ModuleDefinition<S extends z.ZodType = z.ZodType> = {
  id: string;
  xeps?: XepSupport[];
  /** Modules that must be loaded on the same host before this one. */
  requires?: string[];
  /** On unless the configuration disables it (false). */
  enabledByDefault?: boolean;
  options?: S;
  setup(ctx: ModuleContext<z.output<S>>): void | Promise<void>;
};

export function defineModule<S extends z.ZodType>(def: ModuleDefinition<S>): ModuleDefinition<S> {
  return def;
}

export interface ModuleContext<O> {
  readonly id: string;
  readonly host: Host;
  readonly options: O;
  readonly log: Logger;
  readonly storage: Storage;
  readonly sessions: SessionManager;
  readonly router: Router;
  readonly server: ServerServices;
  hook<K extends keyof HookMap>(name: K, fn: RunHandler<HookMap[K]>, opts?: { priority?: number }): void;
  fold<K extends keyof FoldHookMap>(name: K, fn: FoldHandler<FoldHookMap[K][0], FoldHookMap[K][1]>, opts?: { priority?: number }): void;
  iq: {
    get(ns: string, name: string, handler: IqHandler, opts?: { to?: IqTarget[] }): void;
    set(ns: string, name: string, handler: IqHandler, opts?: { to?: IqTarget[] }): void;
    /** Sends an IQ get/set the server originates (from the host by default); resolves with the result stanza,
     * rejects with the StanzaError of an error reply or after the timeout (see iq-requests.ts). */
    request(stanza: Element, timeoutMs?: number): Promise<Element>;
  };
  disco: {
    /** A feature of the host (and, with `account`, of every account on it). */
    feature(ns: string, opts?: { account?: boolean }): void;
    /** An item of the host's disco#items (a component or service such as MUC or upload). */
    item(item: DiscoItem): void;
  };
  http: {
    /** An HTTP route (see HttpRoutes.route), removed when the module stops. Paths are server-wide: a module on
     * several hosts must put the host in its path. */
    route(method: string, path: string, handler: HttpHandler, opts?: { prefix?: boolean }): void;
  };
  /** A repeating timer, stopped with the module. */
  timer(ms: number, fn: () => void): void;
  onStop(fn: () => void | Promise<void>): void;
}
