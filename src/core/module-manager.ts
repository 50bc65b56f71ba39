// Loads module definitions onto hosts: validates options (global, then per-host overrides) before any port
// opens, orders by `requires`, and records every registration so a module unloads cleanly.
import { ConfigError } from './errors.ts';
import type { Host } from './host.ts';
import { iqRequestsOf } from './iq-requests.ts';
import type { ModuleContext, ModuleDefinition } from './module.ts';
import type { ModulesConfig } from '../config/schema.ts';
import { formatIssues } from '../config/load.ts';

type Loaded = { def: ModuleDefinition; options: unknown; stops: Array<() => void | Promise<void>> };

export class ModuleManager {
  private readonly available = new Map<string, ModuleDefinition>();
  private readonly loaded = new Map<Host, Map<string, Loaded>>();

  constructor(definitions: ModuleDefinition[]) {
    for (const d of definitions) this.available.set(d.id, d);
  }

  /** Resolves which modules a host runs and with what options; throws ConfigError listing every problem. */
  plan(host: string, global: ModulesConfig, overrides: ModulesConfig | undefined): Array<{ def: ModuleDefinition; options: unknown }> {
    const problems: string[] = [];
    const merged: ModulesConfig = { ...global, ...(overrides ?? {}) };
    for (const id of Object.keys(merged)) {
      if (!this.available.has(id)) problems.push(`modules.${id}: unknown module (known: ${[...this.available.keys()].join(', ')})`);
    }
    const chosen = new Map<string, { def: ModuleDefinition; options: unknown }>();
    for (const def of this.available.values()) {
      const globalOpts = global[def.id];
      const hostOpts = overrides?.[def.id];
      const setting = hostOpts !== undefined ? hostOpts : globalOpts;
      if (setting === false) continue;
      if (setting === undefined && def.enabledByDefault === false) continue;
      const raw = { ...(globalOpts || {}), ...(hostOpts || {}) };
      let options: unknown = raw;
      if (def.options) {
        const r = def.options.safeParse(raw);
        if (!r.success) {
          const prefix = hostOpts ? ['host_config', host, 'modules', def.id] : ['modules', def.id];
          problems.push(...formatIssues(r.error.issues, prefix));
          continue;
        }
        options = r.data;
      }
      chosen.set(def.id, { def, options });
    }
    for (const { def } of chosen.values()) {
      for (const req of def.requires ?? []) {
        if (!chosen.has(req)) problems.push(`modules.${def.id}: requires module ${req} on host ${host}`);
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return orderByRequires([...chosen.values()]);
  }

  async load(host: Host, plan: Array<{ def: ModuleDefinition; options: unknown }>): Promise<void> {
    const mods = new Map<string, Loaded>();
    this.loaded.set(host, mods);
    for (const { def, options } of plan) {
      const loaded: Loaded = { def, options, stops: [] };
      mods.set(def.id, loaded);
      await def.setup(makeContext(host, def.id, options, loaded.stops));
      host.log.debug({ module: def.id }, 'module loaded');
    }
  }

  loadedOn(host: Host): string[] {
    return [...(this.loaded.get(host)?.keys() ?? [])];
  }

  async unloadAll(): Promise<void> {
    for (const mods of this.loaded.values()) {
      for (const m of [...mods.values()].reverse()) {
        for (const stop of m.stops.reverse()) await stop();
      }
    }
    this.loaded.clear();
  }
}

function orderByRequires<T extends { def: ModuleDefinition }>(items: T[]): T[] {
  const byId = new Map(items.map((i) => [i.def.id, i]));
  const out: T[] = [];
  const seen = new Set<string>();
  const visit = (i: T, path: string[]): void => {
    if (seen.has(i.def.id)) return;
    if (path.includes(i.def.id)) throw new ConfigError([`modules: circular requires ${[...path, i.def.id].join(' -> ')}`]);
    for (const r of i.def.requires ?? []) {
      const dep = byId.get(r);
      if (dep) visit(dep, [...path, i.def.id]);
    }
    seen.add(i.def.id);
    out.push(i);
  };
  for (const i of items) visit(i, []);
  return out;
}

function makeContext(host: Host, id: string, options: unknown, stops: Array<() => void | Promise<void>>): ModuleContext<any> {
  const server = host.server;
  const owner = id;
  return {
    id,
    host,
    options,
    log: host.log.child({ module: id }),
    storage: server.storage,
    sessions: server.sessions,
    router: server.router,
    server,
    hook(name, fn, opts) {
      stops.push(host.bus.on(name, fn, { priority: opts?.priority, owner }));
    },
    fold(name, fn, opts) {
      stops.push(host.bus.onFold(name, fn, { priority: opts?.priority, owner }));
    },
    iq: {
      get(ns, name, handler, opts) {
        stops.push(host.iq.register('get', ns, name, handler, opts?.to ?? ['host'], owner));
      },
      set(ns, name, handler, opts) {
        stops.push(host.iq.register('set', ns, name, handler, opts?.to ?? ['host'], owner));
      },
      request(stanza, timeoutMs) {
        return iqRequestsOf(host).request(stanza, timeoutMs);
      },
    },
    http: {
      route(method, path, handler, opts) {
        stops.push(server.http.route(method, path, handler, opts));
      },
    },
    disco: {
      feature(ns, opts) {
        host.features.add(ns);
        if (opts?.account) host.accountFeatures.add(ns);
        stops.push(() => {
          host.features.delete(ns);
          host.accountFeatures.delete(ns);
        });
      },
      item(item) {
        host.discoItems.add(item);
        stops.push(() => { host.discoItems.delete(item); });
      },
    },
    timer(ms, fn) {
      const t = setInterval(fn, ms);
      t.unref();
      stops.push(() => clearInterval(t));
    },
    onStop(fn) {
      stops.push(fn);
    },
  };
}
