// Registers the benchmark accounts PREFIX1..PREFIXN in the storage of a Parley configuration, quickly.
//   node bench/setup-parley-users.ts --config parley.yml --users 10000 [--prefix user] [--password pw]
//        [--host localhost] [--unique-salts]
// The server may be running (SQLite in WAL mode takes the writes); existing accounts are left as they are.
// It writes what Parley's internal authentication backend writes (SCRAM-SHA-1 and -256 keys) through the
// storage interface, which is what `parley register` ends up doing, one PBKDF2 run per account.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { deriveScramCredentials } from '../src/c2s/sasl/credentials.ts';
import { resolveConfig } from '../src/cli/main.ts';
import { StorageError } from '../src/core/errors.ts';
import { openStorage } from '../src/storage/open.ts';
import { prepareLocalpart } from '../src/xmpp/precis.ts';

const USAGE = 'Usage: node bench/setup-parley-users.ts --config FILE --users N [--prefix user] [--password pw] [--host HOST] [--unique-salts]';

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' }, users: { type: 'string' }, prefix: { type: 'string' },
        password: { type: 'string' }, host: { type: 'string' }, 'unique-salts': { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const n = Number(values.users ?? '');
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`--users must be a positive integer\n${USAGE}\n`);
    return 2;
  }
  const prefix = values.prefix ?? 'user';
  const password = values.password ?? 'pw';
  const config = resolveConfig(values.config ? resolve(values.config) : undefined);
  const storage = openStorage(config);
  try {
    const host = (values.host ?? (config.hosts[0] as string)).toLowerCase();
    if (!config.hosts.includes(host)) throw new Error(`host ${host} is not served (served: ${config.hosts.join(', ')})`);
    const iterations = config.auth.scram_iterations;
    const derive = (): ReturnType<typeof deriveScramCredentials>[] =>
      [deriveScramCredentials(password, 'SHA-1', iterations), deriveScramCredentials(password, 'SHA-256', iterations)];
    // Every account gets the same salt unless asked otherwise: SCRAM servers verify logins with the stored
    // keys and never run PBKDF2 for them, so the server's work per login is the same, and 10,000 accounts
    // take seconds instead of minutes of key derivation.
    const shared = values['unique-salts'] ? undefined : derive();
    let created = 0;
    let existing = 0;
    const started = Date.now();
    for (let i = 1; i <= n; i++) {
      const user = prepareLocalpart(`${prefix}${i}`);
      try {
        await storage.accounts.create(host, user, shared ?? derive());
        created++;
      } catch (err) {
        if (err instanceof StorageError && err.code === 'CONFLICT') existing++;
        else throw err;
      }
      if (process.stderr.isTTY && i % 1000 === 0) process.stderr.write(`\r${i}/${n}`);
    }
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${created} account(s) created, ${existing} already existed (${prefix}1..${prefix}${n}@${host}, ${Date.now() - started} ms)\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    return 1;
  } finally {
    storage.close();
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
