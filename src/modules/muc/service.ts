// One chat service (conference.<host> by default): its rooms, the entry point for every stanza routed to its
// domain, one stanza at a time per room, and the means to send (rooms are stored by persistence.ts).
import { randomUUID } from 'node:crypto';
import { StanzaError } from '../../core/errors.ts';
import type { ModuleContext } from '../../core/module.ts';
import { Element, xml } from '../../xml/element.ts';
import { NS } from '../../xml/ns.ts';
import { Jid } from '../../xmpp/jid.ts';
import { errorReply, iqResult } from '../../xmpp/stanza.ts';
import { AwayNotifier } from './away.ts';
import { archived, type ConfigLimits } from './config.ts';
import { serviceInfo, serviceItems } from './disco.ts';
import { IqProxy } from './iq-proxy.ts';
import { TokenBucket } from './limits.ts';
import { MUC_NS } from './ns.ts';
import { defaultConfig, type MucConfig } from './options.ts';
import { Occupant, Room } from './room.ts';

/** An IQ request to a room or occupant, with the means to answer it before the handler's follow-up work. */
export type IqRequest = {
  svc: MucService;
  room: Room;
  stanza: Element;
  payload: Element;
  from: Jid;
  to: Jid;
  /** Sends the result now (once); the handler may go on to notify occupants afterwards. */
  reply(payload?: Element): Promise<void>;
};

export type Handlers = {
  presence(svc: MucService, stanza: Element, from: Jid, to: Jid): Promise<void>;
  message(svc: MucService, stanza: Element, from: Jid, to: Jid): Promise<void>;
  /** An IQ get or set to an existing room's bare JID; returns the result payload. */
  roomIq(req: IqRequest): Promise<Element | undefined | void>;
  /** An IQ get or set to an occupant JID. */
  occupantIq(svc: MucService, stanza: Element, from: Jid, to: Jid): Promise<void>;
};

export class MucService {
  readonly ctx: ModuleContext<MucConfig>;
  readonly jid: Jid;
  readonly options: MucConfig;
  readonly limits: ConfigLimits;
  readonly rooms = new Map<string, Room>();
  readonly away: AwayNotifier;
  readonly proxy: IqProxy;
  private readonly handlers: Handlers;
  private readonly queues = new Map<string, Promise<void>>();

  constructor(ctx: ModuleContext<MucConfig>, jid: Jid, handlers: Handlers) {
    this.ctx = ctx;
    this.jid = jid;
    this.options = ctx.options;
    this.handlers = handlers;
    const o = ctx.options;
    this.limits = { maxUsers: o.max_occupants, maxHistory: o.max_history, archiving: o.archiving, archiveDefault: o.archive_default };
    this.away = new AwayNotifier({ enabled: o.push_away.enabled, max: o.push_away.max, windowMs: o.push_away.window * 1000 }, ctx.server, ctx.log);
    this.proxy = new IqProxy(this);
  }

  get domain(): string {
    return this.jid.domain;
  }

  get log(): ModuleContext<MucConfig>['log'] {
    return this.ctx.log;
  }

  // ------------------------------------------------------------------------------------------ routing

  /** Everything routed to the service's domain comes here (registered with router.addRoute). */
  readonly deliver = async (stanza: Element, from: Jid, to: Jid): Promise<void> => {
    try {
      if (to.local === '') {
        await this.serviceStanza(stanza, from, to);
        return;
      }
      await this.serial(to.local, () => this.roomStanza(stanza, from, to));
    } catch (err) {
      await this.fail(stanza, from, to, err);
    }
  };

