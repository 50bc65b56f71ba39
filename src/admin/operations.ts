// Operator actions on a running server, shared by the local admin channel (the CLI) and the web admin, so each
// front end only parses its input and renders the result.
import { StreamError } from '../core/errors.ts';
import { Jid } from '../xmpp/jid.ts';
import type { ParleyServer } from '../server.ts';
import type { Config } from '../config/schema.ts';
import { activeOutboxKinds, outboxKind } from '../outbox/sender.ts';

export type ServerStatus = {
  pid: number;
  /** Seconds since start. */
  uptime: number;
  hosts: string[];
  sessions: number;
  /** Resident set size, bytes. */
  memory: number;
  listeners: ParleyServer['addresses'];
};

export type ConnectedSession = { jid: string | undefined; transport: string; secure: boolean; ip: string; since: string };

export function serverStatus(s: ParleyServer): ServerStatus {
  return {
    pid: process.pid,
    uptime: Math.round((Date.now() - s.startedAt) / 1000),
    hosts: [...s.hosts.keys()],
    sessions: s.sessions.count,
    memory: process.memoryUsage().rss,
    listeners: s.addresses,
  };
}

export function connectedSessions(s: ParleyServer): ConnectedSession[] {
  return [...s.sessions.sessions()].map((x) => ({
    jid: x.jid?.toString(), transport: x.transport, secure: x.secure, ip: x.remoteAddress, since: new Date(x.startedAt).toISOString(),
  }));
}

/** Closes every session of a bare JID, or the one session of a full JID, with a policy-violation stream error. */
export function kickSessions(s: ParleyServer, jidText: string): { kicked: number } {
  const jid = Jid.parse(jidText);
  const targets = jid.isBare ? s.sessions.resources(jid) : [s.sessions.get(jid)].filter((x) => x !== undefined);
  for (const t of targets) t.close(new StreamError('policy-violation', 'Kicked by an administrator'));
  return { kicked: targets.length };
}

/** Removes an account (modules hear of it first, as for in-band unregistration) and ends its sessions. */
export async function removeUser(s: ParleyServer, user: string, hostName: string): Promise<{ jid: string }> {
  const auth = s.accounts.hostAuth(hostName);
  const jid = Jid.of(s.accounts.username(user), auth.host);
  const host = s.hosts.get(auth.host);
  if (host) await host.removeAccount(jid);
  else await s.accounts.unregister(jid.local, auth.host);
  for (const t of s.sessions.resources(jid)) t.close(new StreamError('not-authorized', 'Account removed'));
  return { jid: jid.toString() };
}

/** Outbox kinds an operator may look at: those with a running sender and those the configuration implies. */
export function knownOutboxKinds(s: ParleyServer): string[] {
  return [...new Set([...activeOutboxKinds(), ...configuredOutboxKinds(s.config)])];
}

/** Outbox kinds the configuration implies: <module>:<host> for every module configured on a host. */
export function configuredOutboxKinds(config: Config): string[] {
  const out: string[] = [];
  for (const host of config.hosts) {
    const merged = { ...config.modules, ...(config.host_config[host]?.modules ?? {}) };
    for (const [id, setting] of Object.entries(merged)) if (setting !== false) out.push(outboxKind(id, host));
  }
  return out;
}
