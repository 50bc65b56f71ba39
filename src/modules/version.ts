// XEP-0092: Software Version <https://xmpp.org/extensions/xep-0092.html> 1.1
import { readFileSync } from 'node:fs';
import { release, type } from 'node:os';
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { xml } from '../xml/element.ts';

export const NS_VERSION = 'jabber:iq:version';

/** Parley's version as published, read once: the same file serves the sources and the built dist/. */
export function parleyVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export default defineModule({
  id: 'version',
  xeps: [{ xep: 92, version: '1.1', status: 'complete' }],
  options: z.strictObject({
    // Security Considerations: revealing the operating system invites attacks on it; off unless asked for.
    show_os: z.boolean().default(false).describe('include the operating system in software version answers'),
  }),
  setup(ctx) {
    const version = parleyVersion();
    const os = ctx.options.show_os ? `${type()} ${release()}` : undefined;
    ctx.disco.feature(NS_VERSION);
    ctx.iq.get(NS_VERSION, 'query', () => xml('query', { xmlns: NS_VERSION },
      xml('name', null, 'Parley'),
      xml('version', null, version),
      os !== undefined && xml('os', null, os)), { to: ['host'] });
  },
});
