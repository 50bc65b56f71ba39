// Persistent rooms across a restart (a second server on the first one's data directory) and room archives
// (XEP-0313 on the room JID) with RSM paging, stanza-ids matching archive ids, and who may read them.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MUC_ADMIN, MUC_OWNER, MucClient, SERVICE, configForm, createRoom, errorCondition, item, statusCodes, type Element } from './helpers.ts';

const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';
const OID = 'urn:xmpp:occupant-id:0';

/** Runs a MAM query and collects its results and <fin/>. */
async function mamQuery(c: MucClient, room: string, rsm: string, form = ''): Promise<{ results: Element[]; fin: Element; iq: Element }> {
  const queryid = `q${Math.random().toString(36).slice(2)}`;
  const iq = await c.iq(room, 'set', `<query xmlns='${MAM}' queryid='${queryid}'>${form}<set xmlns='${RSM}'>${rsm}</set></query>`);
  const results = c.take((s) => s.name === 'message' && s.getChild('result', MAM)?.attrs.queryid === queryid);
  const fin = iq.getChild('fin', MAM) as Element;
  return { results, fin, iq };
}
const bodyOf = (r: Element): string | undefined => r.getChild('result', MAM)?.getChild('forwarded')?.getChild('message')?.getChildText('body');

describe('muc: persistence across a restart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-muc-'));
  const room = `coven@${SERVICE}`;
  const temp = `fleeting@${SERVICE}`;
  let first: TestServer | undefined;
  let second: TestServer | undefined;
  const open: MucClient[] = [];
  let oidBefore: string | undefined;
  let stanzaIds: string[] = [];

  before(async () => {
    first = await startServer({}, { dataDir: dir });
    for (const u of ['crone', 'hag', 'wicca', 'mac']) await first.register(u, 'pw');
    const crone = await MucClient.login(first.port, 'crone');
    const hag = await MucClient.login(first.port, 'hag');
    open.push(crone, hag);
    await createRoom(crone, room, 'firstwitch', {
      'muc#roomconfig_persistentroom': '1',
      'muc#roomconfig_roomname': 'A Dark Cave',
      'muc#roomconfig_roomdesc': 'For witches',
      'muc#roomconfig_roomadmins': 'wicca@localhost',
      'muc#maxhistoryfetch': '5',
    });
    await crone.iq(room, 'set', `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='hag@localhost' nick='thirdwitch'/><item affiliation='outcast' jid='mac@localhost'><reason>Treason</reason></item></query>`);
    crone.send(`<message to='${room}' type='groupchat' id='subj'><subject>Spells</subject></message>`);
    await crone.next((s) => s.attrs.id === 'subj');
    const j = await hag.join(room, 'thirdwitch');
    oidBefore = j.self.getChild('occupant-id', OID)?.attrs.id;
    for (let i = 1; i <= 7; i++) {
      hag.send(`<message to='${room}' type='groupchat' id='m${i}'><body>line ${i}</body></message>`);
      const m = await hag.next((s) => s.attrs.id === `m${i}`);
      stanzaIds.push(m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id ?? '');
    }
    await createRoom(crone, temp, 'firstwitch');
    for (const c of open.splice(0)) c.close();
    await first.stop();
    second = await startServer({}, { dataDir: dir });
  });
  after(async () => {
    for (const c of open) c.close();
    await second?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the room with its configuration; temporary rooms are gone', async () => {
    const t = second as TestServer;
    const hag = await MucClient.login(t.port, 'hag');
    open.push(hag);
    const info = (await hag.iq(room, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>")).getChild('query');
    assert.equal(info?.getChild('identity')?.attrs.name, 'A Dark Cave');
    assert.ok(info?.getChildren('feature').some((f) => f.attrs.var === 'muc_persistent'));
    assert.ok(info?.getChildren('feature').some((f) => f.attrs.var === MAM));
    const fields = new Map(info?.getChild('x', 'jabber:x:data')?.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.equal(fields.get('muc#roominfo_description'), 'For witches');
    assert.equal(errorCondition(await hag.iq(temp, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>")), 'item-not-found');
  });

  it('keeps affiliations, the reserved nick, the subject, the occupant id and (from the archive) the history', async () => {
    const t = second as TestServer;
    const hag = await MucClient.login(t.port, 'hag', 'again');
    const mac = await MucClient.login(t.port, 'mac');
    const wicca = await MucClient.login(t.port, 'wicca');
    open.push(hag, mac, wicca);
    assert.equal(await mac.joinFails(room, 'mac'), 'forbidden');
    const j = await hag.join(room, 'thirdwitch');
    assert.equal(item(j.self)?.attrs.affiliation, 'member');
    assert.ok(statusCodes(j.self).includes('170'));
    assert.equal(j.self.getChild('occupant-id', OID)?.attrs.id, oidBefore);
    assert.equal(j.subject.getChildText('subject'), 'Spells');
    assert.equal(j.subject.attrs.from, `${room}/firstwitch`);
    assert.deepEqual(j.history.map((m) => m.getChildText('body')), ['line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
    assert.deepEqual(j.history.map((m) => m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id), stanzaIds.slice(2));
    const jw = await wicca.join(room, 'secondwitch');
    assert.deepEqual([item(jw.self)?.attrs.affiliation, item(jw.self)?.attrs.role], ['admin', 'moderator']);
    const bans = await wicca.iq(room, 'get', `<query xmlns='${MUC_ADMIN}'><item affiliation='outcast'/></query>`);
    assert.deepEqual(bans.getChild('query')?.getChildren('item').map((i) => [i.attrs.jid, i.getChildText('reason')]), [['mac@localhost', 'Treason']]);
    // The owner's configuration form reflects what was stored.
    const crone = await MucClient.login(t.port, 'crone');
    open.push(crone);
    const form = (await crone.iq(room, 'get', `<query xmlns='${MUC_OWNER}'/>`)).getChild('query')?.getChild('x');
    const values = new Map(form?.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.equal(values.get('muc#roomconfig_persistentroom'), '1');
    assert.equal(values.get('muc#maxhistoryfetch'), '5');
  });

  it('pages through the room archive with RSM; results are the room\'s, with the live stanza-ids', async () => {
    const t = second as TestServer;
    const hag = await MucClient.login(t.port, 'hag', 'mam');
    open.push(hag);
    const p1 = await mamQuery(hag, room, '<max>3</max>');
    assert.equal(p1.iq.attrs.type, 'result');
    assert.deepEqual(p1.results.map(bodyOf), ['line 1', 'line 2', 'line 3']);
    for (const r of p1.results) {
      assert.equal(r.attrs.from, room);
      const fwd = r.getChild('result', MAM)?.getChild('forwarded')?.getChild('message');
      assert.equal(fwd?.attrs.from, `${room}/thirdwitch`);
      assert.equal(fwd?.attrs.type, 'groupchat');
      assert.ok(fwd?.getChild('occupant-id', OID));
      assert.ok(r.getChild('result', MAM)?.getChild('forwarded')?.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp);
    }
    assert.deepEqual(p1.results.map((r) => r.getChild('result', MAM)?.attrs.id), stanzaIds.slice(0, 3));
    assert.equal(p1.fin.attrs.complete, undefined);
    const set = p1.fin.getChild('set', RSM);
    assert.equal(set?.getChildText('count'), '7');
    const p2 = await mamQuery(hag, room, `<max>3</max><after>${set?.getChildText('last')}</after>`);
    assert.deepEqual(p2.results.map(bodyOf), ['line 4', 'line 5', 'line 6']);
    const p3 = await mamQuery(hag, room, `<max>3</max><after>${p2.fin.getChild('set', RSM)?.getChildText('last')}</after>`);
    assert.deepEqual(p3.results.map(bodyOf), ['line 7']);
    assert.equal(p3.fin.attrs.complete, 'true');
    const last = await mamQuery(hag, room, '<max>2</max><before/>');
    assert.deepEqual(last.results.map(bodyOf), ['line 6', 'line 7']);
    // An id from elsewhere is not in this archive.
    const bad = await hag.iq(room, 'set', `<query xmlns='${MAM}'><set xmlns='${RSM}'><after>nonsense</after></set></query>`);
    assert.equal(errorCondition(bad), 'item-not-found');
  });
});

describe('muc: room archives', () => {
  let t: TestServer;
  const open: MucClient[] = [];
  before(async () => {
    t = await startServer();
    for (const u of ['owner', 'member', 'stranger']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
  });

  it('archives persistent rooms by default, temporary ones only when asked; members-only archives are for members', async () => {
    const owner = await MucClient.login(t.port, 'owner');
    const stranger = await MucClient.login(t.port, 'stranger');
    const member = await MucClient.login(t.port, 'member');
    open.push(owner, stranger, member);
    const tempRoom = `chat@${SERVICE}`;
    const j = await owner.join(tempRoom, 'o');
    assert.ok(!statusCodes(j.self).includes('170'));
    await owner.iq(tempRoom, 'set', configForm({}));
    owner.send(`<message to='${tempRoom}' type='groupchat' id='t1'><body>not kept</body></message>`);
    await owner.next((s) => s.attrs.id === 't1');
    assert.equal(errorCondition(await owner.iq(tempRoom, 'set', `<query xmlns='${MAM}'/>`)), 'service-unavailable');
    // Turned on explicitly: archived, and occupants are told (170).
    await owner.iq(tempRoom, 'set', configForm({ 'muc#roomconfig_enablearchiving': '1' }));
    const notice = await owner.next((s) => s.name === 'message' && statusCodes(s).length > 0);
    assert.deepEqual(statusCodes(notice), ['170']);
    owner.send(`<message to='${tempRoom}' type='groupchat' id='t2'><body>kept</body></message>`);
    await owner.next((s) => s.attrs.id === 't2');
    assert.deepEqual((await mamQuery(stranger, tempRoom, '<max>10</max>')).results.map(bodyOf), ['kept']);

    const club = `club@${SERVICE}`;
    await createRoom(owner, club, 'o', { 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_membersonly': '1' });
    await owner.iq(club, 'set', `<query xmlns='${MUC_ADMIN}'><item affiliation='member' jid='member@localhost'/></query>`);
    owner.send(`<message to='${club}' type='groupchat' id='c1'><body>members only</body></message>`);
    await owner.next((s) => s.attrs.id === 'c1');
    assert.equal(errorCondition(await stranger.iq(club, 'set', `<query xmlns='${MAM}'/>`)), 'forbidden');
    // A member need not be in the room to read its archive.
    const r = await mamQuery(member, club, '<max>10</max>');
    assert.deepEqual(r.results.map(bodyOf), ['members only']);
    const meta = await member.iq(club, 'get', `<metadata xmlns='${MAM}'/>`);
    assert.ok(meta.getChild('metadata', MAM)?.getChild('start')?.attrs.id);
    // The query form, with the 'with' filter on an occupant JID.
    const form = `<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>${MAM}</value></field><field var='with'><value>${club}/o</value></field></x>`;
    assert.equal((await mamQuery(member, club, '<max>10</max>', form)).results.length, 1);
  });
});
