// The one owner of the JID-to-session maps. On one node it is in memory; a cluster registry would sit behind
// the same methods.
import { StreamError } from './errors.ts';
import type { C2sSession } from './session.ts';
import type { Jid } from '../xmpp/jid.ts';

export class SessionManager {
  /** bare JID -> resource -> session */
  private readonly byBare = new Map<string, Map<string, C2sSession>>();
  private readonly all = new Set<C2sSession>();

  /** Registers a bound session; a session already bound to the same full JID is replaced (it gets conflict). */
  add(session: C2sSession, jid: Jid): C2sSession | undefined {
    let resources = this.byBare.get(jid.bareString);
    if (!resources) {
      resources = new Map();
      this.byBare.set(jid.bareString, resources);
    }
    const old = resources.get(jid.resource);
    resources.set(jid.resource, session);
    this.all.add(session);
    if (old && old !== session) {
      this.all.delete(old);
      old.close(new StreamError('conflict', 'Replaced by new connection'));
    }
    return old;
  }

  remove(session: C2sSession): void {
    this.all.delete(session);
    const jid = session.jid;
    if (!jid) return;
    const resources = this.byBare.get(jid.bareString);
    if (resources?.get(jid.resource) === session) {
      resources.delete(jid.resource);
      if (resources.size === 0) this.byBare.delete(jid.bareString);
    }
  }

  get(full: Jid): C2sSession | undefined {
    return this.byBare.get(full.bareString)?.get(full.resource);
  }

  /** Every bound session of an account. */
  resources(bare: Jid): C2sSession[] {
    const r = this.byBare.get(bare.bareString);
    return r ? [...r.values()] : [];
  }

  /** Available resources of an account. */
  available(bare: Jid): C2sSession[] {
    const r = this.byBare.get(bare.bareString);
    if (!r) return [];
    const out: C2sSession[] = [];
    for (const s of r.values()) if (s.available) out.push(s);
    return out;
  }

  hasResource(bare: Jid, resource: string): boolean {
    return this.byBare.get(bare.bareString)?.has(resource) ?? false;
  }

  sessions(): IterableIterator<C2sSession> {
    return this.all.values();
  }

  get count(): number {
    return this.all.size;
  }
}
