// The extauth backend against real programs: ejabberd's wire protocol, the pool, timeouts, restarts and the cache.
import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AccountError } from '../../src/auth/account-error.ts';
import { createExternalBackend, encodeExtauthRequest, type ExternalAuthOptions } from '../../src/auth/external.ts';
import type { AuthBackend, AuthBackendContext } from '../../src/auth/types.ts';
import { ConfigError } from '../../src/core/errors.ts';
import type { Storage } from '../../src/storage/types.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'extauth');
const NODE_PROGRAM = join(FIXTURES, 'extauth.mjs');
const PY_PROGRAM = join(FIXTURES, 'extauth.py');
const hasPython = spawnSync('python3', ['--version']).status === 0;

const USERS = { alice: 'wonderland', carol: 'pa:ss:word', bob: 'builder' };

let dir: string;
let usersFile: string;
let logFile: string;
let logLines: string[];
const backends: AuthBackend[] = [];

function ctx(): AuthBackendContext {
  const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
  return { host: 'localhost', storage: {} as Storage, log, scramIterations: 4096 };
}

function backend(opts: Partial<ExternalAuthOptions> = {}, python = false): AuthBackend {
  const b = createExternalBackend({
    program: python ? 'python3' : process.execPath,
    args: [python ? PY_PROGRAM : NODE_PROGRAM, usersFile, logFile],
    pool_size: 1,
    timeout: 5,
    cache_seconds: 0,
    ...opts,
  }, ctx());
  backends.push(b);
  return b;
}

/** The requests the programs saw, as "OP USER" with the pid: one line each. */
function seen(): Array<{ pid: string; op: string; user: string }> {
  return readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => {
    const [pid = '', op = '', user = ''] = l.split(' ');
    return { pid, op, user };
  });
}

