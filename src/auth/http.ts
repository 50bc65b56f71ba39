// The HTTP authentication backend: Parley POSTs JSON to the app's endpoint (request/response format in docs/auth.md).
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import type { HttpAuthSchema } from '../config/auth-schema.ts';
import { prepareLocalpart } from '../xmpp/precis.ts';
import { AccountError } from './account-error.ts';
import { AuthResultCache } from './external.ts';
import type { AuthBackend, AuthBackendContext } from './types.ts';

export type HttpAuthOptions = z.infer<typeof HttpAuthSchema>;
export type HttpAuthAction = 'auth' | 'isuser' | 'register' | 'setpass' | 'removeuser';

/** Pause before retry n (1-based): 100 ms doubling, at most 1 s, so a brief outage of the app is ridden out. */
const retryDelayMs = (n: number): number => Math.min(1000, 100 * 2 ** (n - 1));

/** The endpoint's verdict: a boolean from a 2xx JSON answer, or the status of a 4xx refusal. */
type Verdict = { result: boolean } | { refused: number };

function localpart(user: string): string | undefined {
  try {
    return prepareLocalpart(user);
  } catch {
    return undefined;
  }
}

/** What went wrong with one attempt, without anything from the request (which holds the password). */
function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'no answer in time';
    const code = (err.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? code : err.message;
  }
  return String(err);
}

export function createHttpBackend(opts: HttpAuthOptions, ctx: AuthBackendContext): AuthBackend {
  const server = ctx.host;
  const log = ctx.log.child({ backend: 'http' });
  const timeoutMs = opts.timeout * 1000;
  const cache = new AuthResultCache(opts.cache_seconds);
  const headers = new Headers({ 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'Parley' });
  for (const [name, value] of Object.entries(opts.headers)) headers.set(name, value);

  /**
   * One logical request. Network errors, timeouts and 5xx answers are retried (register excepted: the app may
   * have created the account before the answer was lost); after the last attempt they become AccountError('BACKEND').
   */
  async function call(action: HttpAuthAction, user: string, password?: string): Promise<Verdict> {
    const body = JSON.stringify(password === undefined ? { action, user, server } : { action, user, server, password });
    const attempts = action === 'register' ? 1 : opts.retries + 1;
    let problem = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        log.warn({ action, user, attempt, problem }, 'retrying the authentication endpoint');
        await sleep(retryDelayMs(attempt - 1));
      }
      try {
        const res = await fetch(opts.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
        if (res.status >= 500) {
          await res.body?.cancel();
          problem = `HTTP ${res.status}`;
          continue;
        }
        if (res.status >= 400) {
          await res.body?.cancel();
          return { refused: res.status };
        }
        if (res.status < 200 || res.status > 299) {
          // A redirect would turn the POST into a GET elsewhere; the configured URL is wrong.
          await res.body?.cancel();
          throw new AccountError('BACKEND', `authentication endpoint answered ${action} with HTTP ${res.status}`);
        }
        let data: unknown;
        try {
          data = await res.json();
        } catch (err) {
          if (err instanceof Error && err.name === 'TimeoutError') throw err;
          throw new AccountError('BACKEND', `authentication endpoint answered ${action} with a body that is not JSON`);
        }
        const result = (data as { result?: unknown } | null)?.result;
        if (typeof result !== 'boolean') throw new AccountError('BACKEND', `authentication endpoint answered ${action} without a boolean "result"`);
        return { result };
      } catch (err) {
        if (err instanceof AccountError) throw err;
        problem = describe(err);
      }
    }
    throw new AccountError('BACKEND', `authentication endpoint failed ${action} for ${user}@${server}: ${problem}` + (attempts > 1 ? ` (${attempts} attempts)` : ''));
  }

  const account = (user: string): string => {
    const u = localpart(user);
    if (u === undefined) throw new AccountError('INVALID_USERNAME', `invalid username "${user}"`);
    return u;
  };
  const checked = (password: string): string => {
    if (password === '') throw new AccountError('INVALID_PASSWORD', 'empty password');
    return password;
  };
  const refused = (action: HttpAuthAction, user: string, v: { refused: number }): AccountError =>
    new AccountError('BACKEND', `authentication endpoint refused ${action} for ${user}@${server} (HTTP ${v.refused})`);

  const backend: AuthBackend = {
    method: 'http',
    verification: 'plain',
    async checkPassword(user, password) {
      const u = localpart(user);
      if (u === undefined || password === '') return false;
      if (cache.has(u, password)) return u;
      const v = await call('auth', u, password);
      // A 4xx answer is a plain refusal, like {"result": false}.
      if (!('result' in v) || !v.result) return false;
      cache.add(u, password);
      return u;
    },
    async userExists(user) {
      const u = localpart(user);
      if (u === undefined) return false;
      const v = await call('isuser', u);
      return 'result' in v && v.result;
    },
  };
  if (!opts.manage_accounts) return backend;

  backend.register = async (user, password) => {
    const u = account(user);
    const v = await call('register', u, checked(password));
    if (!('result' in v)) throw refused('register', u, v);
    if (!v.result) throw new AccountError('EXISTS', `user ${u}@${server} already exists`);
  };
  backend.setPassword = async (user, password) => {
    const u = account(user);
    cache.forget(u);
    try {
      const v = await call('setpass', u, checked(password));
      if (!('result' in v)) throw refused('setpass', u, v);
      if (!v.result) throw new AccountError('NOT_FOUND', `no user ${u}@${server}`);
    } finally {
      // An auth answered while setpass was in flight may have cached the old password.
      cache.forget(u);
    }
  };
  backend.remove = async (user) => {
    const u = account(user);
    cache.forget(u);
    try {
      const v = await call('removeuser', u);
      if (!('result' in v)) throw refused('removeuser', u, v);
      if (!v.result) throw new AccountError('NOT_FOUND', `no user ${u}@${server}`);
    } finally {
      cache.forget(u);
    }
  };
  return backend;
}
