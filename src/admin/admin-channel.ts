// The local admin channel: a Unix socket in the data directory (owner-only) speaking one JSON request per line.
// The CLI uses it for commands that need the running server.
import { createServer, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { StreamError } from '../core/errors.ts';
import { Jid } from '../xmpp/jid.ts';
import type { ParleyServer } from '../server.ts';
import { AccountError } from '../accounts.ts';

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
        return {
          pid: process.pid,
          uptime: Math.round((Date.now() - s.startedAt) / 1000),
          hosts: [...s.hosts.keys()],
          sessions: s.sessions.count,
          memory: process.memoryUsage().rss,
          listeners: s.addresses,
        };
      case 'connected':
        return [...s.sessions.sessions()].map((x) => ({
          jid: x.jid?.toString(), transport: x.transport, secure: x.secure, ip: x.remoteAddress, since: new Date(x.startedAt).toISOString(),
        }));
      case 'kick': {
        const jid = Jid.parse(arg(0));
        const targets = jid.isBare ? s.sessions.resources(jid) : [s.sessions.get(jid)].filter((x) => x !== undefined);
        for (const t of targets) t.close(new StreamError('policy-violation', 'Kicked by an administrator'));
        return { kicked: targets.length };
      }
      case 'register':
        return { jid: await s.accounts.register(arg(0), arg(1), arg(2)) };
      case 'passwd':
        return { jid: await s.accounts.setPassword(arg(0), arg(1), arg(2)) };
      case 'unregister': {
        const jid = Jid.parse(await s.accounts.unregister(arg(0), arg(1)));
        for (const t of s.sessions.resources(jid)) t.close(new StreamError('not-authorized', 'Account removed'));
        const host = s.hosts.get(jid.domain);
        if (host) await host.bus.run('account/removed', { host, user: jid });
        return { jid: jid.toString() };
      }
      case 'users':
        return await s.accounts.list(arg(0));
      default:
        throw new Error(`unknown command ${cmd}`);
    }
  }
}
