// Starts a real Parley on loopback with port 0 and a temporary data directory, for protocol tests.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { pino, type Logger } from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { ParleyServer } from '../../src/server.ts';
import { builtinModules } from '../../src/modules/index.ts';
import { createSelfSigned } from '../../src/tls/certificates.ts';

export type TestServer = {
  server: ParleyServer;
  port: number;
  tlsPort: number;
  /** Ports of the HTTP and HTTPS listeners (0 when disabled). */
  httpPort: number;
  httpsPort: number;
  dataDir: string;
  domain: string;
  register(user: string, password: string): Promise<void>;
  stop(): Promise<void>;
};

const trusted = new Set<string>();

/** Trusts the server's generated certificate process-wide, so clients verify it instead of skipping checks. */
export function trust(certPem: string): void {
  if (trusted.has(certPem)) return;
  trusted.add(certPem);
  setDefaultCACertificates([...getCACertificates('default'), ...trusted]);
}

let shared: Promise<{ cert: string; key: string }> | undefined;

/**
 * One certificate for every test server of a process: OpenSSL finds an issuer by its subject name, so many
 * trusted self-signed certificates all named "localhost" would shadow each other.
 */
function sharedCertificate(): Promise<{ cert: string; key: string }> {
  shared ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-cert-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const pems = await createSelfSigned(['localhost']);
    const cert = join(dir, 'server.crt');
    const key = join(dir, 'server.key');
    writeFileSync(cert, pems.cert);
    writeFileSync(key, pems.key, { mode: 0o600 });
    return { cert, key };
  })();
  return shared;
}

/**
 * `dataDir` reuses a data directory (a restart: stop one server, start another on its directory); the caller owns
 * it then, and stop() leaves it in place.
 */
export async function startServer(overrides: Record<string, unknown> = {}, opts: { adminChannel?: boolean; dataDir?: string; logger?: Logger } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'parley-test-'));
  const base = {
    hosts: ['localhost'],
    data_dir: dataDir,
    tls: overrides.generateCertificate ? {} : await sharedCertificate(),
    listen: {
      c2s: { port: 0, bind: '127.0.0.1' },
      c2s_direct_tls: { port: 0, bind: '127.0.0.1' },
      http: { port: 0, bind: '127.0.0.1' },
      https: { port: 0, bind: '127.0.0.1' },
    },
  };
  delete overrides.generateCertificate;
  const config = parseConfig({ ...base, ...overrides, listen: { ...base.listen, ...(overrides.listen as object | undefined) } });
  const logger = opts.logger ?? pino({ level: process.env.PARLEY_TEST_LOG ?? 'silent' });
  const server = new ParleyServer(config, { modules: builtinModules, logger, adminChannel: opts.adminChannel ?? false });
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => undefined);
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  if (server.certificate) trust(server.certificate.cert);
  return {
    server,
    port: server.addresses.c2s?.port ?? 0,
    tlsPort: server.addresses.c2sDirectTls?.port ?? 0,
    httpPort: server.addresses.http?.port ?? 0,
    httpsPort: server.addresses.https?.port ?? 0,
    dataDir,
    domain: config.hosts[0] as string,
    register: async (user, password) => {
      await server.accounts.register(user, config.hosts[0] as string, password);
    },
    stop: async () => {
      await server.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
