// The local admin channel: a Unix socket in the data directory (owner-only) speaking one JSON request per line.
// The CLI uses it for commands that need the running server.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import type { ParleyServer } from '../server.ts';
import { AccountError } from '../accounts.ts';
import { OUTBOX_STATES, type OutboxJob, type OutboxState, type OutboxStore } from '../storage/types.ts';
import { activeOutboxKinds, wakeOutbox } from '../outbox/sender.ts';
import { configuredOutboxKinds, connectedSessions, kickSessions, knownOutboxKinds, removeUser, serverStatus } from './operations.ts';
import { parseApiTokenArgs, runApiTokenCommand } from '../http/api/tokens.ts';

export { configuredOutboxKinds };

export type AdminRequest = { cmd: string; args?: string[] };
export type AdminResponse = { ok: true; result: unknown } | { ok: false; error: string; code?: string };

const MAX_REQUEST = 64 * 1024;

export class AdminChannel {
  private readonly server: ParleyServer;
  readonly path: string;
  private listener: Server | undefined;

  constructor(server: ParleyServer, path: string) {
    this.server = server;
    this.path = path;
  }

  async start(): Promise<void> {
    // A socket file left by a crashed server would block the new one.
    if (existsSync(this.path)) unlinkSync(this.path);
    const listener = createServer((socket) => this.serve(socket));
    this.listener = listener;
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(this.path, () => {
        listener.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
  }

  async stop(): Promise<void> {
    const l = this.listener;
    if (!l) return;
    await new Promise<void>((resolve) => l.close(() => resolve()));
    if (existsSync(this.path)) unlinkSync(this.path);
  }

  private serve(socket: Socket): void {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > MAX_REQUEST) return socket.destroy();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        void this.answer(line).then((res) => socket.write(JSON.stringify(res) + '\n'));
      }
    });
  }

  private async answer(line: string): Promise<AdminResponse> {
    let req: AdminRequest;
    try {
      req = JSON.parse(line) as AdminRequest;
    } catch {
      return { ok: false, error: 'bad request' };
    }
    try {
      return { ok: true, result: await this.run(req.cmd, req.args ?? []) };
    } catch (err) {
      if (err instanceof AccountError) return { ok: false, error: err.message, code: err.code };
      this.server.log.error({ err, cmd: req.cmd }, 'admin command failed');
      return { ok: false, error: (err as Error).message };
    }
  }

  private async run(cmd: string, args: string[]): Promise<unknown> {
    const s = this.server;
    const arg = (i: number): string => {
      const v = args[i];
      if (v === undefined) throw new Error(`${cmd}: missing argument ${i + 1}`);
      return v;
    };
    switch (cmd) {
      case 'status':
        return serverStatus(s);
      case 'connected':
        return connectedSessions(s);
      case 'kick':
        return kickSessions(s, arg(0));
      case 'register':
        return { jid: await s.accounts.register(arg(0), arg(1), arg(2)) };
      case 'passwd':
        return { jid: await s.accounts.setPassword(arg(0), arg(1), arg(2)) };
      case 'fast-revoke':
        return await s.accounts.revokeFastTokens(arg(0), arg(1));
      case 'unregister':
        return await removeUser(s, arg(0), arg(1));
      case 'users':
        return await s.accounts.list(arg(0));
      case 'outbox':
        return await runOutboxCommand(s.storage.outbox, parseOutboxArgs(args), knownOutboxKinds(s), wakeOutbox);
      case 'api-token':
        return await runApiTokenCommand(s.storage.apiTokens, parseApiTokenArgs(args, s.config.hosts));
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }
}

// `parley outbox`: the background senders' queue, for operators. Shared by the admin channel and the CLI's
// direct database access when no server runs.

export type OutboxCommand =
  | { sub: 'counts' }
  | { sub: 'list'; kind?: string | undefined; state?: OutboxState | undefined }
  | { sub: 'retry'; kind?: string | undefined };

export type OutboxCommandResult =
  | { sub: 'counts'; kinds: Array<{ kind: string } & Record<OutboxState, number>>; total: Record<OutboxState, number> }
  | { sub: 'list'; jobs: Array<Omit<OutboxJob, 'payload'>> }
  | { sub: 'retry'; requeued: number };

const isState = (s: string | undefined): s is OutboxState => (OUTBOX_STATES as readonly string[]).includes(s ?? '');

/** `outbox`, `outbox list [KIND] [STATE]`, `outbox retry [KIND]`; throws a usage message otherwise. */
export function parseOutboxArgs(args: string[]): OutboxCommand {
  const [sub, a, b, ...rest] = args;
  if (sub === undefined) return { sub: 'counts' };
  if (sub === 'list' && rest.length === 0) {
    if (b !== undefined && !isState(b)) throw new Error(`outbox list: unknown state ${b} (${OUTBOX_STATES.join(', ')})`);
    // A lone state needs no kind: `outbox list dead`.
    if (b === undefined && isState(a)) return { sub: 'list', state: a };
    return { sub: 'list', kind: a, state: b as OutboxState | undefined };
  }
  if (sub === 'retry' && b === undefined) return { sub: 'retry', kind: a };
  throw new Error('usage: outbox | outbox list [KIND] [STATE] | outbox retry [KIND]');
}

/** A module id stands for its kinds on every host (`offline_webhook` -> `offline_webhook:example.com`). */
function expandKind(kind: string, known: string[]): string[] {
  if (kind.includes(':')) return [kind];
  return [...new Set([kind, ...known.filter((k) => k.startsWith(`${kind}:`))])];
}

export async function runOutboxCommand(
  store: OutboxStore, cmd: OutboxCommand, known: string[], wake?: (kind: string) => void,
): Promise<OutboxCommandResult> {
  const LIMIT = 100;
  switch (cmd.sub) {
    case 'counts': {
      const kinds: Array<{ kind: string } & Record<OutboxState, number>> = [];
      for (const kind of [...new Set(known)].sort()) {
        const c = await store.counts(kind);
        // Kinds derived from the configuration may have no queue at all (modules that send nothing in the background).
        if (c.pending + c.delivered + c.dead > 0 || activeOutboxKinds().includes(kind)) kinds.push({ kind, ...c });
      }
      return { sub: 'counts', kinds, total: await store.counts() };
    }
    case 'list': {
      const kinds = cmd.kind === undefined ? [undefined] : expandKind(cmd.kind, known);
      const jobs: OutboxJob[] = [];
      for (const kind of kinds) jobs.push(...await store.list({ ...(kind ? { kind } : {}), ...(cmd.state ? { state: cmd.state } : {}), limit: LIMIT }));
      // Payloads stay out: they hold message bodies.
      return { sub: 'list', jobs: jobs.sort((x, y) => y.id - x.id).slice(0, LIMIT).map(({ payload: _, ...j }) => j) };
    }
    case 'retry': {
      let requeued = 0;
      if (cmd.kind === undefined) {
        requeued = await store.retryDead();
        for (const k of known) wake?.(k);
      } else {
        for (const kind of expandKind(cmd.kind, known)) {
          requeued += await store.retryDead(kind);
          wake?.(kind);
        }
      }
      return { sub: 'retry', requeued };
    }
  }
}
