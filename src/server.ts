// Wires hosts, storage, listeners and modules into one running server.
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext } from 'node:tls';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { StreamError } from './core/errors.ts';
import { Host, type ServerServices } from './core/host.ts';
import { registerDeliveryRules } from './core/delivery.ts';
import type { ModuleDefinition } from './core/module.ts';
import { ModuleManager } from './core/module-manager.ts';
import { Router } from './core/router.ts';
import { SessionManager } from './core/session-manager.ts';
import { Metrics } from './core/metrics.ts';
import { ClientSession } from './c2s/session.ts';
import { TcpTransport } from './c2s/transports/tcp.ts';
import { ConnectionGuard, ConnectionTicket, refuseConnection } from './c2s/limits/connection-guard.ts';
import { NS } from './xml/ns.ts';
import { openStorage } from './storage/open.ts';
import type { Storage } from './storage/types.ts';
import { loadOrCreateCertificate, type CertificatePair } from './tls/certificates.ts';
import { Accounts } from './accounts.ts';
import { createHostAuth } from './auth/create.ts';
import { AccessControl } from './auth/access.ts';
import type { HostAuth } from './auth/host-auth.ts';
import { AdminChannel } from './admin/admin-channel.ts';
import { ComponentListener } from './component/listener.ts';
import { HttpRoutes } from './http/routes.ts';
import { HttpListener } from './http/listener.ts';
import { httpServices } from './http/services.ts';

export type ServerOptions = {
  logger?: Logger;
  modules: ModuleDefinition[];
  /** Open the local admin channel (the CLI's way in); tests may leave it off. */
  adminChannel?: boolean;
};

export class ParleyServer implements ServerServices {
  readonly config: Config;
  readonly log: Logger;
  readonly storage: Storage;
  readonly sessions = new SessionManager();
  readonly hosts = new Map<string, Host>();
  readonly router: Router;
  readonly startedAt = Date.now();
  readonly metrics = new Metrics();
  readonly access: AccessControl;
  /** Account operations; available once started. */
  accounts: Accounts;
  private readonly hostAuth = new Map<string, HostAuth>();
  readonly modules: ModuleManager;
  certificate: CertificatePair | undefined;
  private secureContext: SecureContext | undefined;
  private readonly listeners: NetServer[] = [];
  private readonly sockets = new Set<Socket>();
  /** Caps on client connections per address and in total (limits.connections). */
  readonly connectionGuard: ConnectionGuard;
  private readonly options: ServerOptions;
  private admin: AdminChannel | undefined;
  /** Bound addresses, known once started. */
  readonly addresses: { c2s?: AddressInfo; c2sDirectTls?: AddressInfo; component?: AddressInfo; http?: AddressInfo; https?: AddressInfo } = {};
  readonly http: HttpRoutes;
  readonly httpUrls: { http?: string; https?: string } = {};
  private readonly httpListeners: HttpListener[] = [];
  private readonly httpStops: Array<() => void | Promise<void>> = [];
  /** External components (XEP-0114), when listen.component is enabled. */
  components: ComponentListener | undefined;

  constructor(config: Config, options: ServerOptions) {
    this.config = config;
    this.options = options;
    this.log = options.logger ?? pino({ level: config.log.level });
    this.storage = openStorage(config);
    this.access = new AccessControl(config);
    this.connectionGuard = new ConnectionGuard(config.limits.connections);
    this.router = new Router(this.hosts, this.log, this.metrics);
    this.accounts = new Accounts(this.hostAuth);
    this.modules = new ModuleManager(options.modules);
    this.http = new HttpRoutes(this.log.child({ component: 'http' }));
  }

  /** Validates module options for every host, loads certificates and modules, then opens the ports. */
  async start(): Promise<void> {
    const plans = this.config.hosts.map((name) => ({
      name,
      plan: this.modules.plan(name, this.config.modules, this.config.host_config[name]?.modules),
    }));
    this.certificate = await loadOrCreateCertificate({
      cert: this.config.tls.cert, key: this.config.tls.key, dataDir: this.config.data_dir, hosts: this.config.hosts,
    });
    const tlsOptions = { cert: this.certificate.cert, key: this.certificate.key, minVersion: 'TLSv1.2' as const };
    this.secureContext = createSecureContext(tlsOptions);
    this.log.info(
      { fingerprint256: this.certificate.fingerprint256, path: this.certificate.path, generated: this.certificate.generated },
      this.certificate.generated ? 'generated a self-signed certificate' : 'certificate loaded',
    );
    await this.startHttp();
    for (const { name } of plans) this.hostAuth.set(name.toLowerCase(), await createHostAuth(this.config, name, this.storage, this.log));
    for (const { name, plan } of plans) {
      const host = new Host(name, this, this.hostAuth.get(name.toLowerCase()) as HostAuth);
      this.hosts.set(name.toLowerCase(), host);
      registerDeliveryRules(host);
      // Legacy session establishment (RFC 3921 §3) is a no-op kept for old clients.
      host.iq.register('set', NS.SESSION, 'session', () => undefined, ['account', 'host'], 'core');
      await this.modules.load(host, plan);
      this.log.info({ host: name, modules: this.modules.loadedOn(host) }, 'host ready');
    }
    const { c2s, c2s_direct_tls } = this.config.listen;
    // Validates the components section before any port opens.
    if (this.config.listen.component.enabled) this.components = new ComponentListener(this);
    if (c2s.enabled) this.addresses.c2s = await this.listen(createNetServer(), c2s.bind, c2s.port, 'c2s');
    if (c2s_direct_tls.enabled) {
      const server = createTlsServer({ ...tlsOptions, ALPNProtocols: ['xmpp-client'] });
      this.addresses.c2sDirectTls = await this.listen(server, c2s_direct_tls.bind, c2s_direct_tls.port, 'c2s_direct_tls', 'secureConnection');
    }
    if (this.components) this.addresses.component = await this.components.start();
    await this.mountHttpServices();
    if (this.options.adminChannel !== false) {
      this.admin = new AdminChannel(this, this.config.admin_socket ?? join(this.config.data_dir, 'parley.sock'));
      await this.admin.start();
    }
  }

