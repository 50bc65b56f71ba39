// XEP-0114: Jabber Component Protocol <https://xmpp.org/extensions/xep-0114.html> 1.6 — the listener external
// components (app servers, gateways, push services) connect to; one ComponentSession per connection.
import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { ConfigError, StreamError } from '../core/errors.ts';
import type { ServerServices } from '../core/host.ts';
import { Jid } from '../xmpp/jid.ts';
import { TcpTransport } from '../c2s/transports/tcp.ts';
import { ComponentSession, type ComponentDirectory } from './session.ts';

export class ComponentListener implements ComponentDirectory {
  private readonly server: ServerServices;
  /** Prepared domain -> shared secret. */
  private readonly secrets = new Map<string, string>();
  private readonly sessions = new Set<ComponentSession>();
  private readonly sockets = new Set<Socket>();
  private net: NetServer | undefined;

  /** Validates `components` (each key a bare domain that is not a virtual host); throws ConfigError listing every problem. */
  constructor(server: ServerServices) {
    this.server = server;
    const problems: string[] = [];
    for (const [key, { secret }] of Object.entries(server.config.components)) {
      const jid = Jid.tryParse(key);
      if (!jid || jid.local !== '' || jid.resource !== '') {
        problems.push(`components.${key}: not a domain name`);
        continue;
      }
      if (server.hosts.has(jid.domain) || server.config.hosts.some((h) => h.toLowerCase() === jid.domain)) {
        problems.push(`components.${key}: is a virtual host (hosts), not a component domain`);
        continue;
      }
      if (this.secrets.has(jid.domain)) {
        problems.push(`components.${key}: configured twice`);
        continue;
      }
      this.secrets.set(jid.domain, secret);
    }
    if (problems.length > 0) throw new ConfigError(problems);
  }

  secret(domain: string): string | undefined {
    return this.secrets.get(domain);
  }

  opened(session: ComponentSession): void {
    this.sessions.add(session);
  }

  closed(session: ComponentSession): void {
    this.sessions.delete(session);
  }

  /** Domains with a component connected and past the handshake. */
  connected(): string[] {
    const out: string[] = [];
    for (const s of this.sessions) if (s.ready && s.domain !== undefined) out.push(s.domain);
    return out;
  }

  /** Opens the port of `listen.component`. */
  start(): Promise<AddressInfo> {
    const { bind, port } = this.server.config.listen.component;
    const net = createServer((socket) => this.accept(socket));
    this.net = net;
    net.on('error', (err) => this.server.log.error({ err, listener: 'component' }, 'listener error'));
    return new Promise((resolve, reject) => {
      net.once('error', reject);
      net.listen({ host: bind, port, backlog: 511 }, () => {
        net.off('error', reject);
        const addr = net.address() as AddressInfo;
        this.server.log.info({ listener: 'component', address: addr.address, port: addr.port, domains: [...this.secrets.keys()] }, 'listening');
        resolve(addr);
      });
    });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const l = this.server.config.limits;
    // Until the handshake, the pre-authentication limits apply, as for clients.
    const transport = new TcpTransport(socket, { maxStanzaBytes: l.stanza_size_preauth, maxDepth: l.max_depth, maxAttrs: l.max_attrs });
    new ComponentSession(transport, this.server, this);
  }

  /** Stops accepting, ends every component stream with system-shutdown, then cuts what is left. */
  async stop(): Promise<void> {
    // close() only stops new connections; its callback would wait for the open ones, so it is not awaited.
    this.net?.close();
    this.net = undefined;
    for (const s of [...this.sessions]) s.close(new StreamError('system-shutdown'));
    if (this.sockets.size > 0) await new Promise((r) => setTimeout(r, 50));
    for (const s of this.sockets) s.destroy();
  }
}
