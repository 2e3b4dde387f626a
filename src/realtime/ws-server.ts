import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type FieldNode,
  type VariableNode,
  execute,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../config.js';
import type { Context } from '../graphql/context.js';
import type { StreamOpener } from '../graphql/stream-event.js';
import type { Metrics } from '../http/metrics.js';
import { isCoded } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { Viewer } from '../shared/viewer.js';
import type { Fanout } from './fanout.js';

/** graphql-ws (graphql-transport-ws) close codes used here. */
export const CloseCode = {
  GoingAway: 1001,
  TryAgainLater: 1013,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  SubprotocolNotAcceptable: 4406,
  ConnectionInitialisationTimeout: 4408,
  SubscriberAlreadyExists: 4409,
  TooManyInitialisationRequests: 4429,
} as const;
const PROTOCOL = 'graphql-transport-ws';

interface Enveloped {
  schema: GraphQLSchema;
  parse: (source: string) => DocumentNode;
  validate: (schema: GraphQLSchema, doc: DocumentNode) => readonly GraphQLError[];
  contextFactory: () => Promise<unknown> | unknown;
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

export interface WsServerDeps {
  config: Config['ws'];
  logger: Logger;
  metrics: Metrics;
  fanout: Fanout;
  /** Verifies `connectionParams.authorization` and provisions the user; undefined refuses. */
  authenticate(authorization: unknown): Promise<Viewer | undefined>;
  /** yoga.getEnveloped: the same plugin pipeline (limits, masking) as HTTP. */
  getEnveloped(initial: Record<string, unknown>): Enveloped;
  /** Masks an unexpected error into a client-safe one (yoga's masking). */
  maskError(err: unknown): GraphQLError;
  /** Told when an authenticated socket opens (after ack) and when it closes (presence). */
  onSocket?: { opened(viewer: Viewer, socketId: string): void; closed(viewer: Viewer, socketId: string): void };
}

/** One graphql-ws server on an HTTP server's upgrade path. */
export interface WsServer {
  /** Closes every socket with 1001 (clients reconnect elsewhere) and stops accepting. */
  close(): Promise<void>;
  socketCount(): number;
}

interface Conn {
  id: string;
  ws: WebSocket;
  viewer: Viewer | undefined;
  initReceived: boolean;
  acked: boolean;
  /** Active operations by client id; the value stops the operation. */
  ops: Map<string, () => void>;
  alive: boolean;
  closing: boolean;
  timers: NodeJS.Timeout[];
}

const stableStringify = (v: unknown): string => {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
    .join(',')}}`;
};

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A graphql-transport-ws server written for fan-out: subscription fields that declare
 * `extensions.openStream` are executed once per (operation, variables, authorisation scope) per
 * event, and the serialized payload is shared by every socket of that group. Everything else
 * (queries, mutations, other subscriptions) runs through yoga's enveloped execute/subscribe.
 */
export function attachWsServer(server: Server, path: string, deps: WsServerDeps): WsServer {
  const { config, logger, metrics, fanout } = deps;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxPayloadBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  });
  const conns = new Set<Conn>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== path) return; // another upgrade handler may own it
    const origin = req.headers.origin;
    if (origin && config.allowedOrigins !== '*' && !config.allowedOrigins.includes(origin)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };
  server.on('upgrade', onUpgrade);

  const send = (c: Conn, frame: string) => {
    if (c.closing || c.ws.readyState !== WebSocket.OPEN) return;
    if (c.ws.bufferedAmount > config.maxBufferedBytes) {
      // A consumer that stopped reading: close with a code the client retries; it resumes by cursor.
      metrics.slowConsumers.inc();
      closeConn(c, CloseCode.TryAgainLater, 'Try again later: consumer too slow');
      const t = setTimeout(() => c.ws.terminate(), 5_000);
      t.unref();
      return;
    }
    c.ws.send(frame);
  };

  const closeConn = (c: Conn, code: number, reason: string) => {
    if (c.closing) return;
    c.closing = true;
    stopAll(c);
    c.ws.close(code, reason);
  };

  const stopAll = (c: Conn) => {
    for (const stop of c.ops.values()) stop();
    c.ops.clear();
    for (const t of c.timers) clearTimeout(t);
    c.timers = [];
  };

  const sendError = (c: Conn, id: string, errors: readonly unknown[]) => {
    if (!c.ops.has(id)) return;
    c.ops.delete(id);
    const payload = errors.map((e) => (isCoded(e) ? e : deps.maskError(e)).toJSON());
    send(c, JSON.stringify({ id, type: 'error', payload }));
  };

  const complete = (c: Conn, id: string) => {
    if (!c.ops.has(id)) return;
    c.ops.delete(id);
    send(c, JSON.stringify({ id, type: 'complete' }));
  };

  // Serialized once per render. Frames stay strings: for a string `ws` writes header and payload
  // as one buffer, for a Buffer it writes two chunks (measured slower, see README Benchmarks).
  const serialize = (r: ExecutionResult): string =>
    JSON.stringify(r.errors ? { ...r, errors: r.errors.map((e) => deps.maskError(e)) } : r);

  /** What a subscription document means for sharing, computed once per query text. */
  interface QueryShape {
    /** It selects a field marked `viewerDependent`: executions cannot be shared across users. */
    viewerDependent: boolean;
    /** Variables the payload can depend on: used in the root field's selection, directives, fragments. */
    renderVars: string[];
  }
  const shapes = new Map<string, QueryShape>();
  const shapeOf = (schema: GraphQLSchema, query: string, root: FieldNode, doc: DocumentNode): QueryShape => {
    let shape = shapes.get(query);
    if (shape) return shape;
    let viewerDependent = false;
    const info = new TypeInfo(schema);
    visit(
      doc,
      visitWithTypeInfo(info, {
        Field() {
          if (info.getFieldDef()?.extensions?.viewerDependent) viewerDependent = true;
        },
      }),
    );
    const found = new Set<string>();
    const collect = { Variable: (v: VariableNode) => void found.add(v.name.value) };
    if (root.selectionSet) visit(root.selectionSet, collect);
    for (const d of root.directives ?? []) visit(d, collect);
    for (const def of doc.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) visit(def, collect);
    shape = { viewerDependent, renderVars: [...found].sort() };
    if (shapes.size > 5_000) shapes.clear();
    shapes.set(query, shape);
    return shape;
  };

  const startStream = async (
    c: Conn,
    id: string,
    env: Enveloped,
    args: ExecutionArgs,
    op: OperationDefinitionNode,
    query: string,
  ): Promise<boolean> => {
    const root = op.selectionSet.selections[0];
    const subType = args.schema.getSubscriptionType();
    if (op.selectionSet.selections.length !== 1 || root?.kind !== Kind.FIELD || !subType) return false;
    const def = subType.getFields()[root.name.value];
    const open = def?.extensions?.openStream as StreamOpener | undefined;
    if (!def || !open) return false;
    const vars = getVariableValues(args.schema, op.variableDefinitions ?? [], args.variableValues ?? {});
    if (vars.errors) {
      sendError(c, id, vars.errors);
      return true;
    }
    const spec = await open(getArgumentValues(def, root, vars.coerced), args.contextValue as Context);
    const shape = shapeOf(args.schema, query, root, args.document);
    const scope = shape.viewerDependent && c.viewer ? `${spec.scope}|u:${c.viewer.userId}` : spec.scope;
    const key = `${query}\0${args.operationName ?? ''}\0${stableStringify(vars.coerced)}\0${scope}`;
    // The payload depends on the selection, not on the root field's arguments (they pick the
    // stream and filter it): subscribers that differ only there share one render per event.
    const renderScope = scope === spec.scope ? (spec.renderScope ?? spec.scope) : scope;
    const renderKey = `${query}\0${args.operationName ?? ''}\0${stableStringify(
      Object.fromEntries(shape.renderVars.map((v) => [v, vars.coerced[v]])),
    )}\0${renderScope}`;
    const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
    // graphql-js 16 `execute` runs a subscription operation's root field against a given root
    // value (yoga's executor would call subscribe instead); errors are masked like HTTP's.
    const render = (rootValue: unknown) => {
      const res = execute({ ...args, rootValue }) as ExecutionResult | Promise<ExecutionResult>;
      return res instanceof Promise ? res.then(serialize) : serialize(res);
    };
    if (!c.ops.has(id)) return true; // completed by the client meanwhile
    let active = true; // nothing is written for this id once it ended, whoever ended it
    const remove = await fanout.add(key, spec, render, {
      userId: c.viewer?.userId ?? '',
      deliver: (payload) => {
        if (active) send(c, prefix + payload + '}');
      },
      end: (err) => {
        c.ops.get(id)?.();
        sendError(c, id, [err]);
      },
    }, renderKey);
    if (!c.ops.has(id)) {
      active = false;
      remove();
      return true;
    }
    metrics.subscriptions.inc();
    c.ops.set(id, () => {
      active = false;
      remove();
      metrics.subscriptions.dec();
    });
    return true;
  };

  const runOperation = async (c: Conn, id: string, payload: Record<string, unknown>) => {
    const query = payload.query as string;
    const env = deps.getEnveloped({ viewer: c.viewer, requestId: randomUUID(), transport: 'ws', socketId: c.id });
    let document: DocumentNode;
    try {
      document = env.parse(query);
    } catch (err) {
      return sendError(c, id, [err]);
    }
    const errors = env.validate(env.schema, document);
    if (errors.length > 0) return sendError(c, id, errors);
    const operationName = (payload.operationName as string | null | undefined) ?? undefined;
    const op = getOperationAST(document, operationName);
    if (!op) return sendError(c, id, [new Error('Unable to identify operation')]);
    const args: ExecutionArgs = {
      schema: env.schema,
      document,
      operationName,
      variableValues: (payload.variables as Record<string, unknown> | null) ?? undefined,
      contextValue: await env.contextFactory(),
    };
    if (op.operation === 'subscription') {
      if (await startStream(c, id, env, args, op, query)) return;
      const result = (await env.subscribe(args)) as ExecutionResult | AsyncIterableIterator<ExecutionResult>;
      if (!(Symbol.asyncIterator in result)) {
        if (result.errors) return sendError(c, id, result.errors);
        send(c, JSON.stringify({ id, type: 'next', payload: result }));
        return complete(c, id);
      }
      if (!c.ops.has(id)) return void result.return?.();
      c.ops.set(id, () => void result.return?.());
      for await (const r of result) {
        if (!c.ops.has(id)) break;
        send(c, JSON.stringify({ id, type: 'next', payload: r }));
      }
      return complete(c, id);
    }
    const result = (await env.execute(args)) as ExecutionResult; // latency is measured in the shared pipeline
    if (!c.ops.has(id)) return;
    send(c, JSON.stringify({ id, type: 'next', payload: result }));
    complete(c, id);
  };

  const onMessage = async (c: Conn, raw: string) => {
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!isObj(parsed) || typeof parsed.type !== 'string') throw new Error('bad');
      msg = parsed;
    } catch {
      return closeConn(c, CloseCode.BadRequest, 'Invalid message received');
    }
    switch (msg.type) {
      case 'connection_init': {
        if (c.initReceived) return closeConn(c, CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
        c.initReceived = true;
        const params = isObj(msg.payload) ? msg.payload : {};
        const viewer = await deps.authenticate(params.authorization ?? params.Authorization).catch(() => undefined);
        if (!viewer) return closeConn(c, CloseCode.Forbidden, 'Forbidden');
        if (c.closing) return;
        c.viewer = viewer;
        c.acked = true;
        for (const t of c.timers) clearTimeout(t);
        c.timers = [];
        if (viewer.exp !== undefined) {
          const ms = Math.max(0, viewer.exp * 1000 - Date.now());
          const t = setTimeout(() => closeConn(c, CloseCode.Forbidden, 'Forbidden: token expired'), Math.min(ms, 2 ** 31 - 1));
          c.timers.push(t);
        }
        send(c, '{"type":"connection_ack"}');
        deps.onSocket?.opened(viewer, c.id);
        return;
      }
      case 'ping':
        return send(c, msg.payload === undefined ? '{"type":"pong"}' : JSON.stringify({ type: 'pong', payload: msg.payload }));
      case 'pong':
        return;
      case 'subscribe': {
        const id = msg.id;
        const payload = msg.payload;
        if (typeof id !== 'string' || !id || !isObj(payload) || typeof payload.query !== 'string')
          return closeConn(c, CloseCode.BadRequest, 'Invalid message received');
        if (!c.acked) return closeConn(c, CloseCode.Unauthorized, 'Unauthorized');
        if (c.ops.has(id)) return closeConn(c, CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`);
        c.ops.set(id, () => {});
        try {
          await runOperation(c, id, payload);
        } catch (err) {
          sendError(c, id, [err]);
        }
        return;
      }
      case 'complete': {
        if (typeof msg.id !== 'string') return closeConn(c, CloseCode.BadRequest, 'Invalid message received');
        const stop = c.ops.get(msg.id);
        c.ops.delete(msg.id);
        stop?.();
        return;
      }
      default:
        return closeConn(c, CloseCode.BadRequest, `Unexpected message of type ${msg.type} received`);
    }
  };

  wss.on('connection', (ws) => {
    const c: Conn = { id: randomUUID(), ws, viewer: undefined, initReceived: false, acked: false, ops: new Map(), alive: true, closing: false, timers: [] };
    if (ws.protocol !== PROTOCOL) {
      ws.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    conns.add(c);
    metrics.sockets.inc();
    c.timers.push(
      setTimeout(() => {
        if (!c.acked) closeConn(c, CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
      }, config.initTimeoutMs),
    );
    ws.on('message', (data, isBinary) => {
      if (isBinary) return closeConn(c, CloseCode.BadRequest, 'Invalid message received');
      void onMessage(c, data.toString()).catch((err) => logger.error({ err }, 'ws message handling failed'));
    });
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('error', (err) => logger.debug({ err }, 'ws socket error'));
    ws.on('close', () => {
      c.closing = true;
      stopAll(c);
      if (c.acked && c.viewer) deps.onSocket?.closed(c.viewer, c.id);
      conns.delete(c);
      metrics.sockets.dec();
    });
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
      const closed = [...conns].map((c) => new Promise<void>((r) => (c.ws.readyState === WebSocket.CLOSED ? r() : c.ws.once('close', () => r()))));
      for (const c of conns) closeConn(c, CloseCode.GoingAway, 'Server shutting down');
      const hard = setTimeout(() => {
        for (const c of conns) c.ws.terminate();
      }, 2_000);
      await Promise.all(closed);
      clearTimeout(hard);
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
