// ejabberd's external authentication protocol ("extauth"), spoken byte for byte to a pool of operator programs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { ExternalAuthSchema } from '../config/auth-schema.ts';
import { ConfigError } from '../core/errors.ts';
import { prepareLocalpart } from '../xmpp/precis.ts';
import { AccountError } from './account-error.ts';
import type { AuthBackend, AuthBackendContext } from './types.ts';

export type ExternalAuthOptions = z.infer<typeof ExternalAuthSchema>;

export type ExtauthRequest =
  | { op: 'auth' | 'setpass' | 'tryregister' | 'removeuser3'; user: string; server: string; password: string }
  | { op: 'isuser' | 'removeuser'; user: string; server: string };

/** Erlang's {packet, 2} framing: a request body longer than this cannot be sent. */
const MAX_FRAME = 0xffff;
/** Restart delays after consecutive deaths: the first restart is immediate, then 0.5 s doubling up to 30 s. */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** How long close() waits after SIGTERM before SIGKILL. */
const CLOSE_GRACE_MS = 2000;
/**
 * A program's first answer may take this long even with a shorter timeout: interpreters and frameworks (a Django
 * script loading its settings) can be slow to start. ejabberd allows 60 s; the request meanwhile waits, not fails.
 */
const FIRST_ANSWER_MIN_MS = 30_000;
const STDERR_LINE_MAX = 512;

/**
 * One request as ejabberd sends it: the fields joined with ':' (ejabberd's extauth does exactly this, without
 * escaping), behind a 2-byte big-endian length. Localparts and domains cannot contain ':', so a program that splits
 * on the first three colons gets the password back whole, colons included.
 */
