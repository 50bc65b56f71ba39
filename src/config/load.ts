// Loads one YAML file and validates it; every problem is reported with its key path.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve, dirname } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { ConfigSchema, type Config } from './schema.ts';
import { AuthSchema, type AuthConfig } from './auth-schema.ts';

export function formatIssues(issues: z.core.$ZodIssue[], prefix: Array<string | number> = []): string[] {
  return issues.map((i) => {
    const path = [...prefix, ...i.path.map((p) => (typeof p === 'symbol' ? p.toString() : p))].join('.');
    return `${path || '(root)'}: ${i.message}`;
  });
}

/** Validates a plain object (from YAML or from code) against the core schema. */
export function parseConfig(raw: unknown): Config {
  const result = ConfigSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues));
  const config = result.data;
  // Per-host auth overrides are validated as a whole, merged over the global section.
  const problems: string[] = [];
  for (const host of Object.keys(config.host_config)) {
    try {
      hostAuthConfig(config, host);
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else throw err;
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The auth configuration of one host: host_config.HOST.auth merged over the global auth. */
export function hostAuthConfig(config: Config, host: string): AuthConfig {
  const override = config.host_config[host]?.auth;
  if (!override) return config.auth;
  const r = AuthSchema.safeParse({ ...config.auth, ...override });
  if (!r.success) throw new ConfigError(formatIssues(r.error.issues, ['host_config', host, 'auth']));
  return r.data;
}

/** Reads a YAML file; relative paths in it are resolved against the file's folder. */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: ${(err as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) throw new ConfigError(doc.errors.map((e) => `${file}: ${e.message}`));
  const config = parseConfig(doc.toJS());
  return resolvePaths(config, dirname(resolve(file)));
}

export function resolvePaths(config: Config, base: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  config.data_dir = abs(config.data_dir);
  if (config.storage.path && config.storage.path !== ':memory:') config.storage.path = abs(config.storage.path);
  if (config.tls.cert) config.tls.cert = abs(config.tls.cert);
  if (config.tls.key) config.tls.key = abs(config.tls.key);
  if (config.admin_socket) config.admin_socket = abs(config.admin_socket);
  // Paths inside auth sections: a program named like ./extauth.py and a key file, not a bare command or PEM text.
  const authPaths = (auth: { external?: { program: string } | undefined; jwt?: { public_key?: string | undefined } | undefined }): void => {
    if (auth.external && /^\.\.?\//.test(auth.external.program)) auth.external.program = abs(auth.external.program);
    if (auth.jwt?.public_key && !auth.jwt.public_key.includes('-----BEGIN')) auth.jwt.public_key = abs(auth.jwt.public_key);
  };
  authPaths(config.auth);
  for (const h of Object.values(config.host_config)) if (h.auth) authPaths(h.auth as Parameters<typeof authPaths>[0]);
  return config;
}
