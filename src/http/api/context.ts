// What a REST API command gets: the server, the caller, its arguments, and helpers that resolve hosts and
// accounts while enforcing the caller's host scope.
import type { Logger } from 'pino';
import type { ParleyServer } from '../../server.ts';
import type { Host } from '../../core/host.ts';
import { StanzaError } from '../../core/errors.ts';
import { Jid } from '../../xmpp/jid.ts';
import type { Args } from './args.ts';
import type { ApiCaller } from './auth.ts';
import { ApiError, badArgument } from './errors.ts';

export class CommandContext {
  readonly server: ParleyServer;
  readonly caller: ApiCaller;
  readonly args: Args;
  readonly log: Logger;

  constructor(server: ParleyServer, caller: ApiCaller, args: Args, log: Logger) {
    this.server = server;
    this.caller = caller;
    this.args = args;
    this.log = log;
  }

  mayActOn(hostName: string): boolean {
    return this.caller.hosts === undefined || this.caller.hosts.has(hostName.toLowerCase());
  }

  /** Hosts the caller may act on (for server-wide commands such as connected_users and stats). */
  visibleHosts(): Host[] {
    return [...this.server.hosts].filter(([key]) => this.mayActOn(key)).map(([, h]) => h);
  }

  /** The served host named by an argument, if the caller may act on it. */
  host(arg: string): Host {
    const name = this.args.string(arg);
    const host = this.server.hosts.get(name.toLowerCase());
    if (!host) throw new ApiError('HOST_UNKNOWN', `host ${name} is not served`, { argument: arg });
    this.checkScope(name);
    return host;
  }

  checkScope(hostName: string): void {
    if (!this.mayActOn(hostName)) throw new ApiError('FORBIDDEN', `${this.caller.who} may not act on ${hostName}`);
  }

  /** An account named by a user and a host argument; with `exists`, 404 unless the account exists. */
  async account(userArg: string, hostArg: string, opts: { exists?: boolean } = {}): Promise<{ host: Host; jid: Jid }> {
    const host = this.host(hostArg);
    const user = this.args.string(userArg);
    let jid: Jid;
    try {
      jid = Jid.of(user, host.name);
    } catch (err) {
      if (err instanceof StanzaError) throw badArgument(userArg, `not a valid username (${err.text ?? err.condition})`);
      throw err;
    }
    if (opts.exists && !(await host.auth.userExists(jid.local))) throw new ApiError('USER_NOT_FOUND', `no user ${jid.toString()}`, { argument: userArg });
    return { host, jid };
  }
}
