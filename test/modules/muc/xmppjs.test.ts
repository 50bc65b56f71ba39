// Interop: two xmpp.js clients (an independent library) create a room, chat in it and leave.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../../helpers/server.ts';
import { connectClient, xml, type TestClient } from '../../helpers/xmpp-client.ts';

const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const ROOM = 'interop@conference.localhost';

describe('muc: with xmpp.js', () => {
  let t: TestServer;
  const clients: TestClient[] = [];
  before(async () => {
    t = await startServer();
    await t.register('romeo', 'pw');
    await t.register('juliet', 'pw');
  });
  after(async () => {
    for (const c of clients) await c.stop();
    await t.stop();
  });

  const codes = (s: { getChild(n: string, ns?: string): { getChildren(n: string): Array<{ attrs: Record<string, string> }> } | undefined }): string[] =>
    s.getChild('x', MUC_USER)?.getChildren('status').map((c) => c.attrs.code ?? '') ?? [];

  it('creates an instant room, joins, exchanges a groupchat message and leaves', async () => {
    const romeo = await connectClient({ port: t.port, username: 'romeo', password: 'pw' });
    const juliet = await connectClient({ port: t.port, username: 'juliet', password: 'pw' });
    clients.push(romeo, juliet);
    await romeo.xmpp.send(xml('presence', { to: `${ROOM}/romeo` }, xml('x', { xmlns: MUC })));
    const created = await romeo.next((s) => s.is('presence') && s.attrs.from === `${ROOM}/romeo`);
    assert.deepEqual(codes(created).sort(), ['110', '201']);
    await romeo.next((s) => s.is('message') && s.getChild('subject') !== undefined);
    const res = await romeo.xmpp.iqCaller.request(
      xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: `${MUC}#owner` }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
    assert.equal(res.attrs.type, 'result');

    await juliet.xmpp.send(xml('presence', { to: `${ROOM}/juliet` }, xml('x', { xmlns: MUC }, xml('history', { maxstanzas: '0' }))));
    const others = await juliet.next((s) => s.is('presence') && s.attrs.from === `${ROOM}/romeo`);
    assert.equal(others.getChild('x', MUC_USER)?.getChild('item')?.attrs.affiliation, 'owner');
    const self = await juliet.next((s) => s.is('presence') && s.attrs.from === `${ROOM}/juliet`);
    assert.ok(codes(self).includes('110'));
    await juliet.next((s) => s.is('message') && s.getChild('subject') !== undefined);
    await romeo.next((s) => s.is('presence') && s.attrs.from === `${ROOM}/juliet`);

    await romeo.xmpp.send(xml('message', { to: ROOM, type: 'groupchat', id: 'wherefore' }, xml('body', {}, 'But soft!')));
    const got = await juliet.next((s) => s.is('message') && s.attrs.id === 'wherefore');
    assert.equal(got.attrs.from, `${ROOM}/romeo`);
    assert.equal(got.getChildText('body'), 'But soft!');
    assert.equal(got.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by, ROOM);

    await juliet.xmpp.send(xml('presence', { to: `${ROOM}/juliet`, type: 'unavailable' }));
    const left = await romeo.next((s) => s.is('presence') && s.attrs.from === `${ROOM}/juliet` && s.attrs.type === 'unavailable');
    assert.equal(left.getChild('x', MUC_USER)?.getChild('item')?.attrs.role, 'none');
  });
});