/** Whether a process has ended, waiting a bounded while for the kernel to reap it. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 500; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

const backendError = (err: unknown): boolean => err instanceof AccountError && err.code === 'BACKEND';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'parley-extauth-'));
  usersFile = join(dir, 'users.json');
  logFile = join(dir, 'requests.log');
  writeFileSync(usersFile, JSON.stringify(USERS));
  writeFileSync(logFile, '');
  logLines = [];
});

afterEach(async () => {
  for (const b of backends.splice(0)) await b.close?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('extauth wire format', () => {
  const frame = (s: string): Buffer => Buffer.concat([Buffer.from([Buffer.byteLength(s) >> 8, Buffer.byteLength(s) & 0xff]), Buffer.from(s)]);

  it('encodes every request as ejabberd does: fields joined by ":" behind a 2-byte big-endian length', () => {
    assert.deepEqual(encodeExtauthRequest({ op: 'auth', user: 'alice', server: 'example.com', password: 'secret' }), frame('auth:alice:example.com:secret'));
    assert.deepEqual(encodeExtauthRequest({ op: 'isuser', user: 'alice', server: 'example.com' }), frame('isuser:alice:example.com'));
    assert.deepEqual(encodeExtauthRequest({ op: 'setpass', user: 'a', server: 'b', password: 'c' }), frame('setpass:a:b:c'));
    assert.deepEqual(encodeExtauthRequest({ op: 'tryregister', user: 'a', server: 'b', password: 'c' }), frame('tryregister:a:b:c'));
    assert.deepEqual(encodeExtauthRequest({ op: 'removeuser', user: 'a', server: 'b' }), frame('removeuser:a:b'));
    assert.deepEqual(encodeExtauthRequest({ op: 'removeuser3', user: 'a', server: 'b', password: 'c' }), frame('removeuser3:a:b:c'));
  });

  it('sends a password with colons as it is, and counts UTF-8 bytes in the length', () => {
    const f = encodeExtauthRequest({ op: 'auth', user: 'zoë', server: 'example.com', password: 'a:b::c' });
    assert.equal(f.readUInt16BE(0), f.length - 2);
    assert.equal(f.readUInt16BE(0), 'auth:zoë:example.com:a:b::c'.length + 1);
    assert.equal(f.subarray(2).toString('utf8'), 'auth:zoë:example.com:a:b::c');
  });

  it('refuses a request longer than 65535 bytes', () => {
    assert.throws(() => encodeExtauthRequest({ op: 'auth', user: 'a', server: 'b', password: 'x'.repeat(70_000) }), RangeError);
  });
});

describe('external backend with a Node program', () => {
  it('checks passwords and names the user', async () => {
    const b = backend();
    assert.equal(b.verification, 'plain');
    assert.equal(b.listUsers, undefined);
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.equal(await b.checkPassword?.('ALICE', 'wonderland'), 'alice', 'the localpart is prepared before it is sent');
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(await b.checkPassword?.('nobody', 'wonderland'), false);
    assert.deepEqual(seen().map((s) => `${s.op} ${s.user}`), ['auth alice', 'auth alice', 'auth alice', 'auth nobody']);
  });

  it('passes a password containing ":" whole', async () => {
    const b = backend();
    assert.equal(await b.checkPassword?.('carol', 'pa:ss:word'), 'carol');
    assert.equal(await b.checkPassword?.('carol', 'pa:ss'), false);
  });

  it('never sends a username that could shift the fields', async () => {
    const b = backend();
    assert.equal(await b.checkPassword?.('alice:localhost:wonderland', 'x'), false);
    assert.equal(await b.userExists('a:b'), false);
    assert.deepEqual(seen(), []);
  });

  it('maps isuser, tryregister, setpass and removeuser', async () => {
    const b = backend();
    assert.equal(await b.userExists('alice'), true);
    assert.equal(await b.userExists('dave'), false);
    await b.register?.('dave', 'new:pass');
    assert.equal(await b.checkPassword?.('dave', 'new:pass'), 'dave');
    await assert.rejects(b.register?.('dave', 'other') as Promise<void>, (err) => err instanceof AccountError && err.code === 'EXISTS');
    await b.setPassword?.('dave', 'changed');
    assert.equal(await b.checkPassword?.('dave', 'new:pass'), false);
    assert.equal(await b.checkPassword?.('dave', 'changed'), 'dave');
    await b.remove?.('dave');
    assert.equal(await b.userExists('dave'), false);
    await assert.rejects(b.remove?.('dave') as Promise<void>, backendError);
    const ops = seen().map((s) => s.op);
    for (const op of ['isuser', 'tryregister', 'setpass', 'removeuser']) assert.ok(ops.includes(op), op);
  });

  it('fails a request as a backend error when the program dies, and restarts it', async () => {
    const b = backend();
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    await assert.rejects(b.checkPassword?.('crash', 'secret-crash-pw') as Promise<string | false>, backendError);
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    const pids = seen().map((s) => s.pid);
    assert.equal(pids[0], pids[1]);
    assert.notEqual(pids[1], pids[2], 'a new program answered after the crash');
  });

  it('kills a program that does not answer within the timeout and replaces it', async () => {
    const b = backend({ timeout: 0.5 });
    // A new program's first answer gets a start-up allowance; the timeout applies from then on.
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    await assert.rejects(b.checkPassword?.('hang', 'secret-hang-pw') as Promise<string | false>, (err) => backendError(err) && /within 500 ms/.test((err as Error).message));
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    const [, hung, next] = seen();
    assert.ok(hung && next);
    assert.notEqual(hung.pid, next.pid);
    assert.ok(await gone(Number(hung.pid)), 'the hung program is gone');
  });

  it('gives a new program time to start beyond the request timeout', async () => {
    const b = createExternalBackend({ program: process.execPath, args: [NODE_PROGRAM, usersFile, logFile, '1000'], pool_size: 1, timeout: 0.2, cache_seconds: 0 }, ctx());
    backends.push(b);
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
  });

  it('replaces a program whose answer breaks the framing', async () => {
    const b = backend();
    await assert.rejects(b.checkPassword?.('garbage', 'x') as Promise<string | false>, backendError);
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
  });

  it('never writes a password to the log', async () => {
    const b = backend({ timeout: 0.5 });
    await assert.rejects(b.checkPassword?.('crash', 'secret-crash-pw') as Promise<string | false>);
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    await assert.rejects(b.checkPassword?.('hang', 'secret-hang-pw') as Promise<string | false>);
    assert.ok(logLines.length > 0);
    const all = logLines.join('');
    for (const secret of ['secret-crash-pw', 'secret-hang-pw', 'wonderland']) assert.ok(!all.includes(secret), secret);
  });

  it('with pool_size 2, serves two requests at once from two programs', async () => {
    const b = backend({ pool_size: 2 });
    // Each of these answers only after the other has reached a program: with one program they would both fail.
    const [a, c] = await Promise.all([b.checkPassword?.('barrier-a', 'x'), b.checkPassword?.('barrier-b', 'x')]);
    assert.equal(a, 'barrier-a');
    assert.equal(c, 'barrier-b');
    const [first, second] = seen();
    assert.ok(first && second);
    assert.notEqual(first.pid, second.pid);
  });

  it('without a cache, asks the program every time', async () => {
    const b = backend();
    await b.checkPassword?.('alice', 'wonderland');
    await b.checkPassword?.('alice', 'wonderland');
    assert.equal(seen().length, 2);
  });

  it('caches successes only, and forgets them on setpass and removeuser', async () => {
    const b = backend({ cache_seconds: 300 });
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.equal(seen().length, 1, 'the second login came from the cache');
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(seen().length, 3, 'failures are not cached');
    await b.setPassword?.('alice', 'looking-glass');
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), false, 'the old password is no longer cached');
    assert.equal(await b.checkPassword?.('alice', 'looking-glass'), 'alice');
    assert.equal(await b.checkPassword?.('alice', 'looking-glass'), 'alice');
    assert.equal(seen().filter((s) => s.op === 'auth').length, 5);
    await b.remove?.('alice');
    assert.equal(await b.checkPassword?.('alice', 'looking-glass'), false);
  });

  it('close() ends the programs', async () => {
    const b = backend({ pool_size: 2 });
    await Promise.all([b.checkPassword?.('barrier-a', 'x'), b.checkPassword?.('barrier-b', 'x')]);
    const pids = seen().map((s) => Number(s.pid));
    await b.close?.();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/);
    await assert.rejects(b.checkPassword?.('alice', 'wonderland') as Promise<string | false>, backendError);
  });

  it('refuses a program path that is not executable at start', () => {
    assert.throws(() => createExternalBackend({ program: join(dir, 'missing'), args: [], pool_size: 1, timeout: 1, cache_seconds: 0 }, ctx()), ConfigError);
  });
});

describe('external backend with a Python program', { skip: !hasPython && 'python3 is not installed' }, () => {
  it('speaks the same protocol', async () => {
    const b = backend({}, true);
    assert.equal(await b.checkPassword?.('alice', 'wonderland'), 'alice');
    assert.equal(await b.checkPassword?.('alice', 'wrong'), false);
    assert.equal(await b.checkPassword?.('carol', 'pa:ss:word'), 'carol');
    assert.equal(await b.userExists('bob'), true);
    assert.equal(await b.userExists('nobody'), false);
    await b.setPassword?.('bob', 'can:we:fix:it');
    assert.equal(await b.checkPassword?.('bob', 'can:we:fix:it'), 'bob');
    assert.deepEqual(seen().map((s) => s.op), ['auth', 'auth', 'auth', 'isuser', 'isuser', 'setpass', 'auth']);
  });
});

describe('external backend end to end', () => {
  let t: TestServer;
  let e2eDir: string;
  before(async () => {
    e2eDir = mkdtempSync(join(tmpdir(), 'parley-extauth-e2e-'));
    writeFileSync(join(e2eDir, 'users.json'), JSON.stringify(USERS));
    writeFileSync(join(e2eDir, 'requests.log'), '');
    t = await startServer({
      auth: { methods: ['external'], external: { program: process.execPath, args: [NODE_PROGRAM, join(e2eDir, 'users.json'), join(e2eDir, 'requests.log')] } },
    });
  });
  after(async () => {
    await t?.stop();
    rmSync(e2eDir, { recursive: true, force: true });
  });

  it('logs in with PLAIN over STARTTLS through the program', async () => {
    const c = await RawClient.connect(t.port);
    const jid = await c.login('carol', 'pa:ss:word', 'phone');
    assert.equal(jid, 'carol@localhost/phone');
    c.destroy();
    assert.match(readFileSync(join(e2eDir, 'requests.log'), 'utf8'), /^\d+ auth carol$/m);
  });

  it('refuses a wrong password', async () => {
    const c = await RawClient.connect(t.port);
    await c.openStream();
    await c.starttls();
    await c.openStream();
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0carol\0wrong').toString('base64')}</auth>`);
    await c.expect(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><not-authorized\/>/);
    c.destroy();
  });
});