  /** Opens the HTTP listeners first, so modules know the URLs they hand out (upload slots); routes come later. */
  private async startHttp(): Promise<void> {
    const { http, https } = this.config.listen;
    const log = this.log.child({ component: 'http' });
    const firstHost = this.config.hosts[0] as string;
    if (http.enabled) {
      const l = new HttpListener(this.http, this.config.http, { bind: http.bind, port: http.port, name: 'http' }, log);
      this.httpListeners.push(l);
      this.addresses.http = await l.listen();
      this.httpUrls.http = `http://${urlHost(http.bind, firstHost)}:${this.addresses.http.port}`;
    }
    if (https.enabled) {
      const cert = this.certificate as CertificatePair;
      const l = new HttpListener(this.http, this.config.http, { bind: https.bind, port: https.port, name: 'https', tls: { cert: cert.cert, key: cert.key } }, log);
      this.httpListeners.push(l);
      this.addresses.https = await l.listen();
      this.httpUrls.https = this.config.http.public_url?.replace(/\/+$/, '') ?? `https://${firstHost}:${this.addresses.https.port}`;
    }
  }

  /** Mounts the server-wide web services once every host is ready. */
  private async mountHttpServices(): Promise<void> {
    for (const mount of httpServices) {
      const stop = await mount(this, this.http);
      if (typeof stop === 'function') this.httpStops.push(stop);
    }
  }

  /** Whether every listener opened at start is still accepting connections (for /health). */
  listenersUp(): boolean {
    return this.listeners.every((l) => l.listening) && this.httpListeners.every((l) => l.listening);
  }

  private listen(server: NetServer, bind: string, port: number, name: string, event = 'connection'): Promise<AddressInfo> {
    server.on(event, (socket: Socket) => this.accept(socket));
    // A TLS handshake failure on direct TLS is the peer's problem, not ours.
    server.on('tlsClientError', (err: Error) => this.log.debug({ err: err.message }, 'TLS client error'));
    server.on('error', (err) => this.log.error({ err, listener: name }, 'listener error'));
    this.listeners.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: bind, port, backlog: 511 }, () => {
        server.off('error', reject);
        const addr = server.address() as AddressInfo;
        this.log.info({ listener: name, address: addr.address, port: addr.port }, 'listening');
        resolve(addr);
      });
    });
  }

  private readonly reportHandlerFailure = (err: unknown, ip: string): void => {
    this.log.error({ err, ip }, 'connection handler failed; connection closed');
  };

  private accept(socket: Socket): void {
    const ticket = this.connectionGuard.admit(socket.remoteAddress ?? '');
    if (!(ticket instanceof ConnectionTicket)) {
      this.log.info({ ip: socket.remoteAddress, condition: ticket.condition }, 'connection refused: too many connections');
      refuseConnection(socket, ticket);
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.connectionGuard.release(ticket);
    });
    const l = this.config.limits;
    const transport = new TcpTransport(socket, { maxStanzaBytes: l.stanza_size_preauth, maxDepth: l.max_depth, maxAttrs: l.max_attrs },
      this.reportHandlerFailure, l.read_rate_preauth);
    new ClientSession(transport, this, {
      starttls: this.config.listen.c2s.starttls,
      secureContext: this.secureContext as SecureContext,
      guard: this.connectionGuard,
      ticket,
    });
  }

  async stop(): Promise<void> {
    for (const l of this.listeners) l.close();
    for (const stop of this.httpStops.reverse()) await stop();
    for (const l of this.httpListeners) await l.close();
    await this.components?.stop();
    await this.admin?.stop();
    for (const s of [...this.sessions.sessions()]) s.close(new StreamError('system-shutdown'));
    // Give clients a moment to read the closing stream, then cut what is left.
    await new Promise((r) => setTimeout(r, 50));
    for (const s of this.sockets) s.destroy();
    await this.modules.unloadAll();
    for (const auth of this.hostAuth.values()) await auth.close();
    this.storage.close();
    this.log.info('stopped');
  }
}

/** The host part of a URL for a listener: loopback binds are reached as the host name clients already use. */
function urlHost(bind: string, host: string): string {
  if (bind === '0.0.0.0' || bind === '::' || bind.startsWith('127.') || bind === '::1') return host;
  return bind.includes(':') ? `[${bind}]` : bind;
}
