// HTTP plumbing of the web admin: cookies, the security headers of every answer, form bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { normalizeIp } from '../../auth/access.ts';
import { HttpError, readBody } from '../respond.ts';
import type { Html } from './html.ts';

export const SESSION_COOKIE = 'parley_admin';
/** Double-submit token of the login form, which has no session yet to hold one. */
export const LOGIN_COOKIE = 'parley_admin_login';
const COOKIE_PATH = '/admin';
const MAX_FORM = 64 * 1024;

/** No script at all, styles only from our stylesheet, never framed. */
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

export function securityHeaders(res: ServerResponse): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
}

export function parseCookies(req: IncomingMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    // The first of a repeated name wins, as browsers send the most specific path first.
    if (name && !out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/** Adds a Set-Cookie header; `value` undefined expires the cookie. Values here are base64url, so need no quoting. */
export function setCookie(res: ServerResponse, name: string, value: string | undefined, secure: boolean): void {
  const attrs = [`${name}=${value ?? ''}`, `Path=${COOKIE_PATH}`, 'HttpOnly', 'SameSite=Strict'];
  if (secure) attrs.push('Secure');
  if (value === undefined) attrs.push('Max-Age=0');
  const prev = res.getHeader('Set-Cookie');
  const list = Array.isArray(prev) ? prev : typeof prev === 'string' ? [prev] : [];
  res.setHeader('Set-Cookie', [...list, attrs.join('; ')]);
}

export function sendHtml(res: ServerResponse, status: number, page: Html): void {
  const body = Buffer.from(`<!doctype html>\n${page.value}`, 'utf8');
  securityHeaders(res);
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** 303 See Other: after a POST the browser GETs the page, so a reload never repeats the action. */
export function redirect(res: ServerResponse, location: string): void {
  securityHeaders(res);
  res.writeHead(303, { Location: location, 'Content-Length': 0, 'Cache-Control': 'no-store' });
  res.end();
}

/** Reads an application/x-www-form-urlencoded body (the only kind our forms send). */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new HttpError(415, 'Expected a form');
  return new URLSearchParams((await readBody(req, MAX_FORM)).toString('utf8'));
}

/**
 * A cross-site POST is refused by origin as well as by token: browsers send Origin on POST, and it must name
 * the host the request came to. Requests without Origin (non-browser clients) rely on the token alone.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === (req.headers.host ?? '').toLowerCase();
  } catch {
    return false;
  }
}

export function isLoopback(ip: string): boolean {
  const a = normalizeIp(ip);
  return (isIP(a) === 4 && a.startsWith('127.')) || a === '::1';
}
