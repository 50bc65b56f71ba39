// Test clients for the chat service: a raw socket (test/helpers/raw-client.ts) whose input is parsed into elements,
// with an inbox to wait on, IQ round trips and a room join that collects everything the room sends on entering.
import { Element } from '../../../src/xml/element.ts';
import { StreamParser } from '../../../src/xml/parser.ts';
import { RawClient } from '../../helpers/raw-client.ts';

export const MUC = 'http://jabber.org/protocol/muc';
export const MUC_USER = 'http://jabber.org/protocol/muc#user';
export const MUC_ADMIN = 'http://jabber.org/protocol/muc#admin';
export const MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
export const SERVICE = 'conference.localhost';

const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

let seq = 0;
export const nextId = (prefix = 'id'): string => `${prefix}${++seq}`;

/** Escapes text for XML written by hand in tests. */
export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;');

export type JoinResult = { self: Element; presences: Element[]; history: Element[]; subject: Element };

export class MucClient {
  readonly raw: RawClient;
  readonly jid: string;
  readonly inbox: Element[] = [];
  private waiters: Array<() => void> = [];

  private constructor(raw: RawClient, jid: string) {
    this.raw = raw;
    this.jid = jid;
    const parser = new StreamParser({
      streamStart: () => undefined,
      stanza: (el) => {
        this.inbox.push(el);
        for (const w of this.waiters.splice(0)) w();
      },
      streamEnd: () => undefined,
      error: () => undefined,
    }, { maxStanzaBytes: 1 << 22, maxDepth: 64, maxAttrs: 256 });
    parser.write(Buffer.from(HEADER + raw.buffer, 'utf8'));
    raw.buffer = '';
    raw.socket.on('data', (d: string | Buffer) => parser.write(Buffer.from(d)));
  }

  /** Logs in and (unless told not to) sends initial presence, so messages to the bare JID reach this client. */
  static async login(port: number, user: string, resource = 'r', available = true): Promise<MucClient> {
    const raw = await RawClient.connect(port);
    const jid = await raw.login(user, 'pw', resource);
    const c = new MucClient(raw, jid);
    if (available) {
      c.send('<presence/>');
      await c.next((s) => s.name === 'presence' && s.attrs.from === jid);
    }
    return c;
  }

  get bare(): string {
    return this.jid.split('/')[0] as string;
  }

  send(xml: string): void {
    this.raw.send(xml);
  }

  /** Waits for (and takes from the inbox) the first stanza matching. */
  async next(match: (s: Element) => boolean, timeoutMs = 5000): Promise<Element> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Element;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.jid}: timed out; inbox:\n${this.inbox.map(String).join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Takes every stanza matching from the inbox, without waiting. */
  take(match: (s: Element) => boolean): Element[] {
    const out: Element[] = [];
    for (let i = 0; i < this.inbox.length;) {
      const s = this.inbox[i] as Element;
      if (match(s)) {
        out.push(s);
        this.inbox.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** Sends an IQ (the id is added) and waits for its result or error. */
  async iq(to: string, type: 'get' | 'set', payload: string): Promise<Element> {
    const id = nextId('iq');
    this.send(`<iq type='${type}' id='${id}' to='${to}'>${payload}</iq>`);
    return this.next((s) => s.name === 'iq' && s.attrs.id === id);
  }

  /**
   * A barrier: the room handles stanzas one at a time, so once it answers a ping everything it did before for this
   * client has been written to this client's stream.
   */
  async sync(room: string): Promise<void> {
    await this.iq(room, 'get', "<ping xmlns='urn:xmpp:ping'/>");
  }

  /** Enters a room and collects what it sends, up to the subject (§7.1); throws on an error presence. */
  async join(room: string, nick: string, extra = ''): Promise<JoinResult> {
    const occupant = `${room}/${nick}`;
    this.send(`<presence to='${esc(occupant)}'><x xmlns='${MUC}'>${extra}</x></presence>`);
    const presences: Element[] = [];
    let self: Element | undefined;
    for (;;) {
      const p = await this.next((s) => s.name === 'presence' && (s.attrs.from ?? '').startsWith(`${room}/`) || (s.name === 'presence' && s.attrs.type === 'error'));
      if (p.attrs.type === 'error') throw Object.assign(new Error(`join failed: ${errorCondition(p)}`), { stanza: p, condition: errorCondition(p) });
      presences.push(p);
      if (statusCodes(p).includes('110')) {
        self = p;
        break;
      }
    }
    const history: Element[] = [];
    for (;;) {
      const m = await this.next((s) => s.name === 'message' && s.attrs.type === 'groupchat' && (s.attrs.from ?? '').startsWith(room));
      if (m.getChild('subject') && !m.getChild('body')) return { self, presences: presences.slice(0, -1), history, subject: m };
      history.push(m);
    }
  }

  /** Expects the join to fail; returns the error condition. */
  async joinFails(room: string, nick: string, extra = ''): Promise<string> {
    try {
      await this.join(room, nick, extra);
    } catch (err) {
      const c = (err as { condition?: string }).condition;
      if (c !== undefined) return c;
      throw err;
    }
    throw new Error('the join succeeded');
  }

  /** Leaves a room and waits for its own unavailable presence. */
  async leave(occupant: string): Promise<Element> {
    this.send(`<presence to='${esc(occupant)}' type='unavailable'/>`);
    return this.next((s) => s.name === 'presence' && s.attrs.type === 'unavailable' && s.attrs.from === occupant && statusCodes(s).includes('110'));
  }

  close(): void {
    this.raw.destroy();
  }
}

export function statusCodes(s: Element): string[] {
  return s.getChild('x', MUC_USER)?.getChildren('status').map((c) => c.attrs.code ?? '') ?? [];
}

export function item(s: Element): Element | undefined {
  return s.getChild('x', MUC_USER)?.getChild('item');
}

export function errorCondition(s: Element): string | undefined {
  const e = s.getChild('error');
  return e?.getElements().find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')?.name;
}

/** The room's answer to a submitted configuration form: `fields` are var -> value(s). */
export function configForm(fields: Record<string, string | string[]>): string {
  const f = Object.entries(fields).map(([k, v]) =>
    `<field var='${k}'>${(Array.isArray(v) ? v : [v]).map((x) => `<value>${esc(x)}</value>`).join('')}</field>`).join('');
  return `<query xmlns='${MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>${f}</x></query>`;
}

/** Creates a room as `owner` (nick `nick`) with the given configuration (an instant room when none). */
export async function createRoom(owner: MucClient, room: string, nick: string, fields: Record<string, string | string[]> = {}): Promise<JoinResult> {
  const r = await owner.join(room, nick);
  if (!statusCodes(r.self).includes('201')) throw new Error(`room ${room} already existed`);
  const res = await owner.iq(room, 'set', configForm(fields));
  if (res.attrs.type !== 'result') throw new Error(`configuration failed: ${res.toString()}`);
  return r;
}

export function isFrom(from: string, name?: string): (s: Element) => boolean {
  return (s) => s.attrs.from === from && (name === undefined || s.name === name);
}

export { Element };
