// XEP-0363 §6: the HTTP side of upload slots. PUT stores a slot's file once; GET and HEAD serve it to anyone
// with the URL; OPTIONS answers browsers' CORS preflight. The URL is /upload/<host>/<slot id>/<token>/<filename>.
import { open, type FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { HttpHandler, HttpRequest } from '../../http/routes.ts';
import { HttpError } from '../../http/respond.ts';
import type { UploadSlot, UploadStore } from '../../storage/types.ts';
import { IncompleteBody, SLOT_ID_PATTERN, type UploadFiles } from './files.ts';
import { mediaEssence } from './request.ts';
import { tokenMatches } from './token.ts';

export type UploadHttpDeps = {
  host: string;
  store: UploadStore;
  files: UploadFiles;
  key: Buffer;
  /** ms a file is served after its upload; 0: for as long as it is kept. */
  expireAfterMs: number;
  /** Slots whose PUT is running: a second PUT meanwhile is a conflict, and the sweeper leaves them alone. */
  inProgress: Set<string>;
  log: Logger;
  now?: () => number;
};

const CORS = { 'Access-Control-Allow-Origin': '*' } as const;

/** Types a browser may show in place; with nosniff and the sandbox CSP none of them can run script. */
const INLINE_TYPES = new Set([
  'image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/heic', 'image/heif', 'image/bmp',
  'audio/mpeg', 'audio/mp4', 'audio/aac', 'audio/ogg', 'audio/opus', 'audio/webm', 'audio/wav', 'audio/flac', 'audio/x-m4a',
  'video/mp4', 'video/webm', 'video/ogg', 'video/quicktime',
  'text/plain',
]);

function fail(status: number, message: string, extra: Record<string, string> = {}): HttpError {
  return new HttpError(status, message, { ...CORS, ...extra });
}

/** A refused PUT: the connection closes instead of reading a body nobody wants. */
function refuse(status: number, message: string): HttpError {
  return fail(status, message, { Connection: 'close' });
}

type Target = { id: string; token: string; filename: string };

/** The three path segments after the route, each percent-decoded once; undefined for anything else. */
export function parseTarget(rest: string): Target | undefined {
  const parts = rest.split('/');
  if (parts.length !== 3) return undefined;
  let decoded: string[];
  try {
    decoded = parts.map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
  const [id = '', token = '', filename = ''] = decoded;
  if (!SLOT_ID_PATTERN.test(id) || filename === '') return undefined;
  return { id, token, filename };
}

/** RFC 6266 Content-Disposition with an ASCII fallback and the exact name in RFC 8187 encoding. */
export function contentDisposition(kind: 'inline' | 'attachment', filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const exact = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${exact}`;
}

/** One `bytes=` range of a file of `size` bytes (RFC 9110 §14): the bounds, 'unsatisfiable', or undefined to send it all. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined || size === 0) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export function uploadHandler(d: UploadHttpDeps): HttpHandler {
  const now = d.now ?? Date.now;

  async function slotFor(target: Target | undefined): Promise<UploadSlot | undefined> {
    if (!target) return undefined;
    const slot = await d.store.get(d.host, target.id);
    return slot && slot.filename === target.filename ? slot : undefined;
  }

  async function put(r: HttpRequest): Promise<void> {
    const target = parseTarget(r.rest);
    const slot = await slotFor(target);
    if (!slot || !target) throw refuse(404, 'No such upload slot');
    if (!tokenMatches(d.key, slot, target.token)) throw refuse(403, 'Invalid upload URL');
    if (slot.uploadedAt !== null || d.inProgress.has(slot.id)) throw refuse(409, 'This slot has been used');
    if (now() >= slot.expiresAt) throw refuse(403, 'This upload slot has expired');
    const h = r.req.headers;
    const length = h['content-length'];
    if (length === undefined || h['transfer-encoding'] !== undefined) throw refuse(411, 'Content-Length required');
    if (!/^[0-9]+$/.test(length)) throw refuse(400, 'Invalid Content-Length');
    // XEP-0363 §6: the body must be exactly the size the slot was granted for.
    if (Number(length) > slot.size) throw refuse(413, `The slot is for ${slot.size} bytes`);
    if (Number(length) !== slot.size) throw refuse(400, `Content-Length must be ${slot.size}, the size of the slot`);
    if (slot.contentType !== null) {
      const given = h['content-type'];
      if (given === undefined || mediaEssence(given) !== mediaEssence(slot.contentType)) {
        throw refuse(400, `Content-Type must be ${slot.contentType}, as in the slot request`);
      }
    }
    d.inProgress.add(slot.id);
    try {
      await d.files.store(d.host, slot.id, slot.filename, slot.size, r.req);
      if (!(await d.store.markUploaded(d.host, slot.id, now()))) {
        // The slot went away meanwhile (its account was removed).
        await d.files.remove(d.host, slot.id);
        throw refuse(404, 'No such upload slot');
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (err instanceof IncompleteBody || r.req.destroyed || (err as NodeJS.ErrnoException).code === 'ECONNRESET') {
        throw refuse(400, 'The upload was incomplete');
      }
      throw err;
    } finally {
      d.inProgress.delete(slot.id);
    }
    r.res.writeHead(201, { ...CORS, 'Content-Length': '0' });
    r.res.end();
  }

  async function get(r: HttpRequest, head: boolean): Promise<void> {
    const target = parseTarget(r.rest);
    const slot = await slotFor(target);
    // A wrong token, a pending slot and an expired file all look like nothing there.
    if (!slot || !target || slot.uploadedAt === null || !tokenMatches(d.key, slot, target.token)) throw fail(404, 'Not found');
    const t = now();
    if (d.expireAfterMs > 0 && slot.uploadedAt + d.expireAfterMs <= t) throw fail(404, 'Not found');
    let fh: FileHandle;
    try {
      fh = await open(d.files.filePath(d.host, slot.id, slot.filename), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw fail(404, 'Not found');
      throw err;
    }
    let size: number;
    try {
      size = (await fh.stat()).size;
    } catch (err) {
      await fh.close();
      throw err;
    }
    const type = slot.contentType ?? 'application/octet-stream';
    const maxAge = d.expireAfterMs > 0 ? Math.max(0, Math.floor((slot.uploadedAt + d.expireAfterMs - t) / 1000)) : 31_536_000;
    const headers: Record<string, string | number> = {
      ...CORS,
      'Access-Control-Expose-Headers': 'Content-Disposition, Content-Length, Content-Range',
      'Content-Type': type,
      'Content-Disposition': contentDisposition(INLINE_TYPES.has(mediaEssence(type)) ? 'inline' : 'attachment', slot.filename),
      'X-Content-Type-Options': 'nosniff',
      // Even a file a browser renders cannot run script or load anything.
      'Content-Security-Policy': "default-src 'none'; sandbox",
      'Cross-Origin-Resource-Policy': 'cross-origin',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': `public, max-age=${maxAge}, immutable`,
      'Last-Modified': new Date(slot.uploadedAt).toUTCString(),
      'Accept-Ranges': 'bytes',
    };
    const range = parseRange(r.req.headers.range, size);
    if (range === 'unsatisfiable') {
      await fh.close();
      throw fail(416, 'Range not satisfiable', { 'Content-Range': `bytes */${size}` });
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    headers['Content-Length'] = size === 0 ? 0 : end - start + 1;
    r.res.writeHead(range ? 206 : 200, headers);
    if (head || size === 0) {
      await fh.close();
      r.res.end();
      return;
    }
    await send(fh, r.res, start, end);
  }

  async function send(fh: FileHandle, res: ServerResponse, start: number, end: number): Promise<void> {
    try {
      await pipeline(fh.createReadStream({ start, end, autoClose: false }), res);
    } catch (err) {
      // Mostly a client that went away; the response is cut either way.
      d.log.debug({ err: (err as Error).message }, 'upload download interrupted');
      res.destroy();
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  function preflight(r: HttpRequest): void {
    r.res.writeHead(204, {
      ...CORS,
      'Access-Control-Allow-Methods': 'GET, HEAD, PUT, OPTIONS',
      'Access-Control-Allow-Headers': 'Content-Type',
      'Access-Control-Max-Age': '86400',
      'Content-Length': '0',
    });
    r.res.end();
  }

  return async (r) => {
    switch ((r.req.method ?? 'GET').toUpperCase()) {
      case 'PUT': return put(r);
      case 'GET': return get(r, false);
      case 'HEAD': return get(r, true);
      case 'OPTIONS': return preflight(r);
      default: throw fail(405, 'Method not allowed', { Allow: 'GET, HEAD, PUT, OPTIONS' });
    }
  };
}
