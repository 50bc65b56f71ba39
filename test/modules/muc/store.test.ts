// The chat service's pieces without sockets: the SQLite room store (migration 7), history selection and the
// configuration form reading.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStorage } from '../../../src/storage/sqlite/sqlite-storage.ts';
import { xml } from '../../../src/xml/element.ts';
import { parseElement } from '../../../src/xml/parse.ts';
import { History } from '../../../src/modules/muc/history.ts';
import { applyConfigForm, archived, type ConfigLimits } from '../../../src/modules/muc/config.ts';
import { defaultConfig, MucOptions } from '../../../src/modules/muc/options.ts';
import { StanzaError } from '../../../src/core/errors.ts';

describe('muc store (sqlite)', () => {
  it('saves rooms with their affiliations, updates one affiliation, keeps services apart and removes rooms', async () => {
    const s = new SqliteStorage(':memory:');
    try {
      const room = { node: 'coven', config: '{"name":"Cave"}', subject: null, secret: 'k', createdAt: 1000 };
      await s.muc.saveRoom('conference.a', room, [
        { jid: 'crone@a', affiliation: 'owner', nick: 'first', reason: null, notify: true },
        { jid: 'mac@a', affiliation: 'outcast', nick: null, reason: 'Treason', notify: true },
      ]);
      await s.muc.saveRoom('conference.b', { ...room, config: '{}' }, []);
      await s.muc.setAffiliation('conference.a', 'coven', 'hag@a', { affiliation: 'member', nick: 'third', reason: null, notify: false });
      await s.muc.setAffiliation('conference.a', 'coven', 'mac@a', undefined);
      // A record update keeps the affiliations.
      await s.muc.saveRoom('conference.a', { ...room, subject: '{"text":"Spells"}' });
      const [a] = await s.muc.rooms('conference.a');
      assert.deepEqual(a?.room, { ...room, subject: '{"text":"Spells"}' });
      assert.deepEqual(a?.affiliations, [
        { jid: 'crone@a', affiliation: 'owner', nick: 'first', reason: null, notify: true },
        { jid: 'hag@a', affiliation: 'member', nick: 'third', reason: null, notify: false },
      ]);
      assert.equal((await s.muc.rooms('conference.b'))[0]?.room.config, '{}');
      assert.equal(await s.muc.removeRoom('conference.a', 'coven'), true);
      assert.equal(await s.muc.removeRoom('conference.a', 'coven'), false);
      assert.deepEqual(await s.muc.rooms('conference.a'), []);
      assert.equal((await s.muc.rooms('conference.b')).length, 1);
    } finally {
      s.close();
    }
  });
});

describe('muc history', () => {
  const msg = (i: number) => parseElement(`<message type='groupchat' from='r@c/n' id='m${i}'><body>line ${i}</body></message>`) as NonNullable<ReturnType<typeof parseElement>>;

  it('keeps the newest messages up to its limit and selects by count, characters and time', () => {
    const h = new History('r@c', 3);
    for (let i = 1; i <= 5; i++) h.add(msg(i), i * 1000);
    const bodies = (els: Array<{ getChildText(n: string): string | undefined }>) => els.map((e) => e.getChildText('body'));
    assert.deepEqual(bodies(h.select({}, 10_000)), ['line 3', 'line 4', 'line 5']);
    assert.deepEqual(bodies(h.select({ maxstanzas: 1 }, 10_000)), ['line 5']);
    assert.deepEqual(h.select({ maxchars: 0 }, 10_000), []);
    assert.deepEqual(bodies(h.select({ since: 4000 }, 10_000)), ['line 4', 'line 5']);
    assert.deepEqual(bodies(h.select({ seconds: 6 }, 10_000)), ['line 4', 'line 5']);
    const one = h.select({ maxstanzas: 1 }, 10_000)[0];
    assert.equal(one?.getChild('delay', 'urn:xmpp:delay')?.attrs.from, 'r@c');
    // maxchars counts whole stanzas as sent: exactly one stanza's worth gives one stanza.
    assert.equal(h.select({ maxchars: (one?.toString().length ?? 0) }, 10_000).length, 1);
    h.setLimit(1);
    assert.deepEqual(bodies(h.select({}, 10_000)), ['line 5']);
  });
});

describe('muc configuration form', () => {
  const limits: ConfigLimits = { maxUsers: 100, maxHistory: 50, archiving: true, archiveDefault: 'persistent' };
  const base = defaultConfig(MucOptions.parse({}), 'room');
  const form = (fields: Record<string, string>) => xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', null, v))));

  it('reads fields onto the current configuration and refuses unusable values', () => {
    const c = applyConfigForm(form({ 'muc#roomconfig_membersonly': 'true', 'muc#roomconfig_maxusers': '20', 'muc#roomconfig_allowpm': 'moderators' }), base, limits).config;
    assert.deepEqual([c.membersOnly, c.maxUsers, c.allowPm, c.name], [true, 20, 'moderators', 'room']);
    const bads: Array<Record<string, string>> = [{ 'muc#roomconfig_maxusers': '101' }, { 'muc#roomconfig_whois': 'nobody' }, { 'muc#maxhistoryfetch': '51' },
      { 'muc#roomconfig_publicroom': 'maybe' }, { 'muc#roomconfig_passwordprotectedroom': '1' }, { 'muc#roomconfig_roomowners': '' }];
    for (const bad of bads) {
      assert.throws(() => applyConfigForm(form(bad), base, limits), (e: unknown) => e instanceof StanzaError && e.condition === 'not-acceptable', JSON.stringify(bad));
    }
  });

  it('archives persistent rooms unless the owner chose otherwise', () => {
    assert.equal(archived(base, limits), false);
    // Made persistent with archiving shown as it was (off): the room follows the default and is archived.
    const p = applyConfigForm(form({ 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_enablearchiving': '0' }), base, limits).config;
    assert.equal(archived(p, limits), true);
    // The owner turns it off: that choice stays.
    const off = applyConfigForm(form({ 'muc#roomconfig_enablearchiving': '0' }), p, limits).config;
    assert.equal(archived(off, limits), false);
    assert.equal(archived(off, { ...limits, archiving: false }), false);
    assert.equal(archived(base, { ...limits, archiveDefault: 'all' }), true);
  });
});
