// Where uploaded files live: <root>/<host>/<slot id>/<file name>. Paths are built only from a slot's stored,
// validated fields (never from URL text) and checked to stay below the root.
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sanitizeFilename } from './request.ts';

/** Slot ids: 18 random bytes in base64url (144 bits, impossible to guess). */
export const SLOT_ID_PATTERN = /^[A-Za-z0-9_-]{24}$/;

export function newSlotId(): string {
  return randomBytes(18).toString('base64url');
}

/** One path component that cannot climb or split: no separators, NUL, dot names or control characters. */
function safeComponent(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !/[/\\\u0000-\u001f\u007f]/.test(s);
}

export class IncompleteBody extends Error {
  constructor(got: number, want: number) {
    super(`received ${got} of ${want} bytes`);
    this.name = 'IncompleteBody';
  }
}

export class UploadFiles {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private inside(...parts: string[]): string {
    for (const p of parts) if (!safeComponent(p)) throw new Error(`unsafe path component ${JSON.stringify(p)}`);
    const path = resolve(this.root, ...parts);
    if (!path.startsWith(this.root + sep)) throw new Error('path escapes the upload directory');
    return path;
  }

  hostDir(host: string): string {
    return this.inside(host);
  }

  slotDir(host: string, id: string): string {
    if (!SLOT_ID_PATTERN.test(id)) throw new Error('not a slot id');
    return this.inside(host, id);
  }

  filePath(host: string, id: string, filename: string): string {
    if (!SLOT_ID_PATTERN.test(id) || sanitizeFilename(filename) !== filename) throw new Error('not a stored slot');
    return this.inside(host, id, filename);
  }

  async ensureHostDir(host: string): Promise<void> {
    await mkdir(this.hostDir(host), { recursive: true, mode: 0o700 });
  }

  /**
   * Streams a body into a temporary file in the slot's directory, flushed to disk, then renames it into place
   * if it holds exactly `size` bytes. On any failure (IncompleteBody for a short body) nothing is left behind.
   */
  async store(host: string, id: string, filename: string, size: number, body: Readable): Promise<void> {
    const dir = this.slotDir(host, id);
    const final = this.filePath(host, id, filename);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A random dot name beside the final one; the final name only ever appears whole, by rename.
    const tmp = resolve(dir, `.${randomBytes(9).toString('base64url')}.part`);
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true });
    try {
      await pipeline(body, out);
      if (out.bytesWritten !== size) throw new IncompleteBody(out.bytesWritten, size);
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Removes a slot's directory and whatever it holds. */
  async remove(host: string, id: string): Promise<void> {
    await rm(this.slotDir(host, id), { recursive: true, force: true });
  }
}
