// XEP-0352: Client State Indication <https://xmpp.org/extensions/xep-0352.html> 1.0.0
import { z } from 'zod';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import { SessionKey, type C2sSession } from '../core/session.ts';
import { Jid } from '../xmpp/jid.ts';
import { xml, type Element } from '../xml/element.ts';
import { NS } from '../xml/ns.ts';

export const CSI_NS = 'urn:xmpp:csi:0';

const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_CONFERENCE = 'jabber:x:conference';

/**
 * An inactive session's held stanzas, oldest first. Presence and chat-state-only messages are keyed by their
 * sender's full JID, so a newer one replaces (and moves behind) the older; the rest get a unique key.
 */
type CsiState = { held: Map<string, Element>; seq: number; releasing: WeakSet<Element> | undefined };

const STATE = new SessionKey<CsiState>('csi.state');

/**
 * The last c2s/outgoing handler: every other handler has seen (and may have suppressed) a stanza before it is
 * held, and a held stanza is released through session.send so the session's write path treats it like any other.
 */
const CSI_PRIORITY = PRIORITY.DELIVERY;

/** How a stanza for an inactive client is treated: sent now, or held (under a key when only the latest matters). */
export type CsiVerdict = { hold: false } | { hold: true; key: string | undefined };

/**
 * Modelled on Prosody's mod_csi_simple: anything a user would want to see or that expects an answer goes at
 * once; presence updates, chat states, receipts, markers and headlines (PEP notifications) wait.
 */
export function csiVerdict(stanza: Element): CsiVerdict {
  const from = stanza.attrs.from ?? '';
  if (stanza.name === 'presence') {
    const type = stanza.attrs.type;
    // Subscription requests and their answers ask the user for something; probes are never sent to clients.
    if (type !== undefined && type !== 'unavailable' && type !== 'error') return { hold: false };
    return { hold: true, key: `p\u0000${from}` };
  }
  if (stanza.name !== 'message') return { hold: false }; // IQs expect an answer
  const type = stanza.attrs.type;
  if (type === 'error') return { hold: false };
  if (type === 'headline') return { hold: true, key: undefined };
  // What the user did on another device: this one clears its notifications.
  if (stanza.getChild('sent', NS_CARBONS)) return { hold: false };
  const inner = stanza.getChild('received', NS_CARBONS)?.getChild('forwarded', NS_FORWARD)?.getChild('message') ?? stanza;
  if (important(inner)) return { hold: false };
  if (isChatStateOnly(inner)) return { hold: true, key: `c\u0000${inner === stanza ? from : inner.attrs.from ?? ''}` };
  return { hold: true, key: undefined };
}

function important(m: Element): boolean {
  if (m.getChild('body') || m.getChild('subject')) return true;
  if (m.getChild('x', NS_CONFERENCE) || m.getChild('x', NS_MUC_USER)?.getChild('invite')) return true;
  return false;
}

/** Only chat states (and hints or a thread): a newer one makes the older meaningless. */
function isChatStateOnly(m: Element): boolean {
  let state = false;
  for (const c of m.children) {
    if (typeof c === 'string') continue;
    const ns = c.attrs.xmlns;
    if (ns === NS.CHATSTATES) state = true;
    else if (ns !== NS.HINTS && c.name !== 'thread') return false;
  }
  return state;
}

export default defineModule({
  id: 'csi',
  xeps: [{ xep: 352, version: '1.0.0', status: 'complete' }],
  options: z.strictObject({
    queue_size: z.number().int().min(1).max(10_000).default(200)
      .describe('stanzas held for an inactive client; when full, they are all sent'),
  }),
  setup(ctx) {
    const max = ctx.options.queue_size;

    // §4.1: offered once the client has authenticated.
    ctx.fold('c2s/features', (_e, features) => [...features, xml('csi', { xmlns: CSI_NS })]);

    // XEP-0386 §2.3: the same <active/> or <inactive/> inside a Bind2 request sets the new session's state.
    ctx.hook('c2s/inline', ({ session, element, context }) => context === 'bind2' && csiState(session, element));
    ctx.hook('c2s/nonza', ({ session, element }) => csiState(session, element));

    function csiState(session: C2sSession, element: Element): boolean {
      if (element.attrs.xmlns !== CSI_NS) return false;
      if (element.name === 'inactive') {
        session.set(STATE, session.get(STATE) ?? { held: new Map(), seq: 0, releasing: undefined });
        return true;
      }
      if (element.name === 'active') {
        // §5.1: held stanzas are on their way before anything the client sends next is processed.
        const state = session.get(STATE);
        session.set(STATE, undefined);
        if (state) release(session, state);
        return true;
      }
      return false;
    }

    ctx.hook('c2s/outgoing', ({ session, stanza }) => {
      const state = session.get(STATE);
      if (!state) return false;
      if (state.releasing?.delete(stanza)) return false;
      if (session.detached) {
        // Nothing is written while detached: stream management keeps what is sent for replay, so what was held
        // joins it, and a resumed stream starts active (XEP-0352 §5.2).
        session.set(STATE, undefined);
        release(session, state);
        return false;
      }
      const verdict = csiVerdict(stanza);
      if (!verdict.hold) {
        // Held stanzas go first: a contact's presence stays in step with its messages.
        if (state.held.size > 0) release(session, state);
        return false;
      }
      const key = verdict.key ?? `#${state.seq++}`;
      state.held.delete(key);
      state.held.set(key, stanza);
      if (state.held.size >= max) release(session, state);
      return true;
    }, { priority: CSI_PRIORITY });

    // A session that ends for good with messages still held (receipts, markers, chat states): they are routed
    // again to the account, so they are stored for its next login or bounced, never silently lost. Held presence
    // is only a snapshot and goes with the session.
    ctx.hook('session/closed', async ({ session }) => {
      const state = session.get(STATE);
      if (!state || state.held.size === 0) return;
      session.set(STATE, undefined);
      for (const stanza of state.held.values()) {
        if (stanza.name !== 'message') continue;
        const from = Jid.tryParse(stanza.attrs.from ?? '') ?? ctx.host.jid;
        const to = Jid.tryParse(stanza.attrs.to ?? '') ?? session.jid;
        if (to) await ctx.router.route(stanza, from, to);
      }
    });

    /**
     * Sends what is held, in order. Each stanza goes through send() again, marked so this handler passes it:
     * with synchronous c2s/outgoing handlers, their writes are queued ahead of the stanza that triggered
     * the release.
     */
    function release(session: C2sSession, state: CsiState): void {
      const held = [...state.held.values()];
      state.held.clear();
      state.releasing ??= new WeakSet();
      for (const stanza of held) state.releasing.add(stanza);
      for (const stanza of held) session.send(stanza);
    }
  },
});
