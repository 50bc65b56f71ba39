// XEP-0045 entering and leaving rooms, over real sockets: discovery, instant and reserved rooms, the order and
// content of what a joining client gets, every admission error, nick changes, exits and sessions that end.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../helpers/server.ts';
import {
  MUC, MUC_OWNER, MUC_USER, MucClient, SERVICE, configForm, createRoom, errorCondition, item, statusCodes, type Element,
} from './helpers.ts';

const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

describe('muc: rooms', () => {
  let t: TestServer;
  const open: MucClient[] = [];
  let n = 0;

  before(async () => {
    t = await startServer({ modules: { muc: { max_occupants: 50 } } });
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
  });

  /** Fresh accounts, logged in. */
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
  const features = (q: Element | undefined): string[] => q?.getChildren('feature').map((f) => f.attrs.var ?? '') ?? [];

  it('is listed by the host and describes itself; public rooms are its items, hidden ones are not', async () => {
    const [a] = await users('disco') as [MucClient];
    const host = await a.iq('localhost', 'get', `<query xmlns='${DISCO_ITEMS}'/>`);
    assert.ok(host.getChild('query')?.getChildren('item').some((i) => i.attrs.jid === SERVICE));
    const info = await a.iq(SERVICE, 'get', `<query xmlns='${DISCO_INFO}'/>`);
    const identity = info.getChild('query')?.getChild('identity');
    assert.deepEqual({ category: identity?.attrs.category, type: identity?.attrs.type }, { category: 'conference', type: 'text' });
    assert.ok(features(info.getChild('query')).includes(MUC));
    assert.ok(features(info.getChild('query')).includes('http://jabber.org/protocol/muc#stable_id'));

    await createRoom(a, roomName('shown'), 'a', { 'muc#roomconfig_roomname': 'Shown Room' });
    await createRoom(a, roomName('hidden'), 'a', { 'muc#roomconfig_publicroom': '0' });
    const items = (await a.iq(SERVICE, 'get', `<query xmlns='${DISCO_ITEMS}'/>`)).getChild('query')?.getChildren('item') ?? [];
    assert.ok(items.some((i) => i.attrs.jid === roomName('shown') && i.attrs.name === 'Shown Room'));
    assert.ok(!items.some((i) => i.attrs.jid === roomName('hidden')));

    const roomInfo = (await a.iq(roomName('hidden'), 'get', `<query xmlns='${DISCO_INFO}'/>`)).getChild('query');
    const f = features(roomInfo);
    for (const v of [MUC, 'muc_hidden', 'muc_temporary', 'muc_open', 'muc_unmoderated', 'muc_semianonymous', 'muc_unsecured', 'urn:xmpp:occupant-id:0', 'http://jabber.org/protocol/muc#self-ping-optimization']) {
      assert.ok(f.includes(v), v);
    }
    const form = roomInfo?.getChild('x', 'jabber:x:data');
    const fields = new Map(form?.getChildren('field').map((x) => [x.attrs.var, x.getChildText('value')]));
    assert.equal(fields.get('FORM_TYPE'), 'http://jabber.org/protocol/muc#roominfo');
    assert.equal(fields.get('muc#roominfo_occupants'), '1');
    const none = await a.iq(`nothing${n}@${SERVICE}`, 'get', `<query xmlns='${DISCO_INFO}'/>`);
    assert.equal(errorCondition(none), 'item-not-found');
  });

  it('creates a locked room (201) that others cannot enter until the owner accepts the instant configuration', async () => {
    const [owner, other] = await users('own', 'oth') as [MucClient, MucClient];
    const room = roomName('instant');
    const r = await owner.join(room, 'boss');
    assert.deepEqual(statusCodes(r.self).sort(), ['110', '201']);
    assert.deepEqual({ affiliation: item(r.self)?.attrs.affiliation, role: item(r.self)?.attrs.role }, { affiliation: 'owner', role: 'moderator' });
    assert.equal(r.subject.getChildText('subject'), '');
    assert.equal(await other.joinFails(room, 'early'), 'item-not-found');
    const done = await owner.iq(room, 'set', `<query xmlns='${MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query>`);
    assert.equal(done.attrs.type, 'result');
    const joined = await other.join(room, 'later');
    assert.deepEqual(statusCodes(joined.self), ['110']);
    assert.equal(item(joined.self)?.attrs.role, 'participant');
  });

  it('gives the owner the configuration form of a reserved room and applies the submitted one', async () => {
    const [owner, other] = await users('resv', 'rother') as [MucClient, MucClient];
    const room = roomName('reserved');
    await owner.join(room, 'boss');
    const formIq = await owner.iq(room, 'get', `<query xmlns='${MUC_OWNER}'/>`);
    const form = formIq.getChild('query', MUC_OWNER)?.getChild('x', 'jabber:x:data');
    assert.equal(form?.attrs.type, 'form');
    const vars = form?.getChildren('field').map((f) => f.attrs.var) ?? [];
    for (const v of ['FORM_TYPE', 'muc#roomconfig_roomname', 'muc#roomconfig_roomdesc', 'muc#roomconfig_persistentroom', 'muc#roomconfig_publicroom',
      'muc#roomconfig_membersonly', 'muc#roomconfig_moderatedroom', 'muc#roomconfig_passwordprotectedroom', 'muc#roomconfig_roomsecret',
      'muc#roomconfig_maxusers', 'muc#roomconfig_whois', 'muc#maxhistoryfetch', 'muc#roomconfig_allowinvites', 'muc#roomconfig_allowpm',
      'muc#roomconfig_changesubject', 'muc#roomconfig_enablearchiving', 'x-parley#roomconfig_pushaway', 'muc#roomconfig_roomowners']) {
      assert.ok(vars.includes(v), v);
    }
    // A password-protected room without a password is refused (§10.1.3) and the room stays locked.
    const bad = await owner.iq(room, 'set', configForm({ 'muc#roomconfig_passwordprotectedroom': '1' }));
    assert.equal(errorCondition(bad), 'not-acceptable');
    assert.equal(await other.joinFails(room, 'x'), 'item-not-found');
    const ok = await owner.iq(room, 'set', configForm({ 'muc#roomconfig_roomname': 'The Den', 'muc#roomconfig_whois': 'anyone', 'muc#roomconfig_maxusers': '10' }));
    assert.equal(ok.attrs.type, 'result');
    const again = (await owner.iq(room, 'get', `<query xmlns='${MUC_OWNER}'/>`)).getChild('query')?.getChild('x');
    const values = new Map(again?.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.equal(values.get('muc#roomconfig_roomname'), 'The Den');
    assert.equal(values.get('muc#roomconfig_maxusers'), '10');
    // Non-anonymous: status 100 on entering, and everyone sees real JIDs.
    const joined = await other.join(room, 'guest');
    assert.ok(statusCodes(joined.self).includes('100'));
    assert.equal(item(joined.presences[0] as Element)?.attrs.jid, owner.jid);
    // Only owners get the form.
    assert.equal(errorCondition(await other.iq(room, 'get', `<query xmlns='${MUC_OWNER}'/>`)), 'forbidden');
  });

  it('cancelling the first configuration destroys the room', async () => {
    const [owner] = await users('cancel') as [MucClient];
    const room = roomName('cancelled');
    await owner.join(room, 'boss');
    const res = await owner.iq(room, 'set', `<query xmlns='${MUC_OWNER}'><x xmlns='jabber:x:data' type='cancel'/></query>`);
    assert.equal(res.attrs.type, 'result');
    const gone = await owner.next((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === `${room}/boss`);
    assert.ok(gone.getChild('x', MUC_USER)?.getChild('destroy'));
    const info = await owner.iq(room, 'get', `<query xmlns='${DISCO_INFO}'/>`);
    assert.equal(errorCondition(info), 'item-not-found');
  });

  it('sends others\' presence, then self-presence (110), then history, then the subject; JIDs only to moderators', async () => {
    const [owner, b, c] = await users('ord', 'ordb', 'ordc') as [MucClient, MucClient, MucClient];
    const room = roomName('order');
    await createRoom(owner, room, 'owner');
    owner.send(`<message to='${room}' type='groupchat' id='s1'><subject>Spells</subject></message>`);
    await owner.next((s) => s.name === 'message' && s.attrs.id === 's1');
    const jb = await b.join(room, 'bee');
    owner.send(`<message to='${room}' type='groupchat' id='h1'><body>first</body></message>`);
    b.send(`<message to='${room}' type='groupchat' id='h2'><body>second</body></message>`);
    await b.next((s) => s.attrs.id === 'h2');
    const jc = await c.join(room, 'sea');
    // Everyone else first, in the room's order, then self.
    assert.deepEqual(jc.presences.map((p) => p.attrs.from), [`${room}/owner`, `${room}/bee`]);
    assert.equal(jc.self.attrs.from, `${room}/sea`);
    // Semi-anonymous: a participant does not see real JIDs; the moderator does.
    for (const p of jc.presences) assert.equal(item(p)?.attrs.jid, undefined);
    const seenByOwner = await owner.next((s) => s.name === 'presence' && s.attrs.from === `${room}/sea`);
    assert.equal(item(seenByOwner)?.attrs.jid, c.jid);
    const seenByBee = await b.next((s) => s.name === 'presence' && s.attrs.from === `${room}/sea`);
    assert.equal(item(seenByBee)?.attrs.jid, undefined);
    // Occupant ids: one per occupant, the same for everyone who sees it.
    const oid = (s: Element): string | undefined => s.getChild('occupant-id', 'urn:xmpp:occupant-id:0')?.attrs.id;
    assert.ok(oid(seenByOwner));
    assert.equal(oid(seenByOwner), oid(seenByBee));
    assert.equal(oid(seenByOwner), oid(jc.self));
    assert.notEqual(oid(jb.self), oid(jc.self));
    // History with delay stamps from the room, then the subject with its delay.
    assert.deepEqual(jc.history.map((m) => m.getChildText('body')), ['first', 'second']);
    for (const m of jc.history) {
      const delay = m.getChild('delay', 'urn:xmpp:delay');
      assert.equal(delay?.attrs.from, room);
      assert.match(delay?.attrs.stamp ?? '', /^\d{4}-\d\d-\d\dT/);
    }
    assert.equal(jc.subject.getChildText('subject'), 'Spells');
    assert.equal(jc.subject.attrs.from, `${room}/owner`);
    assert.equal(jc.subject.getChild('delay', 'urn:xmpp:delay')?.attrs.from, room);
  });

  it('refuses entry with the spec\'s error for each rule', async () => {
    const [owner, b, c, d] = await users('err', 'errb', 'errc', 'errd') as [MucClient, MucClient, MucClient, MucClient];
    // Nick conflict (409).
    const open1 = roomName('open');
    await createRoom(owner, open1, 'owner');
    await b.join(open1, 'taken');
    assert.equal(await c.joinFails(open1, 'taken'), 'conflict');
    // No nick: jid-malformed.
    c.send(`<presence to='${open1}'><x xmlns='${MUC}'/></presence>`);
    const noNick = await c.next((s) => s.name === 'presence' && s.attrs.type === 'error');
    assert.equal(errorCondition(noNick), 'jid-malformed');
    assert.equal(noNick.getChild('error')?.attrs.by, open1);
    // Password.
    const pw = roomName('secret');
    await createRoom(owner, pw, 'owner', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldron' });
    assert.equal(await c.joinFails(pw, 'c'), 'not-authorized');
    assert.equal(await c.joinFails(pw, 'c', '<password>wrong</password>'), 'not-authorized');
    await c.join(pw, 'c', '<password>cauldron</password>');
    // Members-only.
    const members = roomName('members');
    await createRoom(owner, members, 'owner', { 'muc#roomconfig_membersonly': '1' });
    assert.equal(await d.joinFails(members, 'd'), 'registration-required');
    // Banned.
    const ban = await owner.iq(open1, 'set', `<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='outcast' jid='${d.bare}'/></query>`);
    assert.equal(ban.attrs.type, 'result');
    assert.equal(await d.joinFails(open1, 'd'), 'forbidden');
    // Full room: service-unavailable, but the owner still gets in.
    const full = roomName('full');
    await createRoom(owner, full, 'owner', { 'muc#roomconfig_maxusers': '2' });
    await b.join(full, 'b');
    assert.equal(await c.joinFails(full, 'c'), 'service-unavailable');
    await owner.leave(`${full}/owner`);
    await owner.join(full, 'owner');
    // Room creation is for local accounts; nicks of spaces only are refused.
    assert.equal(await c.joinFails(roomName('spaces'), '   '), 'not-acceptable');
  });

  it('reports a service-modified nick with 210 and tells a client that lost track it is not in the room', async () => {
    const [owner, b, c] = await users('nick', 'nickb', 'nickc') as [MucClient, MucClient, MucClient];
    const room = roomName('nicks');
    await createRoom(owner, room, 'owner');
    const j = await b.join(room, ' spaced  out ');
    assert.equal(j.self.attrs.from, `${room}/spaced out`);
    assert.ok(statusCodes(j.self).includes('210'));
    // Presence without the MUC element from someone not in the room: a kick for a technical reason (§7.2.?).
    c.send(`<presence to='${room}/ghost'/>`);
    const kicked = await c.next((s) => s.name === 'presence' && s.attrs.from === `${room}/ghost`);
    assert.equal(kicked.attrs.type, 'unavailable');
    assert.deepEqual(statusCodes(kicked).sort(), ['110', '307', '333']);
  });

  it('changes nicks with 303 and the new nick, and refuses a taken one', async () => {
    const [owner, b] = await users('chg', 'chgb') as [MucClient, MucClient];
    const room = roomName('change');
    await createRoom(owner, room, 'owner');
    await b.join(room, 'old');
    await owner.next((s) => s.name === 'presence' && s.attrs.from === `${room}/old`);
    b.send(`<presence to='${room}/owner'/>`);
    const conflict = await b.next((s) => s.name === 'presence' && s.attrs.type === 'error');
    assert.equal(errorCondition(conflict), 'conflict');
    b.send(`<presence to='${room}/new'><show>away</show></presence>`);
    for (const [c, self] of [[owner, false], [b, true]] as const) {
      const gone = await c.next((s) => s.name === 'presence' && s.attrs.from === `${room}/old`);
      assert.equal(gone.attrs.type, 'unavailable');
      assert.equal(item(gone)?.attrs.nick, 'new');
      assert.deepEqual(statusCodes(gone).sort(), self ? ['110', '303'] : ['303']);
      const back = await c.next((s) => s.name === 'presence' && s.attrs.from === `${room}/new`);
      assert.equal(back.attrs.type, undefined);
      assert.equal(back.getChildText('show'), 'away');
      assert.equal(statusCodes(back).includes('110'), self);
    }
  });

  it('reflects status changes; an exit and an ended session send unavailable with role none', async () => {
    const [owner, b, c] = await users('exit', 'exitb', 'exitc') as [MucClient, MucClient, MucClient];
    const room = roomName('exits');
    await createRoom(owner, room, 'owner');
    await b.join(room, 'bee');
    await c.join(room, 'sea');
    b.send(`<presence to='${room}/bee'><show>dnd</show><status>busy</status></presence>`);
    const upd = await owner.next((s) => s.name === 'presence' && s.attrs.from === `${room}/bee` && s.getChildText('show') === 'dnd');
    assert.equal(upd.getChildText('status'), 'busy');
    const self = await b.leave(`${room}/bee`);
    assert.equal(item(self)?.attrs.role, 'none');
    const left = await owner.next((s) => s.name === 'presence' && s.attrs.from === `${room}/bee` && s.attrs.type === 'unavailable');
    assert.equal(item(left)?.attrs.role, 'none');
    assert.deepEqual(statusCodes(left), []);
    // The session ends without unavailable presence: the service sends it for the user.
    c.close();
    const ended = await owner.next((s) => s.name === 'presence' && s.attrs.from === `${room}/sea` && s.attrs.type === 'unavailable');
    assert.equal(item(ended)?.attrs.role, 'none');
    // A client that is no longer in the room may not speak there.
    b.send(`<message to='${room}' type='groupchat' id='late'><body>still here?</body></message>`);
    const err = await b.next((s) => s.name === 'message' && s.attrs.type === 'error');
    assert.equal(errorCondition(err), 'not-acceptable');
  });

  it('destroys a temporary room when its last occupant leaves', async () => {
    const [owner] = await users('temp') as [MucClient];
    const room = roomName('temporary');
    await createRoom(owner, room, 'owner');
    await owner.leave(`${room}/owner`);
    const info = await owner.iq(room, 'get', `<query xmlns='${DISCO_INFO}'/>`);
    assert.equal(errorCondition(info), 'item-not-found');
  });

  it('lets two devices of one account share a nick: both get the room, the others see one occupant', async () => {
    const [owner] = await users('multi') as [MucClient];
    const room = roomName('devices');
    await createRoom(owner, room, 'owner');
    const second = await MucClient.login(t.port, owner.bare.split('@')[0] as string, 'phone');
    open.push(second);
    const j = await second.join(room, 'owner');
    assert.equal(item(j.self)?.attrs.affiliation, 'owner');
    const [b] = await users('multib') as [MucClient];
    await b.join(room, 'bee');
    b.send(`<message to='${room}' type='groupchat' id='both'><body>to both devices</body></message>`);
    await owner.next((s) => s.attrs.id === 'both');
    await second.next((s) => s.attrs.id === 'both');
    // One device leaves: nobody else is told; the other device stays.
    await second.leave(`${room}/owner`);
    await b.sync(room);
    assert.equal(b.take((s) => s.name === 'presence' && s.attrs.from === `${room}/owner`).length, 0);
    b.send(`<message to='${room}' type='groupchat' id='after'><body>still there</body></message>`);
    await owner.next((s) => s.attrs.id === 'after');
  });
  it('takes out an occupant whose address answers with an error (333), and resends the room to a client that rejoins', async () => {
    const [owner, b] = await users('ghost', 'ghostb') as [MucClient, MucClient];
    const room = roomName('ghosts');
    await createRoom(owner, room, 'owner');
    await b.join(room, 'bee');
    // A join from a client already in the room is a request to synchronise: the same stanzas as entering (§7.2.1).
    const again = await b.join(room, 'bee');
    assert.deepEqual(again.presences.map((p) => p.attrs.from), [`${room}/owner`]);
    assert.equal(again.subject.getChildText('subject'), '');
    // A delivery error from the occupant's device: it is treated as gone.
    b.send(`<message to='${room}/owner' type='error' id='e1'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`);
    const gone = await owner.next((s) => s.name === 'presence' && s.attrs.from === `${room}/bee` && s.attrs.type === 'unavailable');
    assert.deepEqual(statusCodes(gone), ['333']);
  });

  it('shows the presence of the roles the room broadcasts only', async () => {
    const [owner, b, c] = await users('bc', 'bcb', 'bcc') as [MucClient, MucClient, MucClient];
    const room = roomName('quietvisitors');
    await createRoom(owner, room, 'owner', { 'muc#roomconfig_moderatedroom': '1', 'muc#roomconfig_presencebroadcast': ['moderator', 'participant'] });
    const jb = await b.join(room, 'visitor');
    assert.equal(item(jb.self)?.attrs.role, 'visitor');
    assert.deepEqual(jb.presences.map((p) => p.attrs.from), [`${room}/owner`]);
    const jc = await c.join(room, 'other');
    assert.deepEqual(jc.presences.map((p) => p.attrs.from), [`${room}/owner`]);
    await owner.sync(room);
    assert.equal(owner.take((s) => s.name === 'presence' && s.attrs.from === `${room}/visitor`).length, 0);
  });
});

describe('muc: service limits', () => {
  let t: TestServer;
  const open: MucClient[] = [];
  before(async () => {
    t = await startServer({ modules: { muc: { max_rooms_per_user: 2, max_occupants: 3, max_nick_length: 8 } }, admins: ['boss@localhost'] });
    for (const u of ['boss', 'user', 'x1', 'x2', 'x3']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
  });

  it('limits rooms per user (policy-violation), occupants per room (service-unavailable) and nick length (not-acceptable)', async () => {
    const user = await MucClient.login(t.port, 'user');
    const boss = await MucClient.login(t.port, 'boss');
    open.push(user, boss);
    await createRoom(user, `one@${SERVICE}`, 'u');
    await createRoom(user, `two@${SERVICE}`, 'u');
    assert.equal(await user.joinFails(`three@${SERVICE}`, 'u'), 'policy-violation');
    // Server admins are not limited.
    for (const r of ['b1', 'b2', 'b3']) await createRoom(boss, `${r}@${SERVICE}`, 'boss');
    // The service caps a room's maxusers.
    const tooMany = await user.iq(`one@${SERVICE}`, 'set', configForm({ 'muc#roomconfig_maxusers': '10' }));
    assert.equal(errorCondition(tooMany), 'not-acceptable');
    const others: MucClient[] = [];
    for (const u of ['x1', 'x2', 'x3']) {
      const c = await MucClient.login(t.port, u);
      open.push(c);
      others.push(c);
    }
    await (others[0] as MucClient).join(`one@${SERVICE}`, 'x1');
    await (others[1] as MucClient).join(`one@${SERVICE}`, 'x2');
    assert.equal(await (others[2] as MucClient).joinFails(`one@${SERVICE}`, 'x3'), 'service-unavailable');
    assert.equal(await (others[2] as MucClient).joinFails(`two@${SERVICE}`, 'muchtoolong'), 'not-acceptable');
  });
});

describe('muc: restricted room creation', () => {
  let t: TestServer;
  const open: MucClient[] = [];
  before(async () => {
    t = await startServer({ modules: { muc: { create: 'admins' } }, admins: ['boss@localhost'] });
    for (const u of ['boss', 'user']) await t.register(u, 'pw');
  });
  after(async () => {
    for (const c of open) c.close();
    await t.stop();
  });

  it('lets only server admins create rooms (not-allowed for others), while anyone may enter them', async () => {
    const user = await MucClient.login(t.port, 'user');
    const boss = await MucClient.login(t.port, 'boss');
    open.push(user, boss);
    assert.equal(await user.joinFails(`mine@${SERVICE}`, 'u'), 'not-allowed');
    await createRoom(boss, `official@${SERVICE}`, 'boss');
    await user.join(`official@${SERVICE}`, 'u');
  });
});
