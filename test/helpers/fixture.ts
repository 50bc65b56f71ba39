// One test server with fresh accounts per test, and the clients a test opens, closed together at the end.
import { startServer, type TestServer } from './server.ts';
import { RawClient } from './raw-client.ts';
import { connectClient, type TestClient } from './xmpp-client.ts';

export class Fixture {
  readonly t: TestServer;
  private round = 0;
  private readonly clients: TestClient[] = [];
  private readonly raws: RawClient[] = [];

  private constructor(t: TestServer) {
    this.t = t;
  }

  static async start(overrides: Record<string, unknown> = {}): Promise<Fixture> {
    return new Fixture(await startServer(overrides));
  }

  /** Registers accounts named after `names` plus a round number, so tests never share roster or storage state. */
  async users(...names: string[]): Promise<string[]> {
    this.round++;
    const out = names.map((x) => `${x}${this.round}`);
    for (const u of out) await this.t.register(u, 'pw');
    return out;
  }

  /** An xmpp.js client logged in as `user`. */
  async client(user: string, resource = 'r'): Promise<TestClient> {
    const c = await connectClient({ port: this.t.port, username: user, password: 'pw', resource });
    this.clients.push(c);
    return c;
  }

  /** A raw socket logged in as `user` (STARTTLS, PLAIN, bind). */
  async raw(user: string, resource = 'r'): Promise<RawClient> {
    const c = await RawClient.connect(this.t.port);
    this.raws.push(c);
    await c.login(user, 'pw', resource);
    return c;
  }

  async stop(): Promise<void> {
    for (const c of this.clients) await c.stop();
    for (const r of this.raws) r.destroy();
    await this.t.stop();
  }
}
