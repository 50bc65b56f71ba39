// The README's configuration examples must stay valid: each YAML block is a whole configuration.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { ModuleManager } from '../src/core/module-manager.ts';
import { AccessControl } from '../src/auth/access.ts';
import { builtinModules } from '../src/modules/index.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);

describe('README configuration examples', () => {
  it('has examples', () => assert.ok(blocks.length >= 5));
  for (const [i, block] of blocks.entries()) {
    it(`example ${i + 1} is a valid configuration (${block.split('\n')[0]})`, () => {
      const config = parseConfig(parse(block));
      new AccessControl(config);
      const mm = new ModuleManager(builtinModules);
      for (const host of config.hosts) mm.plan(host, config.modules, config.host_config[host]?.modules);
    });
  }
});
