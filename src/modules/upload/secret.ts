// The key that signs upload URLs: from the configuration, or generated once and kept in the data directory so
// URLs handed out before a restart stay valid.
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../../core/errors.ts';

export const SECRET_FILE = 'upload.key';

export function uploadSecret(dataDir: string, configured: string | undefined): Buffer {
  if (configured !== undefined) return Buffer.from(configured, 'utf8');
  const path = join(dataDir, SECRET_FILE);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // Written aside and linked into place, so the key file appears whole or not at all, and a second host (or
    // process) starting at the same moment reads the first one's key.
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    writeFileSync(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx', flush: true });
    try {
      linkSync(tmp, path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(tmp);
    }
    // Only the server may read it, whoever created it.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    const hex = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error('not a key written by Parley (64 hex digits); remove it to generate a new one');
    return Buffer.from(hex, 'hex');
  } catch (err) {
    throw new ConfigError([`modules.upload.secret: cannot use the key file ${path}: ${(err as Error).message}`]);
  }
}
