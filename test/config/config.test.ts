import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { ModuleManager } from '../../src/core/module-manager.ts';
import { builtinModules } from '../../src/modules/index.ts';

describe('configuration', () => {
  it('has working defaults: localhost, STARTTLS required, the documented limits', () => {
    const c = parseConfig({});
    assert.deepEqual(c.hosts, ['localhost']);
    assert.equal(c.listen.c2s.port, 5222);
    assert.equal(c.listen.c2s_direct_tls.port, 5223);
    assert.equal(c.listen.c2s.starttls, 'required');
    assert.equal(c.limits.stanza_size_preauth, 10_000);
    assert.equal(c.limits.stanza_size, 262_144);
    assert.equal(c.limits.max_depth, 64);
    assert.equal(c.limits.max_attrs, 256);
    assert.equal(c.limits.negotiation_timeout, 30);
    assert.equal(c.auth.scram_iterations, 4096);
  });

  it('names every bad key with its path', () => {
    assert.throws(
      () => parseConfig({ hosts: [], listen: { c2s: { port: 'x', starttls: 'sometimes' } }, limits: { stanza_size: 10 }, bogus: 1 }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        const text = e.problems.join('\n');
        for (const key of ['hosts', 'listen.c2s.port', 'listen.c2s.starttls', 'limits.stanza_size', 'bogus']) {
          assert.match(text, new RegExp(key.replace(/\./g, '\\.')), `missing ${key} in ${text}`);
        }
        return true;
      },
    );
  });

  it('loads YAML and resolves relative paths against the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
    try {
      const file = join(dir, 'parley.yml');
      writeFileSync(file, 'hosts: [example.test]\ndata_dir: ./var\nlisten:\n  c2s:\n    port: 15222\n');
      const c = loadConfigFile(file);
      assert.deepEqual(c.hosts, ['example.test']);
      assert.equal(c.data_dir, join(dir, 'var'));
      assert.equal(c.listen.c2s.port, 15222);
      writeFileSync(file, 'hosts: [a\n  b: c');
      assert.throws(() => loadConfigFile(file), ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the documented example is valid', () => {
    const c = loadConfigFile(new URL('../../parley.example.yml', import.meta.url).pathname);
    assert.deepEqual(c.hosts, ['localhost']);
    assert.ok(readFileSync(new URL('../../parley.example.yml', import.meta.url), 'utf8').includes('starttls'));
  });

  it('validates module options globally and per host, and unknown modules', () => {
    const mm = new ModuleManager(builtinModules);
    assert.throws(() => mm.plan('localhost', { roster: { versioning: 'yes' } }, undefined), /modules\.roster\.versioning/);
    assert.throws(() => mm.plan('localhost', {}, { roster: { nope: 1 } }), /host_config\.localhost\.modules\.roster/);
    assert.throws(() => mm.plan('localhost', { nosuch: {} }, undefined), /modules\.nosuch: unknown module/);
    const plan = mm.plan('localhost', { ping: false }, undefined).map((p) => p.def.id);
    assert.ok(!plan.includes('ping'));
    assert.ok(plan.includes('roster'));
  });
});
