// Talks to a running server over its admin socket.
import { connect } from 'node:net';
import type { AdminResponse } from '../admin/admin-channel.ts';

/** Sends one command; resolves undefined when no server listens on the socket. */
export function adminRequest(path: string, cmd: string, args: string[]): Promise<AdminResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(JSON.stringify({ cmd, args }) + '\n'));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl >= 0) {
        socket.end();
        try {
          resolve(JSON.parse(buffer.slice(0, nl)) as AdminResponse);
        } catch (err) {
          reject(err);
        }
      }
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(undefined);
      else reject(err);
    });
  });
}
