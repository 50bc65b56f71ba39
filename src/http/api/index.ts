// The REST API, in the manner of ejabberd's mod_http_api <https://docs.ejabberd.im/developer/ejabberd-api/>:
// POST /api/<command> with the arguments as a JSON object; the answer is JSON, failures are
// {status: 'error', code, message} with an HTTP status. Callers authenticate with an API token or as an admin.
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { ParleyServer } from '../../server.ts';
import { normalizeIp } from '../../auth/access.ts';
import type { HttpRequest } from '../routes.ts';
import type { HttpService } from '../services.ts';
import { readBody, sendJson } from '../respond.ts';
import { Args } from './args.ts';
import { ApiAuthenticator } from './auth.ts';
import { API_COMMANDS } from './commands/index.ts';
import { CommandContext } from './context.ts';
import { ApiError, toApiError } from './errors.ts';
import type { ApiHttpOptions } from './options.ts';

export const API_PATH = '/api';

function isLoopback(ip: string): boolean {
  const a = normalizeIp(ip);
  return (isIP(a) === 4 && a.startsWith('127.')) || a === '::1';
}

export class RestApi {
  private readonly server: ParleyServer;
  private readonly options: ApiHttpOptions;
  private readonly auth: ApiAuthenticator;
  private readonly log: Logger;

  constructor(server: ParleyServer, options: ApiHttpOptions) {
    this.server = server;
    this.options = options;
    this.auth = new ApiAuthenticator(server, { basic: options.basic_auth });
    this.log = server.log.child({ component: 'api' });
  }

  readonly handle = async (r: HttpRequest): Promise<void> => {
    try {
      const result = await this.run(r);
      sendJson(r.res, 200, result);
    } catch (err) {
      const apiError = toApiError(err);
      if (!apiError) this.log.error({ err, command: r.rest }, 'REST API command failed');
      const e = apiError ?? new ApiError('INTERNAL', 'internal server error');
      if (r.res.headersSent) {
        r.res.destroy();
        return;
      }
      for (const [k, v] of Object.entries(e.headers)) r.res.setHeader(k, v);
      sendJson(r.res, e.status, e.toJSON());
      // An unread body is discarded, so the connection can serve the next request.
      r.req.resume();
    }
  };

  private async run(r: HttpRequest): Promise<unknown> {
    if (!r.secure && (this.options.plain_http === 'deny' || (this.options.plain_http === 'loopback' && !isLoopback(r.remoteAddress)))) {
      throw new ApiError('TLS_REQUIRED', 'use the HTTPS listener');
    }
    if (r.req.method !== 'POST') throw new ApiError('METHOD_NOT_ALLOWED', 'commands are run with POST', { headers: { Allow: 'POST' } });
    const caller = await this.auth.authenticate(r.req.headers.authorization, r.remoteAddress);
    const name = r.rest;
    const command = API_COMMANDS.get(name);
    if (!command) throw new ApiError('UNKNOWN_COMMAND', `unknown command ${JSON.stringify(name)}`);
    const body = await readBody(r.req, this.server.config.http.max_body);
    let parsed: unknown = {};
    if (body.length > 0) {
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new ApiError('BAD_JSON', 'the body is not valid JSON');
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApiError('BAD_REQUEST', 'the body must be a JSON object');
    // Arguments are not logged: they carry passwords and message bodies.
    this.log.info({ command: name, caller: caller.who, ip: r.remoteAddress }, 'REST API command');
    return command.run(new CommandContext(this.server, caller, new Args(parsed as Record<string, unknown>), this.log));
  }
}

/** Mounts /api/<command> unless http.api.enabled is false. */
export const mountRestApi: HttpService = (server, routes) => {
  const options = server.config.http.api;
  if (!options.enabled) return;
  const api = new RestApi(server, options);
  return routes.route('*', API_PATH, api.handle, { prefix: true });
};
