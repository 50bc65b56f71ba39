// Headless Chromium for browser tests: Debian's chromium driven by playwright-core (no browser download), a
// fresh profile per launch, and screenshots saved outside the repository.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The Chromium binary: $PARLEY_CHROMIUM, else Debian's. */
export function chromiumPath(): string {
  return process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
}

const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/**
 * Launches headless Chromium, or fails with what to do: a missing browser must fail the test run, not skip it.
 * Playwright gives every launch a new temporary profile (user-data-dir) and removes it on close.
 */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new Error(`Chromium is not installed at ${executablePath}: the browser tests need it. Install it with "apt-get install -y chromium" (or set PARLEY_CHROMIUM to a Chromium binary).`);
  }
  return chromium.launch({ executablePath, headless: true, args: ARGS, timeout: 60_000 });
}

let announced = false;

/** The directory for screenshots: $PARLEY_TEST_ARTIFACTS, else <tmp>/parley-test-artifacts. Printed once. */
export function artifactsDir(): string {
  const dir = process.env.PARLEY_TEST_ARTIFACTS ?? join(tmpdir(), 'parley-test-artifacts');
  mkdirSync(dir, { recursive: true });
  if (!announced) {
    announced = true;
    console.log(`# browser test screenshots: ${dir}`);
  }
  return dir;
}

/** Saves a full-page screenshot as <artifacts>/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(artifactsDir(), `${name}.png`);
  // Finished animations: Converse fades its login form in.
  await page.screenshot({ path, fullPage: true, animations: 'disabled' });
  return path;
}

/**
 * Collects what would show a page misbehaving: uncaught errors and console errors (CSP violations among them),
 * HTTP errors by URL (the browser's own /favicon.ico aside), dialogs (an injected alert()).
 */
export function watchPage(page: Page): { errors: string[]; failed: string[]; dialogs: string[] } {
  const seen = { errors: [] as string[], failed: [] as string[], dialogs: [] as string[] };
  page.on('pageerror', (err) => seen.errors.push(err.message));
  page.on('console', (msg) => {
    // Failed loads are reported with their URL below.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) seen.errors.push(msg.text());
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && new URL(res.url()).pathname !== '/favicon.ico') seen.failed.push(`${res.status()} ${res.url()}`);
  });
  page.on('dialog', (d) => {
    seen.dialogs.push(d.message());
    void d.dismiss();
  });
  return seen;
}

/**
 * Keeps a browser context on this machine: any request to a host other than loopback is aborted and recorded,
 * so a page that tries to reach third parties fails its test instead of sending traffic out.
 */
export async function confineToLoopback(context: BrowserContext): Promise<string[]> {
  const outside: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
      outside.push(url.href);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });
  return outside;
}