export function encodeExtauthRequest(req: ExtauthRequest): Buffer {
  const fields = [req.op, req.user, req.server];
  if ('password' in req) fields.push(req.password);
  const body = Buffer.from(fields.join(':'), 'utf8');
  if (body.length > MAX_FRAME) throw new RangeError(`extauth request of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const frame = Buffer.allocUnsafe(2 + body.length);
  frame.writeUInt16BE(body.length, 0);
  body.copy(frame, 2);
  return frame;
}

/**
 * Successful password checks, remembered briefly so a burst of logins does not reach the backend each time.
 * Passwords are never kept: only a keyed hash, with a key that lives and dies with the process.
 */
export class AuthResultCache {
  readonly #ttlMs: number;
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, { digest: Buffer; expires: number }>();
  #sweepAt = 1024;

  constructor(seconds: number) {
    this.#ttlMs = seconds * 1000;
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  #digest(user: string, password: string): Buffer {
    return createHmac('sha256', this.#key).update(user).update('\0').update(password).digest();
  }

  has(user: string, password: string): boolean {
    if (!this.enabled) return false;
    const e = this.#entries.get(user);
    if (!e) return false;
    if (e.expires <= performance.now()) {
      this.#entries.delete(user);
      return false;
    }
    return timingSafeEqual(e.digest, this.#digest(user, password));
  }

  add(user: string, password: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    this.#entries.set(user, { digest: this.#digest(user, password), expires: now + this.#ttlMs });
    // Expired entries are dropped in amortised sweeps, so the map stays near the number of recent logins.
    if (this.#entries.size >= this.#sweepAt) {
      for (const [u, e] of this.#entries) if (e.expires <= now) this.#entries.delete(u);
      this.#sweepAt = Math.max(1024, this.#entries.size * 2);
    }
  }

  forget(user: string): void {
    this.#entries.delete(user);
  }

  clear(): void {
    this.#entries.clear();
  }
}

type Pending = {
  frame: Buffer;
  /** What the logs may say about the request: the operation and user, never the password. */
  label: string;
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
};

type Worker = {
  index: number;
  child: ChildProcess | undefined;
  current: Pending | undefined;
  buf: Buffer;
  stderr: string;
  /** Deaths since the last good answer; drives the restart back-off. */
  deaths: number;
  /** Whether this process has answered yet (its first answer gets the start-up allowance). */
  answered: boolean;
  restartTimer: NodeJS.Timeout | undefined;
};

export type ExtauthPoolOptions = { program: string; args: readonly string[]; size: number; timeoutMs: number; log: Logger };

/**
 * N long-running programs, each answering one request at a time in order. A request waits at most `timeoutMs` for
 * a free program and at most `timeoutMs` for its answer (a new program's first answer: at least 30 s); a program that does not answer in time is killed and
 * replaced, and one that dies is restarted with back-off. The request it held fails with AccountError('BACKEND').
 */
export class ExtauthPool {
  readonly #opts: ExtauthPoolOptions;
  readonly #workers: Worker[] = [];
  readonly #queue: Pending[] = [];
  #closed = false;

  constructor(opts: ExtauthPoolOptions) {
    this.#opts = opts;
    for (let i = 0; i < opts.size; i++) {
      const w: Worker = { index: i, child: undefined, current: undefined, buf: Buffer.alloc(0), stderr: '', deaths: 0, answered: false, restartTimer: undefined };
      this.#workers.push(w);
      this.#start(w);
    }
  }

  /** Sends one request; resolves with the program's answer (true for 1), rejects with AccountError('BACKEND'). */
  call(req: ExtauthRequest): Promise<boolean> {
    if (this.#closed) return Promise.reject(new AccountError('BACKEND', 'the external authentication backend is closed'));
    const frame = encodeExtauthRequest(req);
    return new Promise<boolean>((resolve, reject) => {
      const p: Pending = { frame, label: `${req.op} for ${req.user}@${req.server}`, resolve, reject, timer: undefined };
      const idle = this.#idle();
      if (idle) return this.#send(idle, p);
      p.timer = setTimeout(() => {
        const i = this.#queue.indexOf(p);
        if (i >= 0) this.#queue.splice(i, 1);
        this.#fail(p, `no extauth program became free within ${this.#opts.timeoutMs} ms`);
      }, this.#opts.timeoutMs);
      this.#queue.push(p);
    });
  }

  /** Process ids of the running programs (for diagnostics and tests). */
  pids(): number[] {
    return this.#workers.flatMap((w) => (w.child?.pid === undefined ? [] : [w.child.pid]));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#queue.splice(0)) this.#fail(p, 'the external authentication backend is closing');
    const exits: Promise<void>[] = [];
    for (const w of this.#workers) {
      clearTimeout(w.restartTimer);
      const child = w.child;
      w.child = undefined;
      if (w.current) this.#fail(w.current, 'the external authentication backend is closing');
      w.current = undefined;
      if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      exits.push(new Promise<void>((resolve) => {
        const force = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        // ejabberd closes the port, so scripts see end of input; SIGTERM covers those that do not read it.
        child.stdin?.end();
        child.kill('SIGTERM');
      }));
    }
    await Promise.all(exits);
  }

  #idle(): Worker | undefined {
    return this.#workers.find((w) => w.child !== undefined && w.current === undefined);
  }

  #start(w: Worker): void {
    const { program, args, log } = this.#opts;
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    w.child = child;
    w.buf = Buffer.alloc(0);
    w.stderr = '';
    w.answered = false;
    child.stdout?.on('data', (chunk: Buffer) => this.#onData(w, child, chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => this.#onStderr(w, child, text));
    // A write to a program that just died fails with EPIPE; its exit is handled below.
    child.stdin?.on('error', () => undefined);
    child.on('error', (err) => this.#retire(w, child, `could not run ${program}: ${err.message}`));
    child.on('exit', (code, signal) => this.#retire(w, child, signal ? `killed by ${signal}` : `exited with status ${code}`));
    if (child.pid !== undefined) log.debug({ pid: child.pid, worker: w.index }, 'extauth program started');
  }

  #send(w: Worker, p: Pending): void {
    const child = w.child as ChildProcess;
    clearTimeout(p.timer);
    w.current = p;
    const ms = w.answered ? this.#opts.timeoutMs : Math.max(this.#opts.timeoutMs, FIRST_ANSWER_MIN_MS);
    p.timer = setTimeout(() => this.#retire(w, child, `no answer to ${p.label} within ${ms} ms`), ms);
    child.stdin?.write(p.frame);
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const w = this.#idle();
      if (!w) return;
      this.#send(w, this.#queue.shift() as Pending);
    }
  }

  #onData(w: Worker, child: ChildProcess, chunk: Buffer): void {
    if (w.child !== child) return;
    w.buf = w.buf.length === 0 ? chunk : Buffer.concat([w.buf, chunk]);
    while (w.buf.length >= 2) {
      // Every answer is exactly two bytes; anything else (often a stray print to stdout) breaks the framing for good.
      const len = w.buf.readUInt16BE(0);
      if (len !== 2) return this.#retire(w, child, `malformed answer (length ${len}, expected 2)`);
      if (w.buf.length < 4) break;
      const result = w.buf.readUInt16BE(2);
      w.buf = w.buf.subarray(4);
      const p = w.current;
      if (!p) return this.#retire(w, child, 'answer with no request pending');
      if (result > 1) return this.#retire(w, child, `malformed answer (result ${result}, expected 0 or 1)`);
      clearTimeout(p.timer);
      w.current = undefined;
      w.deaths = 0;
      w.answered = true;
      p.resolve(result === 1);
    }
    this.#pump();
  }

  #onStderr(w: Worker, child: ChildProcess, text: string): void {
    // The program's diagnostics go to Parley's log, line by line and bounded.
    w.stderr += text;
    let nl: number;
    while ((nl = w.stderr.indexOf('\n')) >= 0) {
      const line = w.stderr.slice(0, nl).trimEnd();
      w.stderr = w.stderr.slice(nl + 1);
      if (line) this.#opts.log.warn({ pid: child.pid, worker: w.index, stderr: line.slice(0, STDERR_LINE_MAX) }, 'extauth program wrote to stderr');
    }
    if (w.stderr.length > STDERR_LINE_MAX) w.stderr = w.stderr.slice(-STDERR_LINE_MAX);
  }

  /** Takes a program out of service (dead, hung or speaking nonsense), fails its request and schedules a new one. */
  #retire(w: Worker, child: ChildProcess, why: string): void {
    if (w.child !== child) return;
    w.child = undefined;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const p = w.current;
    w.current = undefined;
    if (p) this.#fail(p, `extauth program failed during ${p.label}: ${why}`);
    if (this.#closed) return;
    w.deaths++;
    const delay = w.deaths <= 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (w.deaths - 2));
    this.#opts.log.error({ pid: child.pid, worker: w.index, restartInMs: delay }, `extauth program taken out of service: ${why}`);
    w.restartTimer = setTimeout(() => {
      w.restartTimer = undefined;
      if (this.#closed) return;
      this.#start(w);
      this.#pump();
    }, delay);
    w.restartTimer.unref();
  }

  #fail(p: Pending, message: string): void {
    clearTimeout(p.timer);
    p.reject(new AccountError('BACKEND', message));
  }
}

