// The browser chat client at /chat in headless Chromium: two people log in through Converse.js's own login form,
// over this server's XMPP WebSocket endpoint, and exchange messages; each sees the other's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.ts';
import { confineToLoopback, launchChromium, screenshot, watchPage } from '../helpers/browser.ts';

describe('browser chat with Converse.js', () => {
  let t: TestServer;
  let browser: Browser;
  const pages: Record<string, { page: Page; seen: ReturnType<typeof watchPage>; outside: string[] }> = {};

  before(async () => {
    t = await startServer();
    await t.register('alice', 'alice-pw');
    await t.register('bob', 'bob-pw');
    // Contacts already, so each finds the other in the roster.
    const item = (jid: string, name: string) => ({ jid, name, subscription: 'both' as const, ask: false, approved: false, groups: [] });
    await t.server.storage.roster.put('localhost', 'alice', item('bob@localhost', 'Bob'));
    await t.server.storage.roster.put('localhost', 'bob', item('alice@localhost', 'Alice'));
    browser = await launchChromium();
    // One browser context each: separate cookies and IndexedDB, as two people on two machines.
    for (const user of ['alice', 'bob']) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 750 } });
      context.setDefaultTimeout(20_000);
      const outside = await confineToLoopback(context);
      const page = await context.newPage();
      pages[user] = { page, seen: watchPage(page), outside };
    }
  });

  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  const of = (user: string): Page => (pages[user] as { page: Page }).page;

  it('loads the client and logs each user in with the login form', async () => {
    for (const [user, contact] of [['alice', 'Bob'], ['bob', 'Alice']] as const) {
      const page = of(user);
      await page.goto(`http://127.0.0.1:${t.httpPort}/chat/`);
      const jid = page.locator('#converse-login-jid');
      await jid.waitFor();
      assert.equal(await page.locator('#converse-login-password').inputValue(), '', 'no password is filled in');
      await screenshot(page, `chat-login-${user}`);
      // The default domain lets users type only their name.
      await jid.fill(user);
      await page.locator('#converse-login-password').fill(`${user}-pw`);
      await page.locator('#converse-login button[type=submit]').click();
      await page.locator('a.open-chat', { hasText: contact }).waitFor();
      await screenshot(page, `chat-roster-${user}`);
    }
    assert.equal(t.server.sessions.count, 2);
    const transports = [...t.server.sessions.sessions()].map((s) => s.transport);
    assert.ok(transports.every((x) => /websocket/i.test(x)), `sessions over the WebSocket: ${transports.join(', ')}`);
  });

  it('exchanges messages: each sees the other\'s', async () => {
    await of('bob').locator('a.open-chat', { hasText: 'Alice' }).click();
    await of('alice').locator('a.open-chat', { hasText: 'Bob' }).click();
    for (const [from, to, text] of [['alice', 'bob', 'Hello Bob, from the browser'], ['bob', 'alice', 'Hi Alice, got it']] as const) {
      const input = of(from).locator('textarea.chat-textarea');
      await input.waitFor();
      await input.fill(text);
      await input.press('Enter');
      await of(from).locator('.chat-msg__text', { hasText: text }).waitFor();
      await of(to).locator('.chat-msg__text', { hasText: text }).waitFor();
    }
    await screenshot(of('alice'), 'chat-conversation-alice');
    await screenshot(of('bob'), 'chat-conversation-bob');
    for (const user of ['alice', 'bob']) {
      const p = pages[user] as (typeof pages)[string];
      assert.deepEqual(p.seen.failed, [], `${user}: no failed requests`);
      assert.deepEqual(p.seen.errors.filter((e) => /Content Security Policy|Refused to/i.test(e)), [], `${user}: no CSP violations`);
      assert.deepEqual(p.outside, [], `${user}: the page asked for nothing outside this server`);
    }
  });
});
