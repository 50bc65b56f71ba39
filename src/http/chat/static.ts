// Static files from one directory: paths resolved inside it only, content types by extension, and validators
// (ETag, Last-Modified) so browsers revalidate cheaply.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import type { HttpRequest } from '../routes.ts';
import { HttpError } from '../respond.ts';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.html': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.eot': 'application/vnd.ms-fontobject',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

export function contentType(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * Resolves a request path (already split off its prefix, still percent-encoded) to a file inside `root`, or
 * undefined. Dot segments, encoded slashes and backslashes, NUL and hidden files are refused rather than
 * normalised, and the real path (symbolic links followed) must stay inside the root.
 */
export async function resolveInside(root: string, rest: string): Promise<string | undefined> {
  let decoded: string[];
  try {
    decoded = rest.split('/').map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
  if (decoded.length === 0 || decoded.some((s) => s === '' || s.startsWith('.') || /[\\/\0]/.test(s))) return undefined;
  const base = resolve(root);
  const candidate = resolve(base, ...decoded);
  if (!candidate.startsWith(base + sep)) return undefined;
  try {
    const real = await realpath(candidate);
    const realBase = await realpath(base);
    return real.startsWith(realBase + sep) ? real : undefined;
  } catch {
    return undefined;
  }
}

/** Sends a file with its type, validators and `cacheControl`; 304 when the browser's copy is current. */
export async function sendFile(r: HttpRequest, path: string, cacheControl: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new HttpError(404, 'Not found');
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
  const lastModified = new Date(Math.floor(st.mtimeMs / 1000) * 1000).toUTCString();
  const headers: Record<string, string | number> = {
    'Content-Type': contentType(path),
    'Cache-Control': cacheControl,
    ETag: etag,
    'Last-Modified': lastModified,
    'X-Content-Type-Options': 'nosniff',
  };
  const inm = r.req.headers['if-none-match'];
  const ims = r.req.headers['if-modified-since'];
  const fresh = inm !== undefined
    ? inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')
    : ims !== undefined && Date.parse(ims) >= Date.parse(lastModified);
  if (fresh) {
    r.res.writeHead(304, headers);
    r.res.end();
    return;
  }
  r.res.writeHead(200, { ...headers, 'Content-Length': st.size });
  if (r.req.method === 'HEAD') {
    r.res.end();
    return;
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(path);
    stream.on('error', () => {
      r.res.destroy();
      done();
    });
    r.res.on('close', () => {
      stream.destroy();
      done();
    });
    stream.pipe(r.res);
  });
}
