// `parley api-token`: tokens created, listed and revoked on the database directly, then through a running server,
// where they open (and, revoked, close) the REST API.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/parley.js', import.meta.url));
const TOKEN = /^(ptk_([0-9a-f]{16})_[A-Za-z0-9_-]{43})\n$/;

describe('parley api-token', () => {
  let dir: string;
  let config: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-cli-token-'));
    config = join(dir, 'parley.yml');
    writeFileSync(config, [
      'hosts: [localhost, example.net]',
      'data_dir: ./data',
      'listen:',
      '  c2s: { port: 0, bind: 127.0.0.1 }',
      '  c2s_direct_tls: { port: 0, bind: 127.0.0.1 }',
      '  http: { port: 0, bind: 127.0.0.1 }',
      '  https: { port: 0, bind: 127.0.0.1 }',
      'log: { level: info }',
    ].join('\n'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args, '--config', config], { encoding: 'utf8', timeout: 20_000 });

  it('creates, lists and revokes tokens with no server running', () => {
    const created = run('api-token', 'create', '--name', 'deploy', '--host', 'Example.NET', '--expires', '7');
    assert.equal(created.status, 0, created.stderr);
    const m = TOKEN.exec(created.stdout);
    assert.ok(m, created.stdout);
    const id = m[2] as string;
    assert.match(created.stderr, new RegExp(`created API token ${id} \\(deploy\\) for example\\.net, expires \\d{4}-.*shown only this once`));
    const plain = run('api-token', 'create');
    assert.equal(plain.status, 0, plain.stderr);
    assert.match(plain.stderr, /for every host, never expires/);

    const list = run('api-token', 'list');
    assert.equal(list.status, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.equal(lines[0], 'ID\tNAME\tHOST\tCREATED\tEXPIRES\tLAST USED');
    assert.equal(lines.length, 3);
    assert.match(list.stdout, new RegExp(`^${id}\\tdeploy\\texample\\.net\\t\\d{4}-\\S+\\t\\d{4}-\\S+\\t-$`, 'm'));
    // The token itself is never shown again.
    assert.ok(!list.stdout.includes(m[1] as string));

    const revoked = run('api-token', 'revoke', id);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.equal(revoked.stdout, `revoked API token ${id}\n`);
    assert.equal(run('api-token', 'list').stdout.trim().split('\n').length, 2);
    const again = run('api-token', 'revoke', id);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /no API token/);
  });

  it('rejects bad arguments', () => {
    assert.equal(run('api-token', 'create', '--host', 'elsewhere.example').status, 64);
    assert.equal(run('api-token', 'create', '--expires', 'soon').status, 64);
    assert.equal(run('api-token', 'create', '--expires', '-1').status, 64);
    assert.equal(run('api-token', 'list', '--name', 'x').status, 64);
    assert.equal(run('api-token', 'revoke').status, 64);
    assert.equal(run('api-token', 'frob').status, 64);
    assert.equal(run('users', 'localhost', '--name', 'x').status, 64);
  });

  describe('with the server running', () => {
    let server: ChildProcess;
    let httpPort = 0;
    let logs = '';
    before(async () => {
      server = spawn(process.execPath, [BIN, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      server.stdout?.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`server did not start: ${logs}`)), 20_000);
        server.stdout?.on('data', (d: string) => {
          logs += d;
          const m = /"listener":"http","address":"127\.0\.0\.1","port":(\d+)/.exec(logs);
          if (m && /"msg":"host ready"/.test(logs) && httpPort === 0) {
            httpPort = Number(m[1]);
            clearTimeout(t);
            resolve();
          }
        });
        server.once('exit', (code) => reject(new Error(`server exited ${code}: ${logs}`)));
      });
      // The admin socket opens last: wait until the CLI reaches the server (bounded).
      for (let i = 0; i < 100 && run('status').status !== 0; i++) await new Promise((r) => setTimeout(r, 100));
    });
    after(async () => {
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    });

    const api = async (token: string): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/api/registered_users`, {
        method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ host: 'localhost' }),
      });
      await res.text();
      return res.status;
    };

    it('creates a token that opens the REST API, and revokes it', async () => {
      assert.equal(run('status').status, 0, 'the admin channel answers');
      const created = run('api-token', 'create', '--name', 'live');
      assert.equal(created.status, 0, created.stderr);
      const m = TOKEN.exec(created.stdout);
      assert.ok(m, created.stdout);
      assert.equal(await api(m[1] as string), 200);
      assert.match(run('api-token', 'list').stdout, new RegExp(`^${m[2]}\\tlive\\t\\*\\t`, 'm'));
      assert.equal(run('api-token', 'revoke', m[2] as string).status, 0);
      assert.equal(await api(m[1] as string), 401);
      // The server logged the use, never the token.
      assert.ok(!logs.includes(m[1] as string));
      assert.match(logs, new RegExp(`"caller":"token ${m[2]}"`));
    });
  });
});
