// The browser tests' launcher: without Chromium they fail and say how to install it, never pass silently.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium } from '../helpers/browser.ts';

describe('headless Chromium launcher', () => {
  it('fails with instructions when the binary is missing', async () => {
    const saved = process.env.PARLEY_CHROMIUM;
    process.env.PARLEY_CHROMIUM = '/nonexistent/chromium';
    try {
      await assert.rejects(launchChromium(), /Chromium is not installed at \/nonexistent\/chromium.*apt-get install -y chromium/);
    } finally {
      if (saved === undefined) delete process.env.PARLEY_CHROMIUM;
      else process.env.PARLEY_CHROMIUM = saved;
    }
  });
});
