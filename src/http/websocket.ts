// RFC 7395: An Extensible Messaging and Presence Protocol (XMPP) Subprotocol for WebSocket
// <https://www.rfc-editor.org/rfc/rfc7395> (October 2014): the /ws endpoint on both HTTP listeners, one client
// session per WebSocket.
import type { IncomingMessage } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { createSecureContext } from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ParleyServer } from '../server.ts';
import { ClientSession } from '../c2s/session.ts';
import { standalone, WebSocketTransport } from '../c2s/transports/websocket.ts';
import { StreamError } from '../core/errors.ts';
import { ConnectionTicket, type Refusal } from '../c2s/limits/connection-guard.ts';
import { NS } from '../xml/ns.ts';
import { serialize } from '../xml/element.ts';
import { remoteAddressOf, type HttpRoutes } from './routes.ts';

export const WEBSOCKET_PATH = '/ws';
/** §3.1: the subprotocol a client must ask for in Sec-WebSocket-Protocol. */
const SUBPROTOCOL = 'xmpp';

/** Mounts /ws; returns what stops it (open streams end with system-shutdown). */
export function mountWebSocket(server: ParleyServer, routes: HttpRoutes): (() => void) | undefined {
  const opts = server.config.http.websocket;
  if (!opts.enabled) return undefined;
  const log = server.log.child({ component: 'websocket' });
  const limits = server.config.limits;
  const wss = new WebSocketServer({
    noServer: true,
    // A message holds one stanza: the post-authentication stanza limit bounds it (ws closes with 1009 above it);
    // before authentication the parser applies the smaller limit with a stream error.
    maxPayload: limits.stanza_size,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  const origins = opts.origins === undefined ? undefined : new Set(opts.origins);
  // SASL never reaches STARTTLS here (canStartTls is false), but the session's options carry a context.
  const cert = server.certificate;
  const secureContext = createSecureContext(cert ? { cert: cert.cert, key: cert.key } : {});
  const transports = new Set<WebSocketTransport>();
  const onHandlerFailure = (err: unknown, ip: string): void => {
    log.error({ err, ip }, 'connection handler failed; connection closed');
  };

  const guard = server.connectionGuard;
  const accept = (ws: WebSocket, req: IncomingMessage, socket: Duplex, secure: boolean, ticket: ConnectionTicket): void => {
    const transport = new WebSocketTransport(ws, {
      socket,
      secure,
      remoteAddress: remoteAddressOf(req),
      limits: { maxStanzaBytes: limits.stanza_size_preauth, maxDepth: limits.max_depth, maxAttrs: limits.max_attrs },
      readRate: limits.read_rate_preauth,
      onHandlerFailure,
    });
    transports.add(transport);
    ws.once('close', () => {
      transports.delete(transport);
      guard.release(ticket);
    });
    new ClientSession(transport, server, {
      // wss:// is TLS already; ws:// may authenticate only where plain_http allows ('required' then offers no SASL).
      starttls: secure || opts.plain_http ? 'off' : 'required',
      secureContext,
      guard,
      ticket,
    });
  };

  const unmount = routes.upgrade(WEBSOCKET_PATH, (req, socket, head, secure) => {
    if (!offersSubprotocol(req.headers['sec-websocket-protocol'])) {
      refuse(socket, 400, 'Bad Request', `The "${SUBPROTOCOL}" WebSocket subprotocol is required`);
      return;
    }
    const origin = req.headers.origin;
    if (origins && origin !== undefined && !origins.has(origin.replace(/\/$/, '').toLowerCase())) {
      log.debug({ origin, ip: remoteAddressOf(req) }, 'WebSocket origin refused');
      refuse(socket, 403, 'Forbidden', 'Origin not allowed');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // The connection caps of port 5222 apply (limits.connections); a refusal is a stream error, as there.
      const ticket = guard.admit(remoteAddressOf(req));
      if (ticket instanceof ConnectionTicket) accept(ws, req, socket, secure, ticket);
      else refuseStream(ws, ticket, log, remoteAddressOf(req));
    });
  });

  return () => {
    unmount();
    for (const t of [...transports]) t.shutdown(new StreamError('system-shutdown'));
    wss.close();
  };
}

/** Whether the comma-separated Sec-WebSocket-Protocol list (RFC 6455 §4.1) names the XMPP subprotocol. */
function offersSubprotocol(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(',').some((p) => p.trim() === SUBPROTOCOL);
}

/** RFC 6120 §4.9.1.2: the error may come before the client's header; here framed as RFC 7395 §3.6 has it. */
function refuseStream(ws: WebSocket, refusal: Refusal, log: { info(o: object, msg: string): void }, ip: string): void {
  log.info({ ip, condition: refusal.condition }, 'connection refused: too many connections');
  ws.on('error', () => undefined);
  ws.send(`<open xmlns="${NS.FRAMING}" id="${randomBytes(9).toString('base64url')}" version="1.0" xml:lang="en"/>`);
  ws.send(standalone(serialize(new StreamError(refusal.condition, refusal.text).toElement())));
  ws.send(`<close xmlns="${NS.FRAMING}"/>`);
  ws.close();
  setTimeout(() => ws.terminate(), 5000).unref();
}

function refuse(socket: Duplex, status: number, reason: string, text: string): void {
  const body = Buffer.from(text, 'utf8');
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${text}`);
}
