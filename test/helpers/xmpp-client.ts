// An independent client library (xmpp.js) connected to a test server, with a stanza inbox to wait on.
import { client, xml, type Element as XElement } from '@xmpp/client';

export { xml };
export type Stanza = XElement;

export type TestClient = {
  xmpp: ReturnType<typeof client>;
  jid: string;
  /** Waits for (and removes from the inbox) the first stanza matching. */
  next(match: (s: Stanza) => boolean, timeoutMs?: number): Promise<Stanza>;
  inbox: Stanza[];
  stop(): Promise<void>;
};

/** `service` (a ws:// or wss:// URL, say) takes the place of the TCP port. */
export async function connectClient(opts: { port?: number; service?: string; username: string; password: string; resource?: string; directTls?: boolean }): Promise<TestClient> {
  const xmpp = client({
    service: opts.service ?? `${opts.directTls ? 'xmpps' : 'xmpp'}://127.0.0.1:${opts.port ?? 0}`,
    domain: 'localhost',
    username: opts.username,
    password: opts.password,
    resource: opts.resource,
  });
  // Tests stop clients themselves; a reconnecting client would outlive its test.
  xmpp.reconnect.stop();
  const inbox: Stanza[] = [];
  const waiters: Array<() => void> = [];
  xmpp.on('stanza', (s: Stanza) => {
    inbox.push(s);
    for (const w of waiters.splice(0)) w();
  });
  xmpp.on('error', () => undefined);
  const address = await xmpp.start();
  const next = async (match: (s: Stanza) => boolean, timeoutMs = 5000): Promise<Stanza> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = inbox.findIndex(match);
      if (i >= 0) return inbox.splice(i, 1)[0] as Stanza;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; inbox: ${inbox.map(String).join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  };
  return {
    xmpp,
    jid: address.toString(),
    next,
    inbox,
    stop: async () => {
      try {
        await xmpp.stop();
      } catch {
        // already gone
      }
    },
  };
}