function assertRunnable(program: string): void {
  // A bare name is looked up on PATH at spawn time; a path can be checked now, so a typo stops start-up.
  if (!program.includes('/')) return;
  try {
    accessSync(program, constants.X_OK);
  } catch {
    throw new ConfigError([`auth.external.program: ${program} is not an executable file`]);
  }
}

function localpart(user: string): string | undefined {
  try {
    return prepareLocalpart(user);
  } catch {
    return undefined;
  }
}

export function createExternalBackend(opts: ExternalAuthOptions, ctx: AuthBackendContext): AuthBackend {
  assertRunnable(opts.program);
  const server = ctx.host;
  const pool = new ExtauthPool({ program: opts.program, args: opts.args, size: opts.pool_size, timeoutMs: opts.timeout * 1000, log: ctx.log.child({ backend: 'external' }) });
  const cache = new AuthResultCache(opts.cache_seconds);

  // The user goes into a ':'-separated line, so it must be a valid localpart (which cannot hold ':') first.
  const account = (user: string): string => {
    const u = localpart(user);
    if (u === undefined) throw new AccountError('INVALID_USERNAME', `invalid username "${user}"`);
    return u;
  };
  const withPassword = async (op: 'setpass' | 'tryregister', user: string, password: string): Promise<boolean> => {
    if (password === '') throw new AccountError('INVALID_PASSWORD', 'empty password');
    try {
      return await pool.call({ op, user, server, password });
    } catch (err) {
      if (err instanceof RangeError) throw new AccountError('INVALID_PASSWORD', 'the password is too long for the extauth protocol');
      throw err;
    }
  };

  return {
    method: 'external',
    verification: 'plain',
    async checkPassword(user, password) {
      const u = localpart(user);
      if (u === undefined || password === '') return false;
      if (cache.has(u, password)) return u;
      let ok: boolean;
      try {
        ok = await pool.call({ op: 'auth', user: u, server, password });
      } catch (err) {
        // A password too long to frame cannot be anyone's password.
        if (err instanceof RangeError) return false;
        throw err;
      }
      if (!ok) return false;
      cache.add(u, password);
      return u;
    },
    async userExists(user) {
      const u = localpart(user);
      return u !== undefined && pool.call({ op: 'isuser', user: u, server });
    },
    async register(user, password) {
      const u = account(user);
      if (!(await withPassword('tryregister', u, password))) throw new AccountError('EXISTS', `user ${u}@${server} already exists or the extauth program refused to register it`);
    },
    async setPassword(user, password) {
      const u = account(user);
      cache.forget(u);
      try {
        if (!(await withPassword('setpass', u, password))) throw new AccountError('BACKEND', `the extauth program refused to set the password of ${u}@${server}`);
      } finally {
        // An auth answered while setpass was in flight may have cached the old password.
        cache.forget(u);
      }
    },
    async remove(user) {
      const u = account(user);
      cache.forget(u);
      try {
        if (!(await pool.call({ op: 'removeuser', user: u, server }))) throw new AccountError('BACKEND', `the extauth program refused to remove ${u}@${server}`);
      } finally {
        cache.forget(u);
      }
    },
    close: () => pool.close(),
  };
}
