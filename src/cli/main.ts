// The `parley` command, in the spirit of ejabberdctl.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigFile, parseConfig, resolvePaths } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { ConfigError, StorageError } from '../core/errors.ts';
import { Accounts, AccountError } from '../accounts.ts';
import { openStorage } from '../storage/open.ts';
import { adminRequest } from './admin-client.ts';
import { apiTokenCommand } from './api-token.ts';
import { inviteCommand } from './invite.ts';
import {
  configuredOutboxKinds, parseOutboxArgs, runOutboxCommand, type OutboxCommand, type OutboxCommandResult,
} from '../admin/admin-channel.ts';
import { createHostAuth } from '../auth/create.ts';
import type { HostAuth } from '../auth/host-auth.ts';
import { pino } from 'pino';

const USAGE = `Usage: parley <command> [--config FILE]

  start                          run the server
  register USER HOST PASSWORD    create an account
  unregister USER HOST           delete an account and its data
  passwd USER HOST PASSWORD      change a password
  users HOST                     list the accounts of a host
  fast-revoke USER HOST          revoke the account's FAST tokens (XEP-0484): clients must log in with the password
  connected                      list connected sessions (server must run)
  kick JID                       disconnect a session or every session of an account
  status                         is the server running, and how is it doing
  outbox                         background delivery queue (webhooks, push): jobs per kind and state
  outbox list [KIND] [STATE]     the latest 100 jobs; STATE is pending, delivered or dead
  outbox retry [KIND]            put dead jobs back in the queue
  api-token create [--name N] [--host H] [--expires DAYS]
                                 create a REST API token (printed once; for host H only, if given)
  api-token list                 list REST API tokens
  api-token revoke ID            revoke a REST API token
  invite create [--host H] [--expires DAYS]
                                 print a single-use invitation token and its xmpp: URI for in-band registration

The configuration is read from --config, else $PARLEY_CONFIG, else ./parley.yml if it exists;
without any, the defaults serve localhost with data in ./data.`;

export function resolveConfig(file: string | undefined): Config {
  const path = file ?? process.env.PARLEY_CONFIG ?? (existsSync('parley.yml') ? 'parley.yml' : undefined);
  if (path) return loadConfigFile(path);
  return resolvePaths(parseConfig({}), process.cwd());
}

function adminSocket(config: Config): string {
  return config.admin_socket ?? join(config.data_dir, 'parley.sock');
}

const ACCOUNT_COMMANDS: Record<string, number> = { register: 3, unregister: 2, passwd: 3, users: 1, 'fast-revoke': 2 };
const SERVER_COMMANDS: Record<string, number> = { connected: 0, kick: 1, status: 0 };

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' },
        // api-token create and invite create.
        name: { type: 'string' }, host: { type: 'string' }, expires: { type: 'string' },
      },
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 64;
  }
  const [cmd, ...args] = parsed.positionals;
  if (!cmd || parsed.values.help || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    return cmd || parsed.values.help ? 0 : 64;
  }
  if (cmd === 'invite' && parsed.values.name !== undefined) {
    process.stderr.write(`--name belongs to api-token create\n${USAGE}\n`);
    return 64;
  }
  if (cmd !== 'api-token' && cmd !== 'invite' && (parsed.values.name ?? parsed.values.host ?? parsed.values.expires) !== undefined) {
    process.stderr.write(`--name, --host and --expires belong to api-token create\n${USAGE}\n`);
    return 64;
  }
  try {
    const config = resolveConfig(parsed.values.config ? resolve(parsed.values.config) : undefined);
    if (cmd === 'start') {
      const { runServer } = await import('../main.ts');
      await runServer(config);
      return 0;
    }
    if (cmd === 'outbox') return await outboxCommand(config, args as string[]);
    if (cmd === 'api-token') return await apiTokenCommand(config, args as string[], parsed.values);
    if (cmd === 'invite') return await inviteCommand(config, args as string[], parsed.values);
    const arity = ACCOUNT_COMMANDS[cmd] ?? SERVER_COMMANDS[cmd];
    if (arity === undefined) {
      process.stderr.write(`unknown command: ${cmd}\n${USAGE}\n`);
      return 64;
    }
    if (args.length !== arity) {
      process.stderr.write(`${cmd} takes ${arity} argument(s)\n${USAGE}\n`);
      return 64;
    }
    const response = await adminRequest(adminSocket(config), cmd, args);
    if (response) {
      if (!response.ok) {
        process.stderr.write(`error: ${response.error}\n`);
        return 1;
      }
      print(cmd, response.result);
      return 0;
    }
    if (SERVER_COMMANDS[cmd] !== undefined) {
      if (cmd === 'status') {
        process.stdout.write('parley is not running\n');
        return 3;
      }
      process.stderr.write('error: parley is not running\n');
      return 3;
    }
    // No server running: account commands work on the database directly.
    const storage = openStorage(config);
    const auths = new Map<string, HostAuth>();
    try {
      const log = pino({ level: 'warn' }, pino.destination(2));
      for (const host of config.hosts) auths.set(host.toLowerCase(), await createHostAuth(config, host, storage, log));
      print(cmd, await runAccountCommand(new Accounts(auths), cmd, args as string[]));
    } finally {
      for (const a of auths.values()) await a.close();
      storage.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof AccountError || err instanceof StorageError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err instanceof ConfigError ? 78 : 1;
    }
    throw err;
  }
}

