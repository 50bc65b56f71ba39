// XEP-0199: XMPP Ping <https://xmpp.org/extensions/xep-0199.html> 2.0.1 — server-to-client pings (§4.1) as a
// keepalive: a client silent for too long is pinged, and disconnected if it stays silent, so what is sent to it
// afterwards goes to offline storage instead of into a dead socket.
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { StreamError } from '../core/errors.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import { xml } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';

/** A ping in flight: when it left, and the session's last activity at that moment. */
type Probe = { sentAt: number; activityAt: number };
const PROBE = new SessionKey<Probe>('keepalive.probe');

export default defineModule({
  id: 'keepalive',
  xeps: [{ xep: 199, version: '2.0.1', status: 'complete' }],
  options: z.strictObject({
    idle_timeout: z.number().positive().default(300)
      .describe('seconds without a byte from a client (whitespace counts) before the server pings it'),
    ping_timeout: z.number().positive().default(30)
      .describe('seconds a pinged client has to send anything before it is disconnected with connection-timeout'),
  }),
  setup(ctx) {
    const { host } = ctx;
    const idleMs = ctx.options.idle_timeout * 1000;
    const pingMs = ctx.options.ping_timeout * 1000;
    let seq = 0;

    // One timer scans every session: a session costs a field read per round, never a timer of its own.
    const period = Math.min(10_000, Math.max(50, Math.min(idleMs, pingMs) / 4));
    ctx.timer(period, () => {
      const now = Date.now();
      let dead: C2sSession[] | undefined;
      for (const s of ctx.sessions.sessions()) {
        // A detached session (stream management) has no connection to ping; its own timeout ends it.
        if (s.host !== host || !s.active || s.detached || !s.jid) continue;
        const probe = s.get(PROBE);
        if (probe) {
          // Any bytes since the ping prove the connection alive: the pong, an error, a stanza or whitespace.
          if (s.lastActivity > probe.activityAt) s.set(PROBE, undefined);
          else if (now - probe.sentAt >= pingMs) (dead ??= []).push(s);
          continue;
        }
        if (now - s.lastActivity >= idleMs) {
          s.set(PROBE, { sentAt: now, activityAt: s.lastActivity });
          // The answer needs no matching: it ends at the host's IQ table like any unsolicited result.
          s.send(xml('iq', { type: 'get', id: `keepalive-${(seq++).toString(36)}`, from: host.name, to: s.jid.toString() },
            xml('ping', { xmlns: NS.PING })));
        }
      }
      // Closed after the scan: closing removes the session from the set being iterated.
      for (const s of dead ?? []) s.close(new StreamError('connection-timeout', 'No answer to a ping'));
    });
  },
});
