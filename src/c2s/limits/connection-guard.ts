// Caps on client connections: in total, unauthenticated ones per address, and new ones per address per minute.
// A refused connection gets a stream header, the stream error and the end of the stream at once (RFC 6120
// §4.9.1.2 lets the error come before the client's header): policy-violation for a per-address cap
// (§4.9.3.14), resource-constraint for the server-wide one (§4.9.3.17).
import { BlockList, isIPv4, isIPv6, type Socket } from 'node:net';
import { normalizeIp } from '../../auth/access.ts';
import type { ConnectionCaps } from '../../config/limits-schema.ts';
import { ConfigError, StreamError } from '../../core/errors.ts';
import { NS } from '../../xml/ns.ts';
import { serialize } from '../../xml/element.ts';

/** Addresses remembered per minute at most: a flood from many addresses meets the total cap instead. */
const MAX_TRACKED = 100_000;

export type Refusal = { condition: 'policy-violation' | 'resource-constraint'; text: string };

/** One admitted connection; given back exactly once (release is idempotent). */
export class ConnectionTicket {
  readonly ip: string;
  /** Counted among its address's unauthenticated connections. */
  unauthenticated: boolean;
  released = false;
  constructor(ip: string, unauthenticated: boolean) {
    this.ip = ip;
    this.unauthenticated = unauthenticated;
  }
}

export class ConnectionGuard {
  private readonly caps: ConnectionCaps;
  private readonly exempt = new BlockList();
  private readonly now: () => number;
  private total = 0;
  private readonly unauthenticated = new Map<string, number>();
  private readonly attempts = new Map<string, number>();
  private minute = 0;

  constructor(caps: ConnectionCaps, now: () => number = Date.now) {
    this.caps = caps;
    this.now = now;
    const bad: string[] = [];
    for (const entry of caps.exempt) {
      const [addr = '', bits] = entry.split('/');
      const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
      const prefix = bits === undefined ? undefined : Number(bits);
      if (!type || (prefix !== undefined && (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)))) {
        bad.push(`limits.connections.exempt: "${entry}" is not an address or a network in CIDR notation`);
      } else if (prefix === undefined) this.exempt.addAddress(addr, type);
      else this.exempt.addSubnet(addr, prefix, type);
    }
    if (bad.length > 0) throw new ConfigError(bad);
  }

  /** Connections open now. */
  get open(): number {
    return this.total;
  }

  private isExempt(ip: string): boolean {
    if (isIPv4(ip)) return this.exempt.check(ip, 'ipv4');
    return isIPv6(ip) && this.exempt.check(ip, 'ipv6');
  }

  /** Admits a connection from `remoteAddress`, or says why not. */
  admit(remoteAddress: string): ConnectionTicket | Refusal {
    const c = this.caps;
    if (c.max_total > 0 && this.total >= c.max_total) {
      return { condition: 'resource-constraint', text: 'The server has too many connections; try again later' };
    }
    const ip = normalizeIp(remoteAddress);
    const capped = !this.isExempt(ip);
    if (capped && c.attempts_per_ip_per_minute > 0) {
      const minute = Math.floor(this.now() / 60_000);
      if (minute !== this.minute) {
        this.minute = minute;
        this.attempts.clear();
      }
      const n = this.attempts.get(ip) ?? 0;
      if (n >= c.attempts_per_ip_per_minute) return { condition: 'policy-violation', text: 'Too many connections from your address; try again in a minute' };
      if (n > 0 || this.attempts.size < MAX_TRACKED) this.attempts.set(ip, n + 1);
    }
    if (capped && c.max_unauthenticated_per_ip > 0) {
      const n = this.unauthenticated.get(ip) ?? 0;
      if (n >= c.max_unauthenticated_per_ip) return { condition: 'policy-violation', text: 'Too many unauthenticated connections from your address' };
      this.unauthenticated.set(ip, n + 1);
    }
    this.total++;
    return new ConnectionTicket(ip, capped && c.max_unauthenticated_per_ip > 0);
  }

  /** The connection authenticated: it no longer counts against its address's unauthenticated cap. */
  authenticated(t: ConnectionTicket): void {
    if (!t.unauthenticated || t.released) return;
    t.unauthenticated = false;
    this.decrement(t.ip);
  }

  release(t: ConnectionTicket): void {
    if (t.released) return;
    t.released = true;
    this.total--;
    if (t.unauthenticated) {
      t.unauthenticated = false;
      this.decrement(t.ip);
    }
  }

  private decrement(ip: string): void {
    const n = (this.unauthenticated.get(ip) ?? 1) - 1;
    if (n <= 0) this.unauthenticated.delete(ip);
    else this.unauthenticated.set(ip, n);
  }
}

/** Answers a refused connection with a stream error and closes it; the socket is cut if the peer lingers. */
export function refuseConnection(socket: Socket, refusal: Refusal): void {
  socket.on('error', () => socket.destroy());
  socket.end(`<?xml version='1.0'?><stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}' version='1.0'>`
    + serialize(new StreamError(refusal.condition, refusal.text).toElement()) + '</stream:stream>');
  setTimeout(() => socket.destroy(), 5000).unref();
}
