// XEP-0363: HTTP File Upload <https://xmpp.org/extensions/xep-0363.html> 1.1.0 — an upload service on its own
// JID (upload.<host>) that grants slots to the host's accounts and serves their files over the HTTPS listener.
import { resolve } from 'node:path';
import { ConfigError, StanzaError } from '../../core/errors.ts';
import { defineModule } from '../../core/module.ts';
import { DEFAULT_ACCESS } from '../../auth/access.ts';
import { xml, type Element } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { Jid } from '../../xmpp/jid.ts';
import { errorReply } from '../../xmpp/stanza.ts';
import { infoElement, resultForm } from '../disco.ts';
import { UploadFiles, newSlotId } from './files.ts';
import { uploadHandler } from './http.ts';
import { UploadOptions } from './options.ts';
import { NS_UPLOAD, fileTooLarge, readSlotRequest, retryLater } from './request.ts';
import { uploadSecret } from './secret.ts';
import { slotToken } from './token.ts';

const SWEEP_BATCH = 200;
const SWEEP_ROUNDS = 50;
const RATE_WINDOW_MS = 60_000;

export default defineModule({
  id: 'upload',
  xeps: [{ xep: 363, version: '1.1.0', status: 'complete' }],
  enabledByDefault: true,
  options: UploadOptions,
  async setup(ctx) {
    const { host, storage, server, options: o } = ctx;
    const service = Jid.tryParse(o.jid ?? `upload.${host.name}`);
    if (!service || service.local !== '' || service.resource !== '') {
      throw new ConfigError([`modules.upload.jid: must be a bare domain, got ${o.jid}`]);
    }
    const serviceJid = service.toString();
    // XEP-0363 §4 wants TLS; plain HTTP only when that is the one listener (behind a TLS proxy, say).
    const base = server.httpUrls.https ?? server.httpUrls.http;
    if (base === undefined) {
      ctx.log.warn('no HTTP listener is enabled: the upload service is off');
      return;
    }
    if (o.access !== undefined) {
      const rules = { ...DEFAULT_ACCESS, ...server.config.access, ...server.config.host_config[host.name]?.access };
      if (rules[o.access] === undefined) throw new ConfigError([`modules.upload.access: no access rule named ${o.access}`]);
    }
    const key = uploadSecret(server.config.data_dir, o.secret);
    const files = new UploadFiles(resolve(server.config.data_dir, o.dir ?? 'upload'));
    try {
      await files.ensureHostDir(host.name);
    } catch (err) {
      throw new ConfigError([`modules.upload.dir: ${(err as Error).message}`]);
    }
    const path = `/upload/${encodeURIComponent(host.name)}`;
    const expireAfterMs = o.expire_after * 1000;
    const inProgress = new Set<string>();
    /** Times of the slots each account was granted in the last minute. */
    const granted = new Map<string, number[]>();

    function checkRate(user: string, now: number): void {
      if (o.slots_per_minute === 0) return;
      const times = (granted.get(user) ?? []).filter((t) => t > now - RATE_WINDOW_MS);
      granted.set(user, times);
      if (times.length >= o.slots_per_minute) {
        throw retryLater(`Too many upload slots: at most ${o.slots_per_minute} a minute`, (times[0] as number) + RATE_WINDOW_MS);
      }
    }

    /** §4: grants a slot to an account of this host, within the size limit, its quota and the request rate. */
    async function requestSlot(request: Element, from: Jid): Promise<Element> {
      if (from.local === '' || from.domain !== host.jid.domain) {
        throw StanzaError.notAllowed('Only accounts of this server may upload files');
      }
      if (o.access !== undefined && !server.access.allowed(o.access, { jid: from, host: host.name })) {
        throw StanzaError.notAllowed('This account may not upload files');
      }
      const req = readSlotRequest(request);
      if (req.size > o.max_file_size) throw fileTooLarge(o.max_file_size);
      const now = Date.now();
      checkRate(from.local, now);
      const slot = {
        host: host.name, id: newSlotId(), username: from.local, ...req,
        createdAt: now, expiresAt: now + Math.round(o.slot_ttl * 1000), uploadedAt: null,
      };
      const refused = await storage.upload.reserve(slot, o.quota, expireAfterMs > 0 ? now - expireAfterMs : 0);
      if (refused) {
        // The account's usage drops when its first pending slot lapses or its oldest file expires.
        const drops = [refused.firstPendingExpiry, expireAfterMs > 0 && refused.oldestUpload !== undefined ? refused.oldestUpload + expireAfterMs : undefined]
          .filter((t): t is number => t !== undefined);
        throw retryLater(`Quota reached: ${refused.used} of ${o.quota} bytes in use`, drops.length > 0 ? Math.min(...drops) : undefined);
      }
      if (o.slots_per_minute > 0) granted.get(from.local)?.push(now);
      const url = `${base}${path}/${slot.id}/${slotToken(key, slot)}/${encodeURIComponent(slot.filename)}`;
      ctx.log.debug({ user: from.bareString, slot: slot.id, size: slot.size }, 'upload slot granted');
      // No <header/>: the token in the URL is the whole authorisation (§4 allows only Authorization, Cookie, Expires).
      return xml('slot', { xmlns: NS_UPLOAD }, xml('put', { url }), xml('get', { url }));
    }

    async function answer(iq: Element, from: Jid, to: Jid): Promise<Element | undefined> {
      if (to.local !== '' || to.resource !== '') throw StanzaError.serviceUnavailable();
      const payload = iq.firstElement();
      const type = iq.attrs.type;
      if (type === 'get' && payload?.is('query', NS.DISCO_INFO)) {
        if (payload.attrs.node !== undefined) throw StanzaError.itemNotFound();
        // §3 with XEP-0128: the size limit travels with the identity and feature.
        return infoElement({
          identities: [{ category: 'store', type: 'file', name: 'HTTP File Upload' }],
          features: [NS.DISCO_INFO, NS.DISCO_ITEMS, NS_UPLOAD],
          forms: [resultForm(NS_UPLOAD, [{ var: 'max-file-size', values: [String(o.max_file_size)] }])],
        });
      }
      if (type === 'get' && payload?.is('query', NS.DISCO_ITEMS)) {
        if (payload.attrs.node !== undefined) throw StanzaError.itemNotFound();
        return xml('query', { xmlns: NS.DISCO_ITEMS });
      }
      if (type === 'get' && payload?.is('request', NS_UPLOAD)) return requestSlot(payload, from);
      throw StanzaError.serviceUnavailable();
    }

    async function deliver(stanza: Element, from: Jid, to: Jid): Promise<void> {
      const me = service as Jid;
      const bounce = async (err: StanzaError): Promise<void> => {
        const reply = errorReply(stanza, err);
        reply.attrs.from = to.toString();
        reply.attrs.to = from.toString();
        await ctx.router.route(reply, me, from);
      };
      if (stanza.name === 'iq') {
        const type = stanza.attrs.type;
        if (type !== 'get' && type !== 'set') return;
        let payload: Element | undefined;
        try {
          payload = await answer(stanza, from, to);
        } catch (err) {
          if (!(err instanceof StanzaError)) ctx.log.error({ err, from: from.toString() }, 'upload service request failed');
          await bounce(err instanceof StanzaError ? err : StanzaError.internal());
          return;
        }
        await ctx.router.route(xml('iq', { type: 'result', id: stanza.attrs.id, from: to.toString(), to: from.toString() }, payload), me, from);
        return;
      }
      // RFC 6120 §8.3: a message to an address that takes none bounces; presence is ignored.
      if (stanza.name === 'message' && stanza.attrs.type !== 'error') await bounce(StanzaError.serviceUnavailable());
    }

    /** Deletes files past expire_after and slots never used, a batch at a time. */
    let sweeping = false;
    let stopped = false;
    async function sweep(): Promise<void> {
      if (sweeping || stopped) return;
      sweeping = true;
      try {
        for (let round = 0; round < SWEEP_ROUNDS && !stopped; round++) {
          const now = Date.now();
          const batch = await storage.upload.expired(host.name, {
            uploadedBefore: expireAfterMs > 0 ? now - expireAfterMs : undefined,
            // A PUT that began before its slot expired is in inProgress and left alone.
            pendingBefore: now,
            limit: SWEEP_BATCH,
          });
          const removed: string[] = [];
          for (const slot of batch) {
            if (inProgress.has(slot.id)) continue;
            try {
              await files.remove(host.name, slot.id);
              removed.push(slot.id);
            } catch (err) {
              ctx.log.warn({ err, slot: slot.id }, 'could not delete an expired upload');
            }
          }
          await storage.upload.remove(host.name, removed);
          if (removed.length > 0) ctx.log.debug({ count: removed.length }, 'expired uploads deleted');
          if (batch.length < SWEEP_BATCH || removed.length === 0) break;
        }
        const cutoff = Date.now() - RATE_WINDOW_MS;
        for (const [user, times] of granted) if ((times.at(-1) ?? 0) <= cutoff) granted.delete(user);
      } catch (err) {
        if (!stopped) ctx.log.error({ err }, 'upload expiry sweep failed');
      } finally {
        sweeping = false;
      }
    }

    try {
      ctx.onStop(ctx.router.addRoute(service.domain, deliver));
    } catch (err) {
      // A host's own name, or the same jid for two hosts (set jid per host then).
      throw new ConfigError([`modules.upload.jid: ${(err as Error).message}`]);
    }
    ctx.disco.item({ jid: serviceJid, name: 'HTTP File Upload' });
    const handler = uploadHandler({ host: host.name, store: storage.upload, files, key, expireAfterMs, inProgress, log: ctx.log });
    for (const method of ['PUT', 'GET', 'HEAD', 'OPTIONS']) ctx.http.route(method, path, handler, { prefix: true });

    // An account's files go with it.
    ctx.hook('account/removed', async ({ user }) => {
      const slots = await storage.upload.listByOwner(host.name, user.local);
      for (const s of slots) await files.remove(host.name, s.id);
      await storage.upload.remove(host.name, slots.map((s) => s.id));
    });

    ctx.timer(o.cleanup_interval * 1000, () => void sweep());
    // A first sweep soon after start, so a server restarted more often than the interval still cleans up.
    const first = setTimeout(() => void sweep(), 5000);
    first.unref();
    ctx.onStop(() => {
      stopped = true;
      clearTimeout(first);
    });
    ctx.log.info({ jid: serviceJid, url: `${base}${path}/`, max_file_size: o.max_file_size }, 'upload service ready');
  },
});
