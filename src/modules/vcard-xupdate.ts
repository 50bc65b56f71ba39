// XEP-0153: vCard-Based Avatars <https://xmpp.org/extensions/xep-0153.html> 1.1 — the server keeps the avatar
// hash in its users' presence, so contacts learn of an avatar even from clients that never computed it.
import { createHash } from 'node:crypto';
import { defineModule } from '../core/module.ts';
import { PRIORITY } from '../core/hooks.ts';
import type { Element } from '../xml/element.ts';
import { xml } from '../xml/element.ts';
import type { Jid } from '../xmpp/jid.ts';
import { loadVcard } from './vcard.ts';

export const NS_VCARD_UPDATE = 'vcard-temp:x:update';

/**
 * The hash to advertise for a vCard: the SHA-1 of the decoded BINVAL (§3.1), '' for a vCard without a photo
 * (an empty <photo/> means "no avatar", §4.1).
 */
export function photoHash(vcard: Element): string {
  const binval = vcard.getChild('PHOTO')?.getChildText('BINVAL');
  // §4.6: whitespace inside the base64 is ignored.
  const b64 = binval?.replace(/\s+/g, '') ?? '';
  if (b64 === '') return '';
  return createHash('sha1').update(Buffer.from(b64, 'base64')).digest('hex');
}

/** The presence with every client-sent update element replaced by the server's. */
function withHash(presence: Element, hash: string): void {
  presence.removeChildren((c) => c.name === 'x' && c.attrs.xmlns === NS_VCARD_UPDATE);
  presence.children.push(xml('x', { xmlns: NS_VCARD_UPDATE }, xml('photo', null, hash || undefined)));
}

export default defineModule({
  id: 'vcard_xupdate',
  xeps: [{ xep: 153, version: '1.1', status: 'complete' }],
  requires: ['vcard'],
  setup(ctx) {
    const { host, storage, sessions } = ctx;
    /**
     * Known hashes of accounts with a session: null when the account has no stored vCard (the client's element
     * is then left as it is, since the server knows nothing better). Dropped when the last session ends.
     */
    const hashes = new Map<string, string | null>();

    const hashOf = async (user: Jid): Promise<string | null> => {
      const cached = hashes.get(user.bareString);
      if (cached !== undefined) return cached;
      const vcard = await loadVcard(storage, host.name, user);
      const hash = vcard ? photoHash(vcard) : null;
      // Only cache while the user is online, or the map would grow with every account ever seen.
      if (sessions.resources(user.bare).length > 0) hashes.set(user.bareString, hash);
      return hash;
    };

    // Above the roster's broadcast, so the rewritten stanza is what contacts get and what probes are answered with.
    ctx.hook('pre-presence', async (e) => {
      const type = e.stanza.attrs.type;
      if (type !== undefined || !e.origin) return false;
      const hash = await hashOf(e.from);
      if (hash !== null) withHash(e.stanza, hash);
      return false;
    }, { priority: PRIORITY.FEATURE });

    // A new avatar: every available resource's current presence goes out again with the new hash, as if resent.
    ctx.hook('vcard/updated', async ({ user, vcard }) => {
      const hash = photoHash(vcard);
      const before = hashes.get(user.bareString);
      if (sessions.resources(user.bare).length === 0) {
        hashes.delete(user.bareString);
        return;
      }
      hashes.set(user.bareString, hash);
      if (before === hash) return;
      for (const s of sessions.available(user.bare)) {
        if (!s.presence) continue;
        const again = s.presence.clone();
        delete again.attrs.to;
        await ctx.router.fromClient(s, again);
      }
    });

    ctx.hook('session/closed', ({ session }) => {
      const jid = session.jid;
      if (jid && sessions.resources(jid.bare).length === 0) hashes.delete(jid.bareString);
    });
    ctx.hook('account/removed', ({ user }) => {
      hashes.delete(user.bareString);
    });
  },
});
