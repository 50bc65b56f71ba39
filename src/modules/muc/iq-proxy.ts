// XEP-0045 §17.4 (IQ business rules): an occupant's IQ to another occupant JID is passed to that occupant's real
// JID under a fresh id, and the answer back, so neither side learns the other's real JID. vCard requests go to the
// account (bare JID), which answers for it; anything else to the device that joined.
import { randomBytes } from 'node:crypto';
import { Element } from '../../xml/element.ts';
import type { Jid } from '../../xmpp/jid.ts';
import type { MucService } from './service.ts';

/** How long an answer is waited for; a request left unanswered is forgotten. */
const ANSWER_TIMEOUT_MS = 60_000;

type Pending = {
  /** The requester's real JID and its id. */
  requester: Jid;
  id: string;
  /** The address the request went to, which alone may answer. */
  target: Jid;
  /** The requester's and the target's occupant JIDs. */
  fromOccupant: Jid;
  toOccupant: Jid;
  timer: NodeJS.Timeout;
};

export class IqProxy {
  private readonly svc: MucService;
  private readonly pending = new Map<string, Pending>();

  constructor(svc: MucService) {
    this.svc = svc;
  }

  async forward(stanza: Element, requester: Jid, fromOccupant: Jid, toOccupant: Jid, target: Jid): Promise<void> {
    const id = `muc-${randomBytes(12).toString('base64url')}`;
    const copy = new Element('iq', { ...stanza.attrs, id });
    copy.children = [...stanza.children];
    const timer = setTimeout(() => this.pending.delete(id), ANSWER_TIMEOUT_MS);
    timer.unref();
    this.pending.set(id, { requester, id: stanza.attrs.id ?? '', target, fromOccupant, toOccupant, timer });
    await this.svc.send(copy, fromOccupant, target);
  }

  /** A result or error to an occupant JID: the answer to a forwarded request goes back to its requester. */
  async answer(stanza: Element, from: Jid, to: Jid): Promise<void> {
    const id = stanza.attrs.id;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p || id === undefined || !p.target.equals(from) || !p.fromOccupant.equals(to)) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    const copy = new Element('iq', { ...stanza.attrs, id: p.id });
    copy.children = [...stanza.children];
    await this.svc.send(copy, p.toOccupant, p.requester);
  }

  clear(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}
