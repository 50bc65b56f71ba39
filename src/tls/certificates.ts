// Server certificates: load the configured PEM files, or generate a self-signed one on first run.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { ConfigError } from '../core/errors.ts';

export type CertificatePair = { cert: string; key: string; fingerprint256: string; generated: boolean; path: string };

/** A self-signed certificate naming every host (and loopback), valid for ten years. */
export async function createSelfSigned(hosts: string[]): Promise<{ cert: string; key: string }> {
  const altNames = [
    ...hosts.map((h) => ({ type: 2 as const, value: h })),
    { type: 7 as const, ip: '127.0.0.1' },
    { type: 7 as const, ip: '::1' },
  ];
  const notAfter = new Date();
  notAfter.setFullYear(notAfter.getFullYear() + 10);
  const pems = await generate([{ name: 'commonName', value: hosts[0] ?? 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

export async function loadOrCreateCertificate(opts: { cert?: string | undefined; key?: string | undefined; dataDir: string; hosts: string[] }): Promise<CertificatePair> {
  if (opts.cert || opts.key) {
    if (!opts.cert || !opts.key) throw new ConfigError(['tls: set both cert and key, or neither']);
    let cert: string;
    let key: string;
    try {
      cert = readFileSync(opts.cert, 'utf8');
      key = readFileSync(opts.key, 'utf8');
    } catch (err) {
      throw new ConfigError([`tls: ${(err as Error).message}`]);
    }
    return { cert, key, fingerprint256: fingerprint(cert, 'tls.cert'), generated: false, path: opts.cert };
  }
  const dir = join(opts.dataDir, 'certs');
  const certPath = join(dir, 'server.crt');
  const keyPath = join(dir, 'server.key');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath, 'utf8');
    return { cert, key: readFileSync(keyPath, 'utf8'), fingerprint256: fingerprint(cert, certPath), generated: false, path: certPath };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { cert, key } = await createSelfSigned(opts.hosts);
  writeFileSync(keyPath, key, { mode: 0o600 });
  writeFileSync(certPath, cert);
  return { cert, key, fingerprint256: fingerprint(cert, certPath), generated: true, path: certPath };
}

function fingerprint(pem: string, where: string): string {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch (err) {
    throw new ConfigError([`${where}: not a PEM certificate (${(err as Error).message})`]);
  }
}