/** Through the running server (which wakes its senders after a retry), else directly on the database. */
async function outboxCommand(config: Config, args: string[]): Promise<number> {
  let command: OutboxCommand;
  try {
    command = parseOutboxArgs(args);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 64;
  }
  let result: OutboxCommandResult;
  const response = await adminRequest(adminSocket(config), 'outbox', args);
  if (response) {
    if (!response.ok) {
      process.stderr.write(`error: ${response.error}\n`);
      return 1;
    }
    result = response.result as OutboxCommandResult;
  } else {
    const storage = openStorage(config);
    try {
      result = await runOutboxCommand(storage.outbox, command, configuredOutboxKinds(config));
    } finally {
      storage.close();
    }
  }
  const out = (cells: Array<string | number>): boolean => process.stdout.write(cells.join('\t') + '\n');
  const time = (ms: number): string => new Date(ms).toISOString();
  switch (result.sub) {
    case 'counts':
      out(['KIND', 'PENDING', 'DELIVERED', 'DEAD']);
      for (const k of result.kinds) out([k.kind, k.pending, k.delivered, k.dead]);
      out(['total', result.total.pending, result.total.delivered, result.total.dead]);
      break;
    case 'list':
      out(['ID', 'KIND', 'STATE', 'ATTEMPTS', 'CREATED', 'NEXT ATTEMPT', 'LAST ERROR']);
      for (const j of result.jobs) {
        out([j.id, j.kind, j.state, j.attempts, time(j.createdAt), j.state === 'pending' ? time(j.nextAttemptAt) : '-', j.lastError?.replace(/\s+/g, ' ') ?? '-']);
      }
      break;
    case 'retry':
      out([`requeued ${result.requeued} dead job(s)`]);
      break;
  }
  return 0;
}

async function runAccountCommand(accounts: Accounts, cmd: string, a: string[]): Promise<unknown> {
  const [x = '', y = '', z = ''] = a;
  switch (cmd) {
    case 'register': return { jid: await accounts.register(x, y, z) };
    case 'unregister': return { jid: await accounts.unregister(x, y) };
    case 'passwd': return { jid: await accounts.setPassword(x, y, z) };
    case 'fast-revoke': return accounts.revokeFastTokens(x, y);
    default: return accounts.list(x);
  }
}

function print(cmd: string, result: unknown): void {
  const r = result as Record<string, unknown>;
  switch (cmd) {
    case 'register': process.stdout.write(`registered ${String(r.jid)}\n`); break;
    case 'unregister': process.stdout.write(`unregistered ${String(r.jid)}\n`); break;
    case 'passwd': process.stdout.write(`password changed for ${String(r.jid)}\n`); break;
    case 'fast-revoke': process.stdout.write(`revoked FAST tokens of ${String(r.revoked)} client(s) for ${String(r.jid)}\n`); break;
    case 'users': for (const u of result as string[]) process.stdout.write(`${u}\n`); break;
    case 'kick': process.stdout.write(`kicked ${String(r.kicked)} session(s)\n`); break;
    case 'connected':
      for (const s of result as Array<Record<string, unknown>>) {
        process.stdout.write(`${String(s.jid)}\t${String(s.transport)}${s.secure ? '+tls' : ''}\t${String(s.ip)}\t${String(s.since)}\n`);
      }
      break;
    default: process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  }
}