  /** Runs stanzas for one room one after another: a room's state changes in order, and what it sends stays in order. */
  serial(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.catch(() => undefined);
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  /**
   * Sends a stanza from the service (a room, an occupant JID) and waits until it has been routed, so what one room
   * sends one client arrives in order. Stanzas to this service's own rooms are not waited for: two rooms waiting for
   * each other's turn would wait forever.
   */
  readonly send = async (stanza: Element, from: Jid, to: Jid): Promise<void> => {
    stanza.attrs.from = from.toString();
    stanza.attrs.to = to.toString();
    if (to.domain === this.jid.domain) {
      void this.ctx.router.route(stanza, from, to);
      return;
    }
    await this.ctx.router.route(stanza, from, to);
  };

  /** Answers a stanza with an error from the address it was sent to, never an error to an error. */
  async fail(stanza: Element, from: Jid, to: Jid, err: unknown): Promise<void> {
    if (stanza.attrs.type === 'error') return;
    if (!(err instanceof StanzaError)) this.log.error({ err, to: to.toString(), kind: stanza.name }, 'chat service failed on a stanza');
    const e = err instanceof StanzaError ? err : StanzaError.internal();
    const by = to.local === '' ? this.jid.toString() : to.bare.toString();
    const reply = errorReply(stanza, e, by);
    // §7.2: a presence error carries an empty MUC element (never the password the join sent) and the error.
    if (stanza.name === 'presence') reply.children = [xml('x', { xmlns: MUC_NS.MUC }), reply.children.at(-1) as Element];
    await this.send(reply, to, from);
  }

  private async serviceStanza(stanza: Element, from: Jid, to: Jid): Promise<void> {
    if (to.resource !== '') throw StanzaError.serviceUnavailable();
    if (stanza.name === 'iq') {
      const type = stanza.attrs.type;
      if (type !== 'get' && type !== 'set') return;
      const payload = stanza.firstElement();
      let result: Element | undefined;
      if (type === 'get' && payload?.is('query', NS.DISCO_INFO)) result = serviceInfo(this, payload);
      else if (type === 'get' && payload?.is('query', NS.DISCO_ITEMS)) result = serviceItems(this, payload);
      else if (type === 'get' && payload?.is('ping', NS.PING)) result = undefined;
      else throw StanzaError.serviceUnavailable();
      await this.send(iqResult(stanza, result), to, from);
      return;
    }
    // The service itself takes no messages; presence to it means nothing.
    if (stanza.name === 'message' && stanza.attrs.type !== 'error') throw StanzaError.serviceUnavailable();
  }

  private async roomStanza(stanza: Element, from: Jid, to: Jid): Promise<void> {
    if (stanza.name === 'presence') return this.handlers.presence(this, stanza, from, to);
    if (stanza.name === 'message') return this.handlers.message(this, stanza, from, to);
    const type = stanza.attrs.type;
    if (type !== 'get' && type !== 'set') {
      // Answers to requests the room forwarded for an occupant (§17.4), or to nothing.
      if (to.resource !== '') await this.proxy.answer(stanza, from, to);
      return;
    }
    if (to.resource !== '') return this.handlers.occupantIq(this, stanza, from, to);
    const room = this.visibleRoom(to.local, from);
    const payload = stanza.firstElement();
    if (!payload) throw StanzaError.badRequest();
    let replied = false;
    const reply = async (p?: Element): Promise<void> => {
      if (replied) return;
      replied = true;
      await this.send(iqResult(stanza, p), to, from);
    };
    try {
      const result = await this.handlers.roomIq({ svc: this, room, stanza, payload, from, to, reply });
      await reply(result ?? undefined);
    } catch (err) {
      if (replied) this.log.error({ err, room: to.toString() }, 'room request failed after its answer');
      else throw err;
    }
  }

  /** A room as a user may address it: a locked room exists only for its owners (§7.2.10). */
  visibleRoom(node: string, from: Jid): Room {
    const room = this.rooms.get(node);
    if (!room || (room.locked && room.affiliationOf(from) !== 'owner')) throw StanzaError.itemNotFound('No such room');
    return room;
  }

  // -------------------------------------------------------------------------------------------- rooms

  newRoom(node: string): Room {
    const room = new Room({ node, jid: Jid.of(node, this.domain), config: defaultConfig(this.options, node), locked: true });
    this.rooms.set(node, room);
    return room;
  }

  newOccupant(room: Room, nick: string, session: Jid, presence: Element, role: Occupant['role']): Occupant {
    const o = this.options;
    return new Occupant({
      nick,
      jid: room.jid.withResource(nick),
      session,
      presence,
      role,
      occupantId: room.occupantIdFor(session.bare),
      rate: new TokenBucket(o.message_rate, o.message_burst, Date.now()),
    });
  }

  /** Rooms an account owns, for the per-user limit. */
  roomsOwnedBy(bare: Jid): number {
    let n = 0;
    for (const r of this.rooms.values()) if (r.affiliations.get(bare.bareString)?.affiliation === 'owner') n++;
    return n;
  }

  archived(room: Room): boolean {
    return archived(room.config, this.limits);
  }

  /** A fresh id for what the room generates. */
  id(): string {
    return randomUUID();
  }
}
