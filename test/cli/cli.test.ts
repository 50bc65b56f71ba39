// The parley command, as an operator runs it: account commands with and without a running server,
// and the commands that need one through the admin socket.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RawClient } from '../helpers/raw-client.ts';
import { trust } from '../helpers/server.ts';
import { readFileSync } from 'node:fs';

const BIN = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));

describe('parley CLI', () => {
  let dir: string;
  let config: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
    config = join(dir, 'parley.yml');
    writeFileSync(config, [
      'hosts: [localhost]',
      'data_dir: ./data',
      'listen:',
      '  c2s: { port: 0, bind: 127.0.0.1 }',
      '  c2s_direct_tls: { port: 0, bind: 127.0.0.1 }',
      'log: { level: info }',
    ].join('\n'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args, '--config', config], { encoding: 'utf8', timeout: 20_000 });

  it('manages accounts with no server running', () => {
    let r = run('register', 'Alice', 'localhost', 's3cret');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'registered alice@localhost\n');
    r = run('register', 'alice', 'localhost', 'again');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already exists/);
    r = run('register', 'bad user', 'localhost', 'x');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /invalid username/);
    r = run('register', 'carol', 'elsewhere.example', 'x');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not served/);
    assert.equal(run('register', 'bob', 'localhost', 'pw').status, 0);
    assert.equal(run('users', 'localhost').stdout, 'alice\nbob\n');
    assert.equal(run('passwd', 'alice', 'localhost', 'n3w').status, 0);
    assert.equal(run('unregister', 'bob', 'localhost').status, 0);
    assert.equal(run('users', 'localhost').stdout, 'alice\n');
    r = run('unregister', 'bob', 'localhost');
    assert.equal(r.status, 1);
    r = run('status');
    assert.equal(r.status, 3);
    assert.match(r.stdout, /not running/);
    assert.equal(run('connected').status, 3);
  });

  it('rejects unknown commands, wrong arity and bad configuration', () => {
    assert.equal(run('frobnicate').status, 64);
    assert.equal(run('register', 'x').status, 64);
    const bad = join(dir, 'bad.yml');
    writeFileSync(bad, 'listen:\n  c2s:\n    port: -1\n');
    const r = spawnSync(process.execPath, [BIN, 'users', 'localhost', '--config', bad], { encoding: 'utf8' });
    assert.equal(r.status, 78);
    assert.match(r.stderr, /listen\.c2s\.port/);
  });

  describe('with the server running', () => {
    let server: ChildProcess;
    let port = 0;
    let logs = '';
    before(async () => {
      server = spawn(process.execPath, [BIN, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      server.stdout?.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`server did not start: ${logs}`)), 20_000);
        server.stdout?.on('data', (d: string) => {
          logs += d;
          const m = /"listener":"c2s","address":"127\.0\.0\.1","port":(\d+)/.exec(logs);
          if (m && /"msg":"host ready"/.test(logs) && port === 0) {
            port = Number(m[1]);
            clearTimeout(t);
            // Wait for the admin socket too (it opens after the listeners).
            setTimeout(resolve, 200);
          }
        });
        server.once('exit', (code) => reject(new Error(`server exited ${code}: ${logs}`)));
      });
      trust(readFileSync(join(dir, 'data', 'certs', 'server.crt'), 'utf8'));
    });
    after(async () => {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    });

    it('logged the generated certificate fingerprint and no secrets', () => {
      assert.match(logs, /"fingerprint256":"([0-9A-F]{2}:){31}[0-9A-F]{2}"/);
      assert.doesNotMatch(logs, /s3cret|n3w/);
    });

    it('reports status, lists connections and kicks a session', async () => {
      const status = run('status');
      assert.equal(status.status, 0, status.stderr);
      assert.match(status.stdout, /"sessions": 0/);
      const c = await RawClient.connect(port);
      await c.login('alice', 'n3w', 'phone');
      const connected = run('connected');
      assert.match(connected.stdout, /^alice@localhost\/phone\ttcp\+tls\t127\.0\.0\.1\t/m);
      const kick = run('kick', 'alice@localhost/phone');
      assert.equal(kick.stdout, 'kicked 1 session(s)\n');
      await c.expect(/<stream:error><policy-violation/);
      await c.closed();
    });

    it('registers through the running server, and the new account can log in at once', async () => {
      assert.equal(run('register', 'dave', 'localhost', 'pw').status, 0);
      const c = await RawClient.connect(port);
      assert.equal(await c.login('dave', 'pw', 'x'), 'dave@localhost/x');
      assert.equal(run('unregister', 'dave', 'localhost').status, 0);
      await c.expect(/<stream:error><not-authorized/);
      await c.closed();
    });

    it('stops cleanly on SIGTERM', async () => {
      server.kill('SIGTERM');
      const code = await new Promise((r) => server.once('exit', r));
      assert.equal(code, 0);
      assert.equal(run('status').status, 3);
    });
  });
});
