// XEP-0045 moderation and administration over real sockets: kicks, bans, voice, membership, moderator status,
// admin and owner lists, configuration changes and their notices, and destroying a room; each refusal included.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MUC_ADMIN, MUC_OWNER, MUC_USER, MucClient, SERVICE, configForm, createRoom, errorCondition, item, statusCodes, type Element } from './helpers.ts';

describe('muc: moderation and administration', () => {
  let t: TestServer;
  const open: MucClient[] = [];
  let n = 0;

  before(async () => {
    t = await startServer();
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
  });

  async function users(...names: string[]): Promise<MucClient[]> {
    n++;
    const out: MucClient[] = [];
    for (const name of names) {
      await t.register(`${name}${n}`, 'pw');
      const c = await MucClient.login(t.port, `${name}${n}`);
      open.push(c);
      out.push(c);
    }
    return out;
  }
  const roomName = (s: string): string => `${s}${n}@${SERVICE}`;
  const admin = (items: string): string => `<query xmlns='${MUC_ADMIN}'>${items}</query>`;
  const presenceOf = (from: string, test: (s: Element) => boolean = () => true) => (s: Element): boolean =>
    s.name === 'presence' && s.attrs.from === from && test(s);

  it('kicks an occupant (307, actor and reason), who may come back; a lower affiliation cannot kick a higher one', async () => {
    const [owner, b, c] = await users('kick', 'kickb', 'kickc') as [MucClient, MucClient, MucClient];
    const room = roomName('kicks');
    await createRoom(owner, room, 'boss');
    await b.join(room, 'bee');
    await c.join(room, 'sea');
    const res = await owner.iq(room, 'set', admin("<item nick='bee' role='none'><reason>Avaunt</reason></item>"));
    assert.equal(res.attrs.type, 'result');
    const self = await b.next(presenceOf(`${room}/bee`, (s) => s.attrs.type === 'unavailable'));
    assert.deepEqual(statusCodes(self).sort(), ['110', '307']);
    assert.equal(item(self)?.attrs.role, 'none');
    assert.equal(item(self)?.getChild('actor')?.attrs.nick, 'boss');
    assert.equal(item(self)?.getChildText('reason'), 'Avaunt');
    const seen = await c.next(presenceOf(`${room}/bee`, (s) => s.attrs.type === 'unavailable'));
    assert.deepEqual(statusCodes(seen), ['307']);
    await b.join(room, 'bee');
    // A participant is no moderator; a moderator cannot kick the owner.
    assert.equal(errorCondition(await b.iq(room, 'set', admin("<item nick='sea' role='none'/>"))), 'forbidden');
    await owner.iq(room, 'set', admin("<item nick='sea' role='moderator'/>"));
    assert.equal(errorCondition(await c.iq(room, 'set', admin("<item nick='boss' role='none'/>"))), 'not-allowed');
    // A moderator kicks a participant.
    assert.equal((await c.iq(room, 'set', admin("<item nick='bee' role='none'/>"))).attrs.type, 'result');
    // Role and affiliation in one item is a bad request; an unknown nick is not found.
    assert.equal(errorCondition(await owner.iq(room, 'set', admin(`<item nick='sea' role='none' affiliation='none' jid='${c.bare}'/>`))), 'bad-request');
    assert.equal(errorCondition(await owner.iq(room, 'set', admin("<item nick='nobody' role='none'/>"))), 'item-not-found');
  });

  it('bans by bare JID (301), keeps the ban list, refuses self-bans and bans of higher affiliations, and lifts bans', async () => {
    const [owner, adm, b] = await users('ban', 'banadm', 'banb') as [MucClient, MucClient, MucClient];
    const room = roomName('bans');
    await createRoom(owner, room, 'boss');
    assert.equal((await owner.iq(room, 'set', admin(`<item affiliation='admin' jid='${adm.bare}'/>`))).attrs.type, 'result');
    await adm.join(room, 'adm');
    await b.join(room, 'bee');
    const res = await adm.iq(room, 'set', admin(`<item affiliation='outcast' jid='${b.jid}'><reason>Treason</reason></item>`));
    assert.equal(res.attrs.type, 'result');
    const self = await b.next(presenceOf(`${room}/bee`, (s) => s.attrs.type === 'unavailable'));
    assert.deepEqual(statusCodes(self).sort(), ['110', '301']);
    assert.equal(item(self)?.attrs.affiliation, 'outcast');
    const seen = await owner.next(presenceOf(`${room}/bee`, (s) => s.attrs.type === 'unavailable'));
    assert.deepEqual(statusCodes(seen), ['301']);
    assert.equal(await b.joinFails(room, 'bee'), 'forbidden');
    const list = await adm.iq(room, 'get', admin("<item affiliation='outcast'/>"));
    const items = list.getChild('query')?.getChildren('item') ?? [];
    assert.deepEqual(items.map((i) => [i.attrs.jid, i.attrs.affiliation, i.getChildText('reason')]), [[b.bare, 'outcast', 'Treason']]);
    assert.equal(errorCondition(await adm.iq(room, 'set', admin(`<item affiliation='outcast' jid='${owner.bare}'/>`))), 'not-allowed');
    assert.equal(errorCondition(await adm.iq(room, 'set', admin(`<item affiliation='outcast' jid='${adm.bare}'/>`))), 'conflict');
    assert.equal(errorCondition(await b.iq(room, 'get', admin("<item affiliation='outcast'/>"))), 'forbidden');
    // A list change with one refused item changes nothing.
    const [c] = await users('banc') as [MucClient];
    const mixed = await adm.iq(room, 'set', admin(`<item affiliation='outcast' jid='${c.bare}'/><item affiliation='outcast' jid='${owner.bare}'/>`));
    assert.equal(errorCondition(mixed), 'not-allowed');
    await c.join(room, 'sea');
    await adm.iq(room, 'set', admin(`<item affiliation='none' jid='${b.bare}'/>`));
    await b.join(room, 'bee');
  });

  it('grants and revokes voice in a moderated room; an admin\'s voice cannot be revoked', async () => {
    const [owner, adm, b] = await users('vox', 'voxadm', 'voxb') as [MucClient, MucClient, MucClient];
    const room = roomName('voices');
    await createRoom(owner, room, 'boss', { 'muc#roomconfig_moderatedroom': '1', 'muc#roomconfig_roomadmins': adm.bare });
    const ja = await adm.join(room, 'adm');
    assert.deepEqual([item(ja.self)?.attrs.affiliation, item(ja.self)?.attrs.role], ['admin', 'moderator']);
    const jb = await b.join(room, 'bee');
    assert.equal(item(jb.self)?.attrs.role, 'visitor');
    await adm.iq(room, 'set', admin("<item nick='bee' role='participant'><reason>worthy</reason></item>"));
    const voiced = await owner.next(presenceOf(`${room}/bee`, (s) => item(s)?.attrs.role === 'participant'));
    assert.equal(item(voiced)?.getChildText('reason'), 'worthy');
    await adm.iq(room, 'set', admin("<item nick='bee' role='visitor'/>"));
    await b.next(presenceOf(`${room}/bee`, (s) => item(s)?.attrs.role === 'visitor' && statusCodes(s).includes('110')));
    assert.equal(errorCondition(await adm.iq(room, 'set', admin("<item nick='boss' role='visitor'/>"))), 'not-allowed');
    // The voice list.
    await adm.iq(room, 'set', admin("<item nick='bee' role='participant'/>"));
    const voice = await owner.iq(room, 'get', admin("<item role='participant'/>"));
    assert.deepEqual(voice.getChild('query')?.getChildren('item').map((i) => i.attrs.nick), ['bee']);
  });

  it('manages membership: members-only entry, the member list, and removal of a former member (321)', async () => {
    const [owner, b, c] = await users('mem', 'memb', 'memc') as [MucClient, MucClient, MucClient];
    const room = roomName('members');
    await createRoom(owner, room, 'boss', { 'muc#roomconfig_membersonly': '1' });
    assert.equal(await b.joinFails(room, 'bee'), 'registration-required');
    await owner.iq(room, 'set', admin(`<item affiliation='member' jid='${b.bare}' nick='bee'/>`));
    // §9.5: a new member of a members-only room is invited.
    const invite = await b.next((s) => s.name === 'message' && s.attrs.from === room);
    assert.equal(invite.getChild('x', MUC_USER)?.getChild('invite')?.attrs.from, owner.bare);
    const jb = await b.join(room, 'bee');
    assert.deepEqual([item(jb.self)?.attrs.affiliation, item(jb.self)?.attrs.role], ['member', 'participant']);
    // The reserved nick is b's: c cannot take it even when b is away, and b learns it from the room.
    const nick = await b.iq(room, 'get', "<query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/>");
    assert.equal(nick.getChild('query')?.getChild('identity')?.attrs.name, 'bee');
    const list = await owner.iq(room, 'get', admin("<item affiliation='member'/>"));
    assert.deepEqual(list.getChild('query')?.getChildren('item').map((i) => [i.attrs.jid, i.attrs.nick]), [[b.bare, 'bee']]);
    // A semi-anonymous room keeps its member list from members.
    assert.equal(errorCondition(await b.iq(room, 'get', admin("<item affiliation='member'/>"))), 'forbidden');
    await owner.iq(room, 'set', admin(`<item affiliation='member' jid='${c.bare}'/>`));
    assert.equal(await c.joinFails(room, 'bee'), 'conflict');
    await owner.iq(room, 'set', admin(`<item affiliation='none' jid='${b.bare}'/>`));
    const removed = await b.next(presenceOf(`${room}/bee`, (s) => s.attrs.type === 'unavailable'));
    assert.deepEqual(statusCodes(removed).sort(), ['110', '321']);
    assert.equal(item(removed)?.attrs.affiliation, 'none');
    assert.equal(await b.joinFails(room, 'bee'), 'registration-required');
    await c.join(room, 'bee');
  });

  it('grants and revokes moderator status (admins only) and admin and owner status (owners only)', async () => {
    const [owner, adm, b, c] = await users('mod', 'modadm', 'modb', 'modc') as [MucClient, MucClient, MucClient, MucClient];
    const room = roomName('mods');
    await createRoom(owner, room, 'boss');
    await adm.join(room, 'adm');
    await b.join(room, 'bee');
    await c.join(room, 'sea');
    assert.equal(errorCondition(await b.iq(room, 'set', admin(`<item affiliation='admin' jid='${b.bare}'/>`))), 'forbidden');
    await owner.iq(room, 'set', admin(`<item affiliation='admin' jid='${adm.bare}'/>`));
    const promoted = await c.next(presenceOf(`${room}/adm`, (s) => item(s)?.attrs.affiliation === 'admin'));
    assert.equal(item(promoted)?.attrs.role, 'moderator');
    assert.equal(errorCondition(await adm.iq(room, 'set', admin(`<item affiliation='admin' jid='${b.bare}'/>`))), 'forbidden');
    await adm.iq(room, 'set', admin("<item nick='bee' role='moderator'/>"));
    await c.next(presenceOf(`${room}/bee`, (s) => item(s)?.attrs.role === 'moderator'));
    // A mere moderator may not grant moderator status, nor take it from an admin.
    assert.equal(errorCondition(await b.iq(room, 'set', admin("<item nick='sea' role='moderator'/>"))), 'forbidden');
    assert.equal(errorCondition(await adm.iq(room, 'set', admin("<item nick='boss' role='participant'/>"))), 'not-allowed');
    await adm.iq(room, 'set', admin("<item nick='bee' role='participant'/>"));
    await c.next(presenceOf(`${room}/bee`, (s) => item(s)?.attrs.role === 'participant'));
    const mods = await adm.iq(room, 'get', admin("<item role='moderator'/>"));
    assert.deepEqual(mods.getChild('query')?.getChildren('item').map((i) => i.attrs.nick).sort(), ['adm', 'boss']);
    // Owner lists: a second owner, then the first steps down; the last owner cannot.
    await owner.iq(room, 'set', admin(`<item affiliation='owner' jid='${adm.bare}'/>`));
    const owners = await owner.iq(room, 'get', admin("<item affiliation='owner'/>"));
    assert.deepEqual(owners.getChild('query')?.getChildren('item').map((i) => i.attrs.jid).sort(), [adm.bare, owner.bare].sort());
    await owner.iq(room, 'set', admin(`<item affiliation='admin' jid='${owner.bare}'/>`));
    assert.equal(errorCondition(await adm.iq(room, 'set', admin(`<item affiliation='member' jid='${adm.bare}'/>`))), 'conflict');
    const admins = await adm.iq(room, 'get', admin("<item affiliation='admin'/>"));
    assert.deepEqual(admins.getChild('query')?.getChildren('item').map((i) => i.attrs.jid), [owner.bare]);
  });

  it('tells occupants of configuration changes (104, 172, 170) and removes non-members from a room made members-only (322)', async () => {
    const [owner, b] = await users('cfg', 'cfgb') as [MucClient, MucClient];
    const room = roomName('config');
    await createRoom(owner, room, 'boss');
    await b.join(room, 'bee');
    await owner.iq(room, 'set', configForm({ 'muc#roomconfig_roomname': 'Renamed' }));
    const notice = await b.next((s) => s.name === 'message' && s.attrs.from === room && statusCodes(s).length > 0);
    assert.deepEqual(statusCodes(notice), ['104']);
    await owner.iq(room, 'set', configForm({ 'muc#roomconfig_whois': 'anyone' }));
    assert.deepEqual(statusCodes(await b.next((s) => s.name === 'message' && s.attrs.from === room && statusCodes(s).length > 0)), ['172']);
    await owner.iq(room, 'set', configForm({ 'muc#roomconfig_persistentroom': '1' }));
    // A room made persistent starts archiving (the default), which is a privacy change: 170 with 104.
    assert.deepEqual(statusCodes(await b.next((s) => s.name === 'message' && s.attrs.from === room && statusCodes(s).length > 0)).sort(), ['104', '170']);
    await owner.iq(room, 'set', configForm({ 'muc#roomconfig_membersonly': '1' }));
    const removed = await b.next(presenceOf(`${room}/bee`, (s) => s.attrs.type === 'unavailable'));
    assert.deepEqual(statusCodes(removed).sort(), ['110', '322']);
    // Non-owners are refused configuration.
    assert.equal(errorCondition(await b.iq(room, 'set', configForm({ 'muc#roomconfig_membersonly': '0' }))), 'forbidden');
  });

  it('destroys a room with an alternate venue and reason; only owners may', async () => {
    const [owner, b] = await users('dest', 'destb') as [MucClient, MucClient];
    const room = roomName('doomed');
    await createRoom(owner, room, 'boss', { 'muc#roomconfig_persistentroom': '1' });
    await b.join(room, 'bee');
    const destroy = `<query xmlns='${MUC_OWNER}'><destroy jid='elsewhere${n}@${SERVICE}'><reason>Macbeth doth come.</reason></destroy></query>`;
    assert.equal(errorCondition(await b.iq(room, 'set', destroy)), 'forbidden');
    assert.equal((await owner.iq(room, 'set', destroy)).attrs.type, 'result');
    for (const [c, nick] of [[owner, 'boss'], [b, 'bee']] as const) {
      const p = await c.next(presenceOf(`${room}/${nick}`, (s) => s.attrs.type === 'unavailable'));
      const d = p.getChild('x', MUC_USER)?.getChild('destroy');
      assert.equal(d?.attrs.jid, `elsewhere${n}@${SERVICE}`);
      assert.equal(d?.getChildText('reason'), 'Macbeth doth come.');
      assert.deepEqual([item(p)?.attrs.affiliation, item(p)?.attrs.role], ['none', 'none']);
    }
    // Gone: the name can be taken again, as a new room.
    const again = await b.join(room, 'bee');
    assert.ok(statusCodes(again.self).includes('201'));
    assert.equal(t.server.storage.muc !== undefined, true);
    assert.equal((await t.server.storage.muc.rooms(SERVICE)).some((r) => r.room.node === room.split('@')[0]), false);
  });
});
