import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HookBus, PRIORITY } from '../../src/core/hooks.ts';
import { IqTable } from '../../src/core/iq.ts';
import { ModuleManager } from '../../src/core/module-manager.ts';
import { defineModule } from '../../src/core/module.ts';
import { xml } from '../../src/xml/element.ts';
import type { StanzaEvent } from '../../src/core/hook-map.ts';

const event = {} as StanzaEvent;

describe('hook bus', () => {
  it('runs higher priorities first, ties in registration order, and stops at the first true', async () => {
    const calls: string[] = [];
    const bus = new HookBus(() => undefined);
    bus.on('message/bare', () => { calls.push('default-1'); }, {});
    bus.on('message/bare', () => { calls.push('delivery'); return true; }, { priority: PRIORITY.DELIVERY });
    bus.on('message/bare', () => { calls.push('feature'); }, { priority: PRIORITY.FEATURE });
    bus.on('message/bare', () => { calls.push('default-2'); }, {});
    bus.on('message/bare', () => { calls.push('never'); }, { priority: PRIORITY.DELIVERY - 1 });
    assert.equal(await bus.run('message/bare', event), true);
    assert.deepEqual(calls, ['feature', 'default-1', 'default-2', 'delivery']);
    assert.equal(await bus.run('message/full', event), false);
  });

  it('folds an accumulator through async handlers and unregisters', async () => {
    const bus = new HookBus(() => undefined);
    const off = bus.onFold('c2s/features', async (_e, acc) => [...acc, xml('a')]);
    bus.onFold('c2s/features', (_e, acc) => [...acc, xml('b')], { priority: 10 });
    const names = (await bus.fold('c2s/features', {} as never, [])).map((e) => e.name);
    assert.deepEqual(names, ['b', 'a']);
    off();
    assert.deepEqual((await bus.fold('c2s/features', {} as never, [])).map((e) => e.name), ['b']);
  });

  it('reports a failing handler with its owner and rethrows', async () => {
    const reports: string[] = [];
    const bus = new HookBus((hook, owner) => reports.push(`${hook}:${owner}`));
    bus.on('message/bare', () => { throw new Error('boom'); }, { owner: 'broken' });
    await assert.rejects(bus.run('message/bare', event), /boom/);
    assert.deepEqual(reports, ['message/bare:broken']);
  });
});

describe('IQ table', () => {
  it('finds handlers by target, type, namespace and name, and refuses duplicates', () => {
    const t = new IqTable();
    const h = () => undefined;
    const off = t.register('get', 'urn:x', 'query', h, ['host', 'account'], 'm1');
    assert.equal(t.find('host', 'get', 'urn:x', 'query'), h);
    assert.equal(t.find('account', 'get', 'urn:x', 'query'), h);
    assert.equal(t.find('host', 'set', 'urn:x', 'query'), undefined);
    assert.throws(() => t.register('get', 'urn:x', 'query', h, ['host'], 'm2'), /registered twice/);
    off();
    assert.equal(t.find('host', 'get', 'urn:x', 'query'), undefined);
  });
});

describe('module manager', () => {
  const a = defineModule({ id: 'a', requires: ['b'], setup() {} });
  const b = defineModule({ id: 'b', setup() {} });
  const c = defineModule({ id: 'c', enabledByDefault: false, setup() {} });

  it('orders modules by what they require and leaves off-by-default modules off', () => {
    const mm = new ModuleManager([a, b, c]);
    assert.deepEqual(mm.plan('h', {}, undefined).map((p) => p.def.id), ['b', 'a']);
    assert.deepEqual(mm.plan('h', { c: {} }, undefined).map((p) => p.def.id), ['b', 'a', 'c']);
  });

  it('refuses a module whose requirement is turned off', () => {
    const mm = new ModuleManager([a, b]);
    assert.throws(() => mm.plan('h', { b: false }, undefined), /modules\.a: requires module b/);
  });
});
