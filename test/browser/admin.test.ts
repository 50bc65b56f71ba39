// The web admin in headless Chromium: an admin logs in, creates a user and finds it in the list, kicks a
// connected client (which sees its stream closed), and logs out; a form without its CSRF token is refused; a
// hostile user name is shown as text.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startServer, type TestServer } from '../helpers/server.ts';
import { RawClient } from '../helpers/raw-client.ts';
import { confineToLoopback, launchChromium, screenshot, watchPage } from '../helpers/browser.ts';

describe('web admin in a browser', () => {
  let t: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let seen: ReturnType<typeof watchPage>;
  let outside: string[];
  let base: string;

  before(async () => {
    t = await startServer({ admins: ['boss@localhost'] });
    await t.register('boss', 'boss-pw');
    await t.register('alice', 'alice-pw');
    base = `http://127.0.0.1:${t.httpPort}`;
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    context.setDefaultTimeout(15_000);
    outside = await confineToLoopback(context);
    page = await context.newPage();
    seen = watchPage(page);
  });

  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('logs in with the admin JID and password', async () => {
    await page.goto(`${base}/admin/`);
    assert.equal(new URL(page.url()).pathname, '/admin/login');
    await screenshot(page, 'admin-login');
    await page.getByLabel('Admin JID').fill('boss@localhost');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Invalid JID or password').waitFor();
    await page.getByLabel('Password').fill('boss-pw');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Virtual hosts' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/admin/hosts');
    const cookie = (await context.cookies()).find((c) => c.name === 'parley_admin');
    assert.ok(cookie);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(cookie.path, '/admin');
    await screenshot(page, 'admin-hosts');
  });

  it('creates a user and sees it in the list', async () => {
    await page.getByRole('link', { name: 'Users' }).first().click();
    await page.getByRole('heading', { name: 'Users of localhost' }).waitFor();
    await page.getByLabel('User name').fill('dave');
    await page.locator('form.stack').first().getByLabel('Password').fill('dave-pw');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByText('Created dave@localhost').waitFor();
    await page.getByRole('link', { name: 'dave', exact: true }).waitFor();
    assert.equal(await t.server.hosts.get('localhost')?.auth.checkPassword('dave', 'dave-pw'), 'dave');
    await screenshot(page, 'admin-users');
    await page.getByRole('link', { name: 'dave', exact: true }).click();
    await page.getByRole('heading', { name: 'dave@localhost' }).waitFor();
    await screenshot(page, 'admin-user');
  });

  it('shows a user name with <script> as text', async () => {
    await page.goto(`${base}/admin/hosts/localhost/users`);
    const evil = '<script>alert("xss")</script>';
    await page.getByLabel('User name').fill(evil);
    await page.locator('form.stack').first().getByLabel('Password').fill('pw');
    await page.getByRole('button', { name: 'Create' }).click();
    const notice = page.locator('p.flash.error');
    await notice.waitFor();
    assert.match(await notice.innerText(), /<script>alert\("xss"\)<\/script>/, 'the name appears literally, as text');
    assert.equal(await page.locator('main script').count(), 0);
    await page.goto(`${base}/admin/hosts/localhost/users?q=${encodeURIComponent(evil)}`);
    assert.equal(await page.getByLabel('Filter').inputValue(), evil.toLowerCase());
    assert.equal(await page.locator('script').count(), 0);
    assert.deepEqual(seen.dialogs, [], 'no script ran');
    await screenshot(page, 'admin-escaped');
  });

  it('refuses a form posted without its CSRF token', async () => {
    await page.goto(`${base}/admin/hosts/localhost/users`);
    // The browser itself submits a form that lacks the token, as a forged request would.
    await page.evaluate(`(() => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/admin/hosts/localhost/users';
      for (const [name, value] of [['username', 'mallory'], ['password', 'pw']]) {
        const input = document.createElement('input');
        input.name = name;
        input.value = value;
        form.append(input);
      }
      document.body.append(form);
      form.submit();
    })()`);
    await page.getByRole('heading', { name: 'Error 403' }).waitFor();
    assert.match(await page.locator('main').innerText(), /CSRF/);
    assert.equal(await t.server.hosts.get('localhost')?.auth.userExists('mallory'), false);
    await screenshot(page, 'admin-csrf-refused');
  });

  it('lists the sessions and kicks a logged-in client, whose stream is closed', async () => {
    const raw = await RawClient.connect(t.port);
    try {
      await raw.login('alice', 'alice-pw', 'laptop');
      await page.goto(`${base}/admin/hosts`);
      await page.getByRole('navigation').getByRole('link', { name: 'Sessions' }).click();
      await page.getByRole('heading', { name: 'Online sessions' }).waitFor();
      const row = page.locator('tr', { hasText: 'alice@localhost' });
      assert.match(await row.innerText(), /laptop\s+tcp \(TLS\)\s+127\.0\.0\.1/);
      await screenshot(page, 'admin-sessions');
      await row.getByRole('button', { name: 'Kick' }).click();
      await page.getByText('Disconnected alice@localhost/laptop').waitFor();
      await raw.expect(/<stream:error><policy-violation/);
      await raw.closed();
      assert.equal(await page.locator('tr', { hasText: 'alice@localhost' }).count(), 0);
      await screenshot(page, 'admin-kicked');
    } finally {
      raw.destroy();
    }
  });

  it('shows the other pages', async () => {
    await t.server.storage.offline.store('localhost', 'alice', 'dave@localhost', '<message from="dave@localhost" to="alice@localhost" type="chat"><body>Are you there?</body></message>', 100);
    const kind = 'offline_webhook:localhost';
    const id = await t.server.storage.outbox.add('localhost', kind, '{}');
    await t.server.storage.outbox.markFailed(id, 'HTTP 503 from the webhook', Date.now(), true);
    for (const [path, heading] of [
      ['/admin/hosts/localhost/users/alice/roster', 'Roster of alice@localhost'],
      ['/admin/hosts/localhost/offline', 'Offline queues of localhost'],
      ['/admin/hosts/localhost/users/alice/offline', 'Offline messages of alice@localhost'],
      ['/admin/outbox', 'Outbox'],
      ['/admin/stats', 'Server statistics'],
    ] as const) {
      await page.goto(base + path);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await screenshot(page, `admin-${path.split('/').slice(2).join('-')}`);
    }
    await page.goto(`${base}/admin/outbox`);
    assert.match(await page.locator('main').innerText(), /HTTP 503 from the webhook/);
    await page.locator('tr', { hasText: kind }).getByRole('button', { name: 'Retry dead' }).click();
    await page.getByText(`1 job of ${kind} queued again`).waitFor();
    assert.equal((await t.server.storage.outbox.counts(kind)).dead, 0);
    await screenshot(page, 'admin-outbox-retried');
  });

  it('logs out', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Logged out' }).waitFor();
    assert.equal((await context.cookies()).some((c) => c.name === 'parley_admin'), false);
    await page.goto(`${base}/admin/hosts`);
    assert.equal(new URL(page.url()).pathname, '/admin/login');
    await screenshot(page, 'admin-logged-out');
    assert.deepEqual(seen.errors, [], 'no page errors or CSP violations');
    // The refused password (401) and the forged form (403) were the only HTTP errors.
    assert.deepEqual(seen.failed.map((f) => f.split(' ')[0]), ['401', '403']);
    assert.deepEqual(outside, []);
  });
});
