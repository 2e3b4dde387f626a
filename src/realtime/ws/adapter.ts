import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../../config.js';
import type { Metrics } from '../../http/metrics.js';
import { originAllowed } from '../../http/origin-policy.js';
import type { Logger } from '../../shared/logger.js';
import { CloseCode, PROTOCOL } from './close-codes.js';

/** One socket as the protocol sees it: no `ws` types cross this line. */
export interface ProtocolSocket {
  readonly id: string;
  /** The client's address (for per-IP limits). */
  readonly ip: string | undefined;
  /** Writes a frame, unless the socket is closing; a consumer that stopped reading is closed with 1013. */
  send(frame: string): void;
  close(code: number, reason: string): void;
  /** True once the socket is closing or closed: write nothing more. */
  readonly closing: boolean;
}

/**
 * What the protocol does with a socket: a message handler, and a close handler called once, as
 * soon as the socket starts closing (by either side), so nothing more is produced for it.
 */
export interface Protocol {
  opened(socket: ProtocolSocket): { message(data: string): Promise<void>; closed(): void };
}

/** One graphql-ws server on an HTTP server's upgrade path. */
export interface WsServer {
  /** Closes every socket with 1001 (clients reconnect elsewhere) and stops accepting. */
  close(): Promise<void>;
  socketCount(): number;
}

/** What every connection shares: its methods live on the prototype, not in closures per socket. */
interface ConnShared {
  maxBufferedBytes: number;
  onSlowConsumer(): void;
  logger: Logger;
  closed(c: Conn): void;
}

class Conn implements ProtocolSocket {
  readonly id = randomUUID();
  alive = true;
  closing = false;
  handlers: ReturnType<Protocol['opened']> | undefined;
  private ended = false;
  constructor(
    readonly ws: WebSocket,
    readonly shared: ConnShared,
    readonly ip: string | undefined,
  ) {}

  send(frame: string): void {
    const { ws } = this;
    if (this.closing || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > this.shared.maxBufferedBytes) {
      // A consumer that stopped reading: close with a code the client retries; it resumes by cursor.
      this.shared.onSlowConsumer();
      this.close(CloseCode.TryAgainLater, 'Try again later: consumer too slow');
      setTimeout(() => ws.terminate(), 5_000).unref();
      return;
    }
    ws.send(frame);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.end();
    this.ws.close(code, reason);
  }

  /** Tells the protocol once, as soon as closing begins (by either side): it stops producing. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers?.closed();
  }
}

/** A `ws` socket that knows its connection: one set of listeners serves every socket (no closures per socket). */
class ConnSocket extends WebSocket {
  conn: Conn | undefined;
}

const connOf = (ws: WebSocket) => (ws as ConnSocket).conn;

function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean) {
  const c = connOf(this);
  if (!c) return;
  if (isBinary) return c.close(CloseCode.BadRequest, 'Invalid message received');
  void c.handlers?.message(data.toString()).catch((err) => c.shared.logger.error({ err }, 'ws message handling failed'));
}
function onSocketPong(this: WebSocket) {
  const c = connOf(this);
  if (c) c.alive = true;
}
function onSocketError(this: WebSocket, err: Error) {
  connOf(this)?.shared.logger.debug({ err }, 'ws socket error');
}
function onSocketClose(this: WebSocket) {
  const c = connOf(this);
  if (!c) return;
  c.closing = true;
  c.end();
  c.shared.closed(c);
}

/**
 * The `ws` adapter (graphql-ws's `use/ws` counterpart): the upgrade on `path` with the Origin
 * allow-list, the subprotocol, keepalive pings, back-pressure (slow consumers get 1013) and
 * shutdown with 1001. Everything graphql-transport-ws is the protocol's.
 */
export function attachWsServer(
  server: Server,
  path: string,
  deps: {
    config: Config['ws'];
    logger: Logger;
    metrics: Metrics;
    protocol: Protocol;
    /** The client's address of an upgrade request. */
    clientIp?: (req: IncomingMessage) => string | undefined;
    /** Checked before the upgrade: seconds to wait refuses it with HTTP 429 and Retry-After. */
    admit?: (ip: string | undefined) => Promise<number | undefined>;
  },
): WsServer {
  const { config, logger, metrics, protocol } = deps;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxPayloadBytes,
    perMessageDeflate: false,
    WebSocket: ConnSocket,
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  });
  const conns = new Set<Conn>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== path) return; // another upgrade handler may own it
    const origin = req.headers.origin;
    if (origin && !originAllowed(origin, req.headers.host, config.allowedOrigins)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const ip = deps.clientIp ? deps.clientIp(req) : req.socket.remoteAddress;
    if (!deps.admit) return wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req, ip));
    // node's HTTP server left the socket without an error listener: one is needed while waiting
    const onError = () => socket.destroy();
    socket.on('error', onError);
    void deps.admit(ip).then((wait) => {
      socket.off('error', onError);
      if (socket.destroyed) return;
      if (wait) {
        socket.end(`HTTP/1.1 429 Too Many Requests\r\nRetry-After: ${wait}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req, ip));
    });
  };
  server.on('upgrade', onUpgrade);

  const shared: ConnShared = {
    maxBufferedBytes: config.maxBufferedBytes,
    onSlowConsumer: () => metrics.slowConsumers.inc(),
    logger,
    closed(c) {
      if (conns.delete(c)) metrics.sockets.dec();
    },
  };

  wss.on('connection', (ws: ConnSocket, _req: IncomingMessage, ip: string | undefined) => {
    if (ws.protocol !== PROTOCOL) {
      ws.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    const c = new Conn(ws, shared, ip);
    conns.add(c);
    metrics.sockets.inc();
    c.handlers = protocol.opened(c);
    ws.conn = c;
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    ws.on('error', onSocketError);
    ws.on('close', onSocketClose);
  });

  const keepAlive =
    config.keepAliveMs > 0
      ? setInterval(() => {
          for (const c of conns) {
            if (!c.alive) {
              c.ws.terminate();
              continue;
            }
            c.alive = false;
            c.ws.ping();
          }
        }, config.keepAliveMs)
      : undefined;
  keepAlive?.unref();

  return {
    socketCount: () => conns.size,
    async close() {
      if (keepAlive) clearInterval(keepAlive);
      server.off('upgrade', onUpgrade);
      const closed = [...conns].map(
        (c) => new Promise<void>((r) => (c.ws.readyState === WebSocket.CLOSED ? r() : c.ws.once('close', () => r()))),
      );
      for (const c of conns) c.close(CloseCode.GoingAway, 'Server shutting down');
      const hard = setTimeout(() => {
        for (const c of conns) c.ws.terminate();
      }, 2_000);
      await Promise.all(closed);
      clearTimeout(hard);
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
