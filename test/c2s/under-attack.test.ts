// Everything at once, with the default limits: flooding clients, a storm of half-open connections from many
// addresses, oversized input and a client that stops reading, while an honest user logs in and chats. The honest
// user's messages all arrive, and the server's memory stays bounded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, type Socket } from 'node:net';
import { startServer } from '../helpers/server.ts';
import { RawClient, STREAM_HEADER } from '../helpers/raw-client.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapMiB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1048576;
}

/** A TCP connection that opens and then never completes its stream (half-open from the server's view). */
function halfOpen(port: number, localAddress: string, sendHeader: boolean): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => {
      if (sendHeader) s.write(STREAM_HEADER().slice(0, 60)); // part of a header, then silence
      resolve(s);
    });
    s.on('error', () => resolve(undefined));
    s.on('data', () => undefined);
  });
}

describe('under attack, with the default limits', () => {
  it('keeps serving an honest user while memory stays bounded', { timeout: 120_000 }, async () => {
    const t = await startServer();
    const sockets: Socket[] = [];
    const clients: RawClient[] = [];
    try {
      for (const u of ['honest1', 'honest2', 'flood1', 'flood2', 'flood3', 'sink']) await t.register(u, 'pw');
      const before = heapMiB();

      // A client that stops reading: it is sent far more than its send queue holds.
      const sink = await RawClient.connect(t.port);
      clients.push(sink);
      await sink.login('sink', 'pw', 'r');
      sink.send('<presence/>');
      sink.socket.pause();

      // Flooders: each writes 4 MiB of messages to the sink and pings to the server, as fast as TCP allows.
      const body = 'x'.repeat(4000);
      for (const user of ['flood1', 'flood2', 'flood3']) {
        const f = await RawClient.connect(t.port);
        clients.push(f);
        await f.login(user, 'pw', 'r');
        let chunk = '';
        for (let i = 0; i < 1000; i++) {
          chunk += `<message to='sink@localhost/r' type='chat'><body>${body}</body></message><iq type='get' id='p${i}'><ping xmlns='urn:xmpp:ping'/></iq>`;
        }
        f.send(chunk);
      }

      // A storm of half-open connections from ten addresses: 40 each, beyond the per-address cap of 20.
      for (let a = 2; a <= 11; a++) {
        for (let i = 0; i < 40; i++) {
          const s = await halfOpen(t.port, `127.0.0.${a}`, i % 2 === 0);
          if (s) sockets.push(s);
        }
      }
      // Oversized input before authentication: a never-ending start tag.
      const big = await RawClient.connect(t.port, { localAddress: '127.0.0.12' });
      clients.push(big);
      big.send(STREAM_HEADER() + `<message to='x@localhost'><body>${'y'.repeat(200_000)}`);

      // The honest users log in and chat meanwhile.
      const a = await RawClient.connect(t.port);
      const b = await RawClient.connect(t.port);
      clients.push(a, b);
      await a.login('honest1', 'pw', 'r');
      await b.login('honest2', 'pw', 'r');
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const start = performance.now();
        a.send(`<message to='honest2@localhost/r' type='chat' id='h${i}'><body>hello ${i}</body></message>`);
        await b.expect(new RegExp(`<body>hello ${i}</body>`), 20_000);
        latencies.push(performance.now() - start);
      }
      await big.expect(/<stream:error>[\s\S]*policy-violation/, 20_000);

      const during = heapMiB();
      const refused = sockets.filter((s) => s.destroyed || s.readableEnded).length;
      latencies.sort((x, y) => x - y);
      process.stderr.write(`# under attack: heap ${before.toFixed(1)} -> ${during.toFixed(1)} MiB, ${sockets.length} half-open ` +
        `(${refused} already closed), honest round trip p50 ${latencies[10]?.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms\n`);
      // 12 MiB written by the flooders and 400 connections: what the server keeps must stay far below that
      // multiplied out (each half-open connection is capped, each flood is paused, the sink's queue is bounded).
      assert.ok(during - before < 32, `heap grew by ${(during - before).toFixed(1)} MiB`);
      assert.ok(t.server.sessions.count <= 6, 'no session came out of the storm');
    } finally {
      for (const s of sockets) s.destroy();
      for (const c of clients) c.destroy();
      await t.stop();
    }
  });
});
