// The baseline of `npm run bench` (issue 12, item 3; not a test): the least a real-time server can
// do for the same load generator — plain `ws` + Redis pub/sub, nothing stored, no auth, no GraphQL
// engine. It speaks just enough graphql-transport-ws (connection_init → ack, subscribe → next
// frames) and answers `POST /graphql` sendMessage by publishing the rendered event, with a position
// taken in the same Redis script (so cursors stay in order across instances). Frames carry the same
// fields the loadgen reads (cursor, at, body). Same IPC commands as server.ts (stats, gc, stop).
// Resume (the storm scenario): the script also keeps each conversation's last 1,000 events in a
// Redis list, and a subscribe with `after` (base64url of a position) first gets the listed events
// after it — the least a server can do to resume, one Redis read per subscription.
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';
import { serveRpc, type ServerStats } from './common.js';

const prefix = `${process.env.REDIS_PREFIX ?? 'baseline'}:bl`;
const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const pub = new Redis(url);
const sub = new Redis(url);
// INCR the conversation's position, keep and publish "<position>|<rest of the event>" in one step
const SEND = `local p = redis.call('INCR', KEYS[1]) local m = p .. '|' .. ARGV[1]
redis.call('RPUSH', KEYS[3], m) redis.call('LTRIM', KEYS[3], -1000, -1) redis.call('PUBLISH', KEYS[2], m) return p`;

/** The graphql-ws `next` frame of a stored or published "<position>|<rest>" event. */
const frame = (id: string, message: string) => {
  const bar = message.indexOf('|');
  const cursor = Buffer.from(message.slice(0, bar)).toString('base64url');
  const event = `{"__typename":"MessageAdded","cursor":"${cursor}",${message.slice(bar + 1)}}`;
  return `{"id":"${id}","type":"next","payload":{"data":{"conversationEvents":${event}}}}`;
};

/** Local subscriptions by conversation: socket → operation id. */
const rooms = new Map<string, Map<WebSocket, string>>();
let subscriptions = 0;

sub.on('message', (channel: string, message: string) => {
  const room = rooms.get(channel.slice(prefix.length + 3));
  if (!room) return;
  for (const [ws, id] of room) ws.send(frame(id, message));
});

const server = createServer((req, res) => {
  if (req.method !== 'POST') return void res.writeHead(404).end();
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString()) as { variables?: { input?: { conversationId?: string; body?: string } } };
    const input = body.variables?.input ?? {};
    const conv = String(input.conversationId);
    const id = randomUUID();
    const rest = `"at":"${new Date().toISOString()}","message":{"id":"${id}","body":${JSON.stringify(input.body ?? '')}}`;
    pub.eval(SEND, 3, `${prefix}:p:${conv}`, `${prefix}:c:${conv}`, `${prefix}:l:${conv}`, rest).then(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"data":{"sendMessage":{"id":"${id}"}}}`),
      () => res.writeHead(500).end(),
    );
  });
});

const wss = new WebSocketServer({ server, path: '/graphql', handleProtocols: () => 'graphql-transport-ws' });
wss.on('connection', (ws) => {
  const mine: string[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as {
      type: string;
      id?: string;
      payload?: { variables?: { conversationId?: string; after?: string } };
    };
    if (msg.type === 'connection_init') return ws.send('{"type":"connection_ack"}');
    if (msg.type === 'ping') return ws.send('{"type":"pong"}');
    if (msg.type !== 'subscribe' || !msg.id) return;
    const conv = String(msg.payload?.variables?.conversationId);
    let room = rooms.get(conv);
    if (!room) {
      room = new Map();
      rooms.set(conv, room);
      void sub.subscribe(`${prefix}:c:${conv}`);
    }
    room.set(ws, msg.id);
    mine.push(conv);
    subscriptions++;
    const after = msg.payload?.variables?.after;
    if (typeof after !== 'string') return;
    const from = Number(Buffer.from(after, 'base64url').toString());
    const id = msg.id;
    void pub.lrange(`${prefix}:l:${conv}`, 0, -1).then((stored) => {
      for (const m of stored) if (Number(m.slice(0, m.indexOf('|'))) > from) ws.send(frame(id, m));
    });
  });
  ws.on('close', () => {
    for (const conv of mine) {
      const room = rooms.get(conv);
      if (!room?.delete(ws)) continue;
      subscriptions--;
      if (room.size === 0) {
        rooms.delete(conv);
        void sub.unsubscribe(`${prefix}:c:${conv}`);
      }
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as { port: number }).port;
  const stop = () => {
    for (const ws of wss.clients) ws.terminate();
    server.close();
    pub.disconnect();
    sub.disconnect();
    setImmediate(() => process.exit(0));
  };
  serveRpc(
    {
      stats: (): ServerStats => ({
        cpu: process.cpuUsage(),
        wallMs: performance.timeOrigin + performance.now(),
        mem: process.memoryUsage(),
        sockets: wss.clients.size,
        fanout: { streams: rooms.size, groups: rooms.size, subscriptions },
      }),
      gc: () => {
        const gc = (globalThis as { gc?: () => void }).gc;
        gc?.();
        gc?.();
        return Boolean(gc);
      },
      profStart: () => false,
      profStop: () => false,
      stop: () => {
        stop();
        return true;
      },
    },
    stop,
  );
  process.on('SIGTERM', stop);
  console.log(JSON.stringify({ port }));
  process.send?.({ ready: true, port });
});
