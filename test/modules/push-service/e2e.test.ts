// End to end: an app enables push toward the built-in push service (XEP-0357 §5), a message arrives while it
// is offline, the user's server publishes (the push module) and the push service sends it to (mock) APNs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../../src/config/load.ts';
import { builtinModules } from '../../../src/modules/index.ts';
import push from '../../../src/modules/push.ts';
import pushService from '../../../src/modules/push-service/index.ts';
import type { ModuleDefinition } from '../../../src/core/module.ts';
import { ParleyServer } from '../../../src/server.ts';
import { createSelfSigned } from '../../../src/tls/certificates.ts';
import { RawClient } from '../../helpers/raw-client.ts';
import { trust } from '../../helpers/server.ts';
import { MockApns, apnsKey, mockCertificate, tempDir, waitForJobs, type Recorded } from './mocks.ts';

const TOKEN = '0123456789abcdef'.repeat(4);

describe('push end to end', () => {
  const dir = tempDir();
  let mock: MockApns;
  let server: ParleyServer;
  let port = 0;
  const open: RawClient[] = [];

  before(async () => {
    const tls = await mockCertificate(dir);
    mock = await new MockApns(tls).listen();
    const pems = await createSelfSigned(['localhost']);
    writeFileSync(join(dir, 'server.crt'), pems.cert);
    writeFileSync(join(dir, 'server.key'), pems.key);
    trust(pems.cert);
    const config = parseConfig({
      hosts: ['localhost'],
      data_dir: join(dir, 'data'),
      tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') },
      listen: { c2s: { port: 0, bind: '127.0.0.1' }, c2s_direct_tls: { enabled: false }, http: { port: 0 }, https: { port: 0 } },
      modules: {
        push: { include_sender: true, include_body: true },
        push_service: {
          ca_file: tls.caFile, privacy: 'sender_and_body',
          apns: { key_file: apnsKey(dir).file, key_id: 'KEY1234567', team_id: 'TEAM123456', host: mock.origin },
        },
      },
    });
    // The push module may or may not be in the built-in list yet; the manager keys modules by id.
    const modules = [...builtinModules, push, pushService] as ModuleDefinition[];
    server = new ParleyServer(config, { modules, logger: pino({ level: process.env.PARLEY_TEST_LOG ?? 'silent' }), adminChannel: false });
    await server.start();
    port = server.addresses.c2s?.port ?? 0;
    await server.accounts.register('juliet', 'localhost', 'pw');
    await server.accounts.register('romeo', 'localhost', 'pw');
  });
  after(async () => {
    for (const c of open) c.destroy();
    await server.stop();
    await mock.close();
    rmSync(join(dir, 'data'), { recursive: true, force: true });
  });

  async function login(user: string): Promise<RawClient> {
    const c = await RawClient.connect(port);
    open.push(c);
    await c.login(user, 'pw');
    return c;
  }

  it('delivers a notification for a message stored offline to the device token', async () => {
    const juliet = await login('juliet');
    juliet.send(`<iq type='set' id='en1'><enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='${TOKEN}'>` +
      `<x xmlns='jabber:x:data' type='submit'>` +
      `<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>` +
      `<field var='provider'><value>apns</value></field>` +
      `<field var='topic'><value>com.example.chat</value></field>` +
      `</x></enable></iq>`);
    await juliet.expect(/<iq[^>]*type="result"[^>]*id="en1"|<iq[^>]*id="en1"[^>]*type="result"/);
    juliet.destroy();

    const romeo = await login('romeo');
    romeo.send(`<message to='juliet@localhost' type='chat' id='m1'><body>But soft!</body></message>`);
    const jobs = await waitForJobs({ server }, 'push_service:localhost:apns', (j) => j.some((x) => x.state === 'delivered'));
    assert.equal(jobs.length, 1);
    const req = mock.requests.at(-1) as Recorded;
    assert.equal(req.path, `/3/device/${TOKEN}`);
    assert.equal(req.headers['apns-topic'], 'com.example.chat');
    assert.deepEqual(JSON.parse(req.body), {
      aps: { alert: { title: 'romeo@localhost', body: 'But soft!' }, badge: 1, sound: 'default' },
      xmpp: { count: 1, sender: 'romeo@localhost', body: 'But soft!' },
    });
    // The registration is intact: the publish was answered with a result.
    assert.equal((await server.storage.push.list('localhost', 'juliet')).length, 1);
  });
});
