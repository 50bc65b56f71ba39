// XEP-0045 messages over real sockets: in-room messages (stable ids, stanza-ids, occupant ids), subjects, history
// on entering with each limit, private messages, invitations (mediated and direct), voice requests, limits,
// XEP-0410 self-pings and IQs between occupants.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { MUC_ADMIN, MUC_USER, MucClient, SERVICE, createRoom, errorCondition, item, type Element } from './helpers.ts';

const SID = 'urn:xmpp:sid:0';
const OID = 'urn:xmpp:occupant-id:0';

describe('muc: messages', () => {
  let t: TestServer;
  const open: MucClient[] = [];
  let n = 0;

  before(async () => {
    t = await startServer({ modules: { muc: { message_rate: 1, message_burst: 8, max_message_size: 1024 } } });
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
  const msg = (id: string) => (s: Element): boolean => s.name === 'message' && s.attrs.id === id;

  it('reflects a message to every occupant with its id, the room\'s stanza-id and the sender\'s occupant id', async () => {
    const [a, b] = await users('gc', 'gcb') as [MucClient, MucClient];
    const room = roomName('talk');
    await createRoom(a, room, 'alice');
    const jb = await b.join(room, 'bob');
    // Ids claiming to be the room's, and occupant ids, are the room's to set: a client's are dropped.
    b.send(`<message to='${room}' type='groupchat' id='m1'><body>hello</body><stanza-id xmlns='${SID}' id='forged' by='${room}'/><occupant-id xmlns='${OID}' id='forged'/></message>`);
    const atA = await a.next(msg('m1'));
    const atB = await b.next(msg('m1'));
    for (const m of [atA, atB]) {
      assert.equal(m.attrs.from, `${room}/bob`);
      assert.equal(m.attrs.type, 'groupchat');
      assert.equal(m.getChildText('body'), 'hello');
      const sids = m.getChildren('stanza-id', SID);
      assert.equal(sids.length, 1);
      assert.equal(sids[0]?.attrs.by, room);
      assert.notEqual(sids[0]?.attrs.id, 'forged');
      const oids = m.getChildren('occupant-id', OID);
      assert.equal(oids.length, 1);
      assert.equal(oids[0]?.attrs.id, jb.self.getChild('occupant-id', OID)?.attrs.id);
    }
    assert.equal(atA.getChild('stanza-id', SID)?.attrs.id, atB.getChild('stanza-id', SID)?.attrs.id);
    // A message without id gets one, the same for every occupant.
    b.send(`<message to='${room}' type='groupchat'><body>no id</body></message>`);
    const x = await a.next((s) => s.getChildText('body') === 'no id');
    const y = await b.next((s) => s.getChildText('body') === 'no id');
    assert.ok(x.attrs.id);
    assert.equal(x.attrs.id, y.attrs.id);
  });

  it('changes the subject for moderators, and for participants only where the room allows', async () => {
    const [a, b] = await users('subj', 'subjb') as [MucClient, MucClient];
    const room = roomName('topics');
    await createRoom(a, room, 'alice');
    await b.join(room, 'bob');
    b.send(`<message to='${room}' type='groupchat' id='s1'><subject>mine now</subject></message>`);
    const denied = await b.next(msg('s1'));
    assert.equal(denied.attrs.type, 'error');
    assert.equal(errorCondition(denied), 'forbidden');
    a.send(`<message to='${room}' type='groupchat' id='s2'><subject>Fire Burn</subject></message>`);
    const changed = await b.next(msg('s2'));
    assert.equal(changed.attrs.from, `${room}/alice`);
    assert.equal(changed.getChildText('subject'), 'Fire Burn');
    // A subject with a body is a message, not a subject change.
    a.send(`<message to='${room}' type='groupchat' id='s3'><subject>ignored</subject><body>just talk</body></message>`);
    await b.next(msg('s3'));
    const room2 = roomName('opentopics');
    await createRoom(a, room2, 'alice', { 'muc#roomconfig_changesubject': '1' });
    await b.join(room2, 'bob');
    b.send(`<message to='${room2}' type='groupchat' id='s4'><subject>ours</subject></message>`);
    assert.equal((await a.next(msg('s4'))).getChildText('subject'), 'ours');
    const [c] = await users('subjc') as [MucClient];
    const jc = await c.join(room, 'sea');
    assert.equal(jc.subject.getChildText('subject'), 'Fire Burn');
  });

  it('sends the history a joining client asks for: maxstanzas, maxchars, seconds, since', async () => {
    const [a] = await users('hist') as [MucClient];
    const room = roomName('history');
    await createRoom(a, room, 'alice', { 'muc#maxhistoryfetch': '3' });
    for (let i = 1; i <= 5; i++) {
      a.send(`<message to='${room}' type='groupchat' id='h${i}'><body>line ${i}</body></message>`);
      await a.next(msg(`h${i}`));
    }
    const [b, c, d, e, f] = await users('hb', 'hc', 'hd', 'he', 'hf') as MucClient[] as [MucClient, MucClient, MucClient, MucClient, MucClient];
    // The room keeps 3.
    assert.deepEqual((await b.join(room, 'b')).history.map((m) => m.getChildText('body')), ['line 3', 'line 4', 'line 5']);
    assert.deepEqual((await c.join(room, 'c', "<history maxstanzas='2'/>")).history.map((m) => m.getChildText('body')), ['line 4', 'line 5']);
    assert.deepEqual((await d.join(room, 'd', "<history maxchars='0'/>")).history, []);
    assert.deepEqual((await e.join(room, 'e', `<history since='${new Date(Date.now() + 60_000).toISOString()}'/>`)).history, []);
    const all = await f.join(room, 'f', "<history seconds='3600' maxchars='100000'/>");
    assert.equal(all.history.length, 3);
    // maxchars counts whole stanzas: room for one message only gives the newest one.
    const [g] = await users('hg') as [MucClient];
    const sizes = all.history.map((m) => {
      const copy = m.toString().replace(/ to="[^"]*"/, '');
      return copy.length;
    });
    const one = await g.join(room, 'g', `<history maxchars='${(sizes[2] as number) + 5}'/>`);
    assert.deepEqual(one.history.map((m) => m.getChildText('body')), ['line 5']);
  });

  it('delivers private messages as allowpm says, marked with the MUC element', async () => {
    const [a, b, c] = await users('pm', 'pmb', 'pmc') as [MucClient, MucClient, MucClient];
    const room = roomName('private');
    await createRoom(a, room, 'alice');
    await b.join(room, 'bob');
    b.send(`<message to='${room}/alice' type='chat' id='p1'><body>psst</body></message>`);
    const got = await a.next(msg('p1'));
    assert.equal(got.attrs.from, `${room}/bob`);
    assert.equal(got.attrs.type, 'chat');
    assert.ok(got.getChild('x', MUC_USER));
    assert.ok(got.getChild('occupant-id', OID));
    b.send(`<message to='${room}/alice' type='groupchat' id='p2'><body>wrong type</body></message>`);
    assert.equal(errorCondition(await b.next(msg('p2'))), 'bad-request');
    b.send(`<message to='${room}/nobody' type='chat' id='p3'><body>hello?</body></message>`);
    assert.equal(errorCondition(await b.next(msg('p3'))), 'item-not-found');
    c.send(`<message to='${room}/alice' type='chat' id='p4'><body>outsider</body></message>`);
    assert.equal(errorCondition(await c.next(msg('p4'))), 'not-acceptable');
    const quiet = roomName('nopm');
    await createRoom(a, quiet, 'alice', { 'muc#roomconfig_allowpm': 'none' });
    await b.join(quiet, 'bob');
    b.send(`<message to='${quiet}/alice' type='chat' id='p5'><body>no</body></message>`);
    assert.equal(errorCondition(await b.next(msg('p5'))), 'forbidden');
  });

  it('mediates invitations and declines, and leaves direct (XEP-0249) invitations to the clients', async () => {
    const [a, b, c] = await users('inv', 'invb', 'invc') as [MucClient, MucClient, MucClient];
    const room = roomName('invites');
    await createRoom(a, room, 'alice', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'pw1' });
    a.send(`<message to='${room}' id='i1'><x xmlns='${MUC_USER}'><invite to='${b.bare}'><reason>join us</reason></invite></x></message>`);
    const inv = await b.next(msg('i1'));
    assert.equal(inv.attrs.from, room);
    const invite = inv.getChild('x', MUC_USER)?.getChild('invite');
    assert.equal(invite?.attrs.from, a.bare);
    assert.equal(invite?.getChildText('reason'), 'join us');
    assert.equal(inv.getChild('x', MUC_USER)?.getChildText('password'), 'pw1');
    b.send(`<message to='${room}' id='d1'><x xmlns='${MUC_USER}'><decline to='${a.bare}'><reason>busy</reason></decline></x></message>`);
    const dec = await a.next((s) => s.name === 'message' && s.getChild('x', MUC_USER)?.getChild('decline') !== undefined);
    assert.equal(dec.attrs.from, room);
    assert.equal(dec.getChild('x', MUC_USER)?.getChild('decline')?.attrs.from, b.bare);
    // An unknown local account cannot be invited.
    a.send(`<message to='${room}' id='i2'><x xmlns='${MUC_USER}'><invite to='nobody${n}@localhost'/></x></message>`);
    assert.equal(errorCondition(await a.next(msg('i2'))), 'item-not-found');
    // Members-only: a mere member may not invite unless the room allows it; an admin's invitee becomes a member.
    const members = roomName('club');
    await createRoom(a, members, 'alice', { 'muc#roomconfig_membersonly': '1' });
    a.send(`<message to='${members}' id='i3'><x xmlns='${MUC_USER}'><invite to='${b.bare}'/></x></message>`);
    await b.next(msg('i3'));
    await b.join(members, 'bob');
    b.send(`<message to='${members}' id='i4'><x xmlns='${MUC_USER}'><invite to='${c.bare}'/></x></message>`);
    assert.equal(errorCondition(await b.next(msg('i4'))), 'forbidden');
    assert.equal(await c.joinFails(members, 'sea'), 'registration-required');
    // Direct invitations go from client to client, untouched.
    a.send(`<message to='${c.bare}' id='x1'><x xmlns='jabber:x:conference' jid='${room}' password='pw1' reason='come'/></message>`);
    const direct = await c.next(msg('x1'));
    assert.equal(direct.getChild('x', 'jabber:x:conference')?.attrs.jid, room);
  });

  it('forbids visitors to speak in moderated rooms; a voice request reaches moderators and their approval gives voice', async () => {
    const [a, b] = await users('voice', 'voiceb') as [MucClient, MucClient];
    const room = roomName('moderated');
    await createRoom(a, room, 'alice', { 'muc#roomconfig_moderatedroom': '1' });
    const jb = await b.join(room, 'bob');
    assert.equal(item(jb.self)?.attrs.role, 'visitor');
    b.send(`<message to='${room}' type='groupchat' id='v1'><body>let me speak</body></message>`);
    assert.equal(errorCondition(await b.next(msg('v1'))), 'forbidden');
    b.send(`<message to='${room}' id='v2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role' type='list-single'><value>participant</value></field></x></message>`);
    const request = await a.next((s) => s.name === 'message' && s.getChild('x', 'jabber:x:data') !== undefined);
    assert.equal(request.attrs.from, room);
    const fields = new Map(request.getChild('x', 'jabber:x:data')?.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')]));
    assert.equal(fields.get('muc#roomnick'), 'bob');
    assert.equal(fields.get('muc#jid'), b.jid);
    // Only a moderator's approval counts.
    b.send(`<message to='${room}' id='v3'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#roomnick'><value>bob</value></field><field var='muc#request_allow'><value>true</value></field></x></message>`);
    assert.equal(errorCondition(await b.next(msg('v3'))), 'forbidden');
    a.send(`<message to='${room}' id='v4'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role'><value>participant</value></field><field var='muc#jid'><value>${b.jid}</value></field><field var='muc#roomnick'><value>bob</value></field><field var='muc#request_allow'><value>true</value></field></x></message>`);
    const voiced = await b.next((s) => s.name === 'presence' && s.attrs.from === `${room}/bob` && item(s)?.attrs.role === 'participant');
    assert.ok(voiced);
    b.send(`<message to='${room}' type='groupchat' id='v5'><body>thank you</body></message>`);
    assert.equal((await a.next(msg('v5'))).getChildText('body'), 'thank you');
  });

  it('answers oversized messages with policy-violation and bursts beyond the rate with resource-constraint', async () => {
    const [a] = await users('lim') as [MucClient];
    const room = roomName('limits');
    await createRoom(a, room, 'alice');
    a.send(`<message to='${room}' type='groupchat' id='big'><body>${'x'.repeat(2000)}</body></message>`);
    assert.equal(errorCondition(await a.next(msg('big'))), 'policy-violation');
    let limited: Element | undefined;
    for (let i = 0; i < 20 && !limited; i++) {
      a.send(`<message to='${room}' type='groupchat' id='r${i}'><body>${i}</body></message>`);
      const r = await a.next(msg(`r${i}`));
      if (r.attrs.type === 'error') limited = r;
    }
    assert.ok(limited, 'the rate limit was never reached');
    assert.equal(errorCondition(limited), 'resource-constraint');
    assert.equal(limited.getChild('error')?.attrs.type, 'wait');
  });

  it('answers a joined client\'s self-ping (XEP-0410) and not-acceptable once it has left; passes IQs between occupants', async () => {
    const [a, b] = await users('ping', 'pingb') as [MucClient, MucClient];
    const room = roomName('pings');
    await createRoom(a, room, 'alice');
    await b.join(room, 'bob');
    const ok = await b.iq(`${room}/bob`, 'get', "<ping xmlns='urn:xmpp:ping'/>");
    assert.equal(ok.attrs.type, 'result');
    assert.equal(ok.attrs.from, `${room}/bob`);
    // An IQ to another occupant reaches that occupant's device from the asker's occupant JID, and its answer comes back.
    const id = 'ver1';
    b.send(`<iq type='get' id='${id}' to='${room}/alice'><query xmlns='jabber:iq:version'/></iq>`);
    const forwarded = await a.next((s) => s.name === 'iq' && s.attrs.type === 'get');
    assert.equal(forwarded.attrs.from, `${room}/bob`);
    assert.notEqual(forwarded.attrs.id, id);
    a.send(`<iq type='result' id='${forwarded.attrs.id}' to='${room}/bob'><query xmlns='jabber:iq:version'><name>witch</name></query></iq>`);
    const answer = await b.next((s) => s.name === 'iq' && s.attrs.id === id);
    assert.equal(answer.attrs.type, 'result');
    assert.equal(answer.attrs.from, `${room}/alice`);
    assert.equal(answer.getChild('query')?.getChildText('name'), 'witch');
    await b.leave(`${room}/bob`);
    const gone = await b.iq(`${room}/bob`, 'get', "<ping xmlns='urn:xmpp:ping'/>");
    assert.equal(errorCondition(gone), 'not-acceptable');
    // Non-occupants may not address occupants (§6.7).
    const disco = await b.iq(`${room}/alice`, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>");
    assert.equal(errorCondition(disco), 'bad-request');
  });

  it('returns the occupant list by role to moderators only', async () => {
    const [a, b] = await users('roles', 'rolesb') as [MucClient, MucClient];
    const room = roomName('rolelist');
    await createRoom(a, room, 'alice');
    await b.join(room, 'bob');
    const list = await a.iq(room, 'get', `<query xmlns='${MUC_ADMIN}'><item role='participant'/></query>`);
    const items = list.getChild('query')?.getChildren('item') ?? [];
    assert.deepEqual(items.map((i) => [i.attrs.nick, i.attrs.jid, i.attrs.role, i.attrs.affiliation]), [['bob', b.jid, 'participant', 'none']]);
    assert.equal(errorCondition(await b.iq(room, 'get', `<query xmlns='${MUC_ADMIN}'><item role='moderator'/></query>`)), 'forbidden');
  });
});
