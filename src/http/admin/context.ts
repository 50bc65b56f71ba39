// What a web admin page handler gets: the server, the logged-in admin, the hosts they administer, the request.
import type { ParleyServer } from '../../server.ts';
import type { HttpRequest } from '../routes.ts';
import { HttpError } from '../respond.ts';
import type { AdminHttpOptions } from './options.ts';
import type { AdminSession } from './sessions.ts';
import type { Html } from './html.ts';
import type { NavKey } from './layout.ts';

export type AdminContext = {
  readonly server: ParleyServer;
  readonly session: AdminSession;
  /** Hosts on which the 'admin' access rule allows this admin, lower case, in configuration order. */
  readonly hosts: readonly string[];
  /** Whether the admin administers every host (server-wide actions such as retrying every outbox kind). */
  readonly allHosts: boolean;
  readonly r: HttpRequest;
  readonly options: AdminHttpOptions;
  /** Path parameters of the matched route, decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** The POSTed form (its CSRF token already checked); empty for GET. */
  readonly form: URLSearchParams;
};

export type PageResult =
  | { page: { title: string; body: Html; nav?: NavKey }; status?: number }
  | { redirect: string };

/** A host named in the URL, which the admin must administer. */
export function adminHost(ctx: AdminContext, name: string | undefined): string {
  const host = (name ?? '').toLowerCase();
  if (!ctx.hosts.includes(host)) throw new HttpError(404, 'No such host');
  return host;
}

/** The account's localpart from the URL, prepared as the stores keep it; 404 when it cannot be one. */
export function adminUser(ctx: AdminContext): string {
  try {
    return ctx.server.accounts.username(ctx.params.user ?? '');
  } catch {
    throw new HttpError(404, 'No such user');
  }
}

/** Sets the notice shown on the next page. */
export function flash(ctx: AdminContext, ok: boolean, text: string): void {
  ctx.session.flash = { ok, text };
}

/** A path segment for a URL we build (user names may hold any character). */
export const seg = encodeURIComponent;
