// Access control: named ACLs (users, servers, IP networks) and access rules that decide who may log in,
// register and administer, evaluated first match wins (ejabberd's acl and access_rules).
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Config } from '../config/schema.ts';
import type { AccessConfig, AclConfig } from '../config/acl-schema.ts';
import { ConfigError } from '../core/errors.ts';
import { Jid } from '../xmpp/jid.ts';
import { prepareLocalpart } from '../xmpp/precis.ts';

export type AccessSubject = { jid?: Jid | undefined; ip?: string | undefined; host: string };

type CompiledAcl = { users: Set<string>; localparts: Set<string>; servers: Set<string>; ips: BlockList | undefined };

/** Rules that apply when the configuration does not name them. */
export const DEFAULT_ACCESS: AccessConfig = {
  c2s: ['allow'],
  register: [{ allow: 'loopback' }],
  admin: [{ allow: 'admin' }],
};

const BUILTIN = ['all', 'none', 'admin', 'loopback', 'local'] as const;

/** IPv4 addresses seen on a dual-stack socket arrive as ::ffff:a.b.c.d. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/**
 * Adds an IP network ("addr/bits", or one address) to `list`; false when it is not one. IPv4 networks also match
 * IPv4-mapped IPv6 peers once the address is normalized (normalizeIp).
 */
export function addNetwork(list: BlockList, net: string): boolean {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(net);
  const addr = m?.[1] ?? '';
  const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
  if (!m || !type) return false;
  const max = type === 'ipv4' ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return false;
  list.addSubnet(addr, prefix, type);
  return true;
}

/** Whether a peer address (IPv4-mapped or not) lies in one of the networks of `list`. */
export function inNetworks(list: BlockList, ip: string): boolean {
  const a = normalizeIp(ip);
  return isIPv4(a) ? list.check(a, 'ipv4') : isIPv6(a) ? list.check(a, 'ipv6') : false;
}

function compile(path: string, entry: { user?: string[] | undefined; server?: string[] | undefined; ip?: string[] | undefined }, problems: string[]): CompiledAcl {
  const acl: CompiledAcl = { users: new Set(), localparts: new Set(), servers: new Set(), ips: undefined };
  for (const u of entry.user ?? []) {
    const jid = Jid.tryParse(u);
    if (u.includes('@') && jid) acl.users.add(jid.bareString);
    else {
      try {
        acl.localparts.add(prepareLocalpart(u));
      } catch {
        problems.push(`${path}.user: invalid user ${u}`);
      }
    }
  }
  for (const s of entry.server ?? []) acl.servers.add(s.toLowerCase());
  for (const net of entry.ip ?? []) {
    acl.ips ??= new BlockList();
    if (!addNetwork(acl.ips, net)) problems.push(`${path}.ip: invalid network ${net}`);
  }
  return acl;
}

type Scope = { acls: Map<string, CompiledAcl>; rules: AccessConfig };

export class AccessControl {
  private readonly global: Scope;
  /** Hosts with their own acl, access or admins in host_config. */
  private readonly perHost = new Map<string, Scope>();
  private readonly hosts: Set<string>;

  constructor(config: Config) {
    const problems: string[] = [];
    this.hosts = new Set(config.hosts.map((h) => h.toLowerCase()));
    this.global = buildScope(config.acl, config.access, config.admins, '', problems);
    for (const [host, hc] of Object.entries(config.host_config)) {
      if (!hc.acl && !hc.access && !hc.admins) continue;
      this.perHost.set(host.toLowerCase(), buildScope(
        { ...config.acl, ...hc.acl }, { ...config.access, ...hc.access }, [...config.admins, ...(hc.admins ?? [])],
        `host_config.${host}.`, problems,
      ));
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }

  matches(aclName: string, s: AccessSubject): boolean {
    switch (aclName) {
      case 'all': return true;
      case 'none': return false;
      case 'local': return s.jid !== undefined && this.hosts.has(s.jid.domain);
    }
    const acl = (this.perHost.get(s.host) ?? this.global).acls.get(aclName);
    if (!acl) return false;
    if (s.jid) {
      if (acl.users.has(s.jid.bareString)) return true;
      if (acl.localparts.has(s.jid.local) && this.hosts.has(s.jid.domain)) return true;
      if (acl.servers.has(s.jid.domain)) return true;
    }
    if (s.ip && acl.ips && inNetworks(acl.ips, s.ip)) return true;
    return false;
  }

  /** Evaluates an access rule of the subject's host; the first matching entry decides, and no match means deny. */
  allowed(rule: string, s: AccessSubject): boolean {
    const entries = (this.perHost.get(s.host) ?? this.global).rules[rule];
    if (!entries) return false;
    for (const e of entries) {
      if (e === 'allow') return true;
      if (e === 'deny') return false;
      if ('allow' in e ? this.matches(e.allow, s) : false) return true;
      if ('deny' in e ? this.matches(e.deny, s) : false) return false;
    }
    return false;
  }
}

function buildScope(aclConfig: AclConfig, access: AccessConfig, admins: string[], prefix: string, problems: string[]): Scope {
  const acls = new Map<string, CompiledAcl>();
  for (const [name, entry] of Object.entries(aclConfig)) {
    if ((BUILTIN as readonly string[]).includes(name) && name !== 'admin') problems.push(`${prefix}acl.${name}: a built-in name`);
    acls.set(name, compile(`${prefix}acl.${name}`, entry, problems));
  }
  // The admins list is the built-in admin ACL; an acl.admin entry adds to it.
  const admin = acls.get('admin') ?? compile(`${prefix}acl.admin`, {}, problems);
  for (const a of admins) {
    const jid = Jid.tryParse(a);
    if (jid) admin.users.add(jid.bareString);
    else problems.push(`${prefix}admins: invalid JID ${a}`);
  }
  acls.set('admin', admin);
  acls.set('loopback', compile('loopback', { ip: ['127.0.0.0/8', '::1/128'] }, problems));
  const rules = { ...DEFAULT_ACCESS, ...access };
  for (const [rule, entries] of Object.entries(rules)) {
    for (const e of entries) {
      const name = typeof e === 'string' ? undefined : 'allow' in e ? e.allow : e.deny;
      if (name !== undefined && !acls.has(name) && !(BUILTIN as readonly string[]).includes(name)) {
        problems.push(`${prefix}access.${rule}: unknown acl ${name}`);
      }
    }
  }
  return { acls, rules };
}
