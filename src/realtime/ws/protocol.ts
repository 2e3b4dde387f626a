import { randomUUID } from 'node:crypto';
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  getOperationAST,
} from 'graphql';
import type { Config } from '../../config.js';
import type { Metrics } from '../../http/metrics.js';
import { type Limits, filterCost } from '../../protection/limits.js';
import { capExceeded, forbidden, isCoded, rateLimited } from '../../shared/errors.js';
import type { Viewer } from '../../shared/viewer.js';
import type { Protocol, ProtocolSocket } from './adapter.js';
import { CloseCode } from './close-codes.js';
import type { ConnectionControl, SocketSession, SocketSessions } from './sessions.js';
import type { SharedRender } from './shared-render.js';

/** yoga's enveloped pipeline, as far as the protocol uses it. */
export interface Enveloped {
  schema: GraphQLSchema;
  parse: (source: string) => DocumentNode;
  validate: (schema: GraphQLSchema, doc: DocumentNode) => readonly GraphQLError[];
  contextFactory: () => Promise<unknown> | unknown;
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

export interface ProtocolDeps {
  config: Pick<Config['ws'], 'initTimeoutMs'>;
  metrics: Metrics;
  render: SharedRender;
  /** Verifies `connectionParams.authorization` and provisions the user; undefined refuses. */
  authenticate(authorization: unknown): Promise<Viewer | undefined>;
  /** yoga.getEnveloped: the same plugin pipeline (limits, masking) as HTTP. */
  getEnveloped(initial: Record<string, unknown>): Enveloped;
  /** Masks an unexpected error into a client-safe one (yoga's masking). */
  maskError(err: unknown): GraphQLError;
  /** Told when an authenticated socket opens (after ack) and when it closes (presence). */
  onSocket?: { opened(viewer: Viewer, socketId: string): void; closed(viewer: Viewer, socketId: string): void };
  /** Rate limits and caps (docs/protection.md); absent: none. */
  limits?: Pick<Limits, 'operation' | 'socketOpening' | 'socketClosed' | 'subscriptionsPerSocket' | 'maxFilterCost' | 'refused'>;
  /** Registry of authenticated sockets by user (session revocation ends them). */
  sessions?: SocketSessions;
  /** Told when a subscription is about to start; its trail is told when it started and when it ended (the audit log). */
  onSubscription?(args: ExecutionArgs, op: OperationDefinitionNode): SubscriptionTrail | undefined;
}

/** A subscription's audit trail, as the protocol drives it. */
export interface SubscriptionTrail {
  started(): void;
  ended(reason: 'complete' | 'closed' | 'done' | 'error', errors?: readonly unknown[]): void;
}

interface State {
  socket: ProtocolSocket;
  viewer: Viewer | undefined;
  initReceived: boolean;
  acked: boolean;
  /** Active operations by client id; the value stops the operation. */
  ops: Map<string, () => void>;
  /** Ids of the subscriptions among `ops` (counted against the per-socket cap). */
  subs: Set<string>;
  /** This socket holds one of its user's socket slots. */
  slot: boolean;
  /** Audit trails of subscriptions, by client id. */
  trails: Map<string, SubscriptionTrail>;
  /** Closes the socket when no connection_init came in time. */
  initTimer: NodeJS.Timeout | undefined;
  /** Closes the socket at its token's expiry (moved by an in-band refresh). */
  expiry: NodeJS.Timeout | undefined;
  /** The socket is in the sessions registry (as itself: its `viewer` follows refreshes). */
  registered: boolean;
}

/** A socket's state is also its connection control, its session and its handlers (methods, no closures per socket). */
type Socket = State & ConnectionControl & { close(code: number, reason: string): void };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The graphql-transport-ws protocol (the message switch), transport-agnostic like graphql-ws's
 * `makeServer`. Stream subscriptions go to the shared render; everything else (queries, mutations,
 * other subscriptions) runs through yoga's enveloped execute/subscribe. A protocol state machine:
 * kept in one file on purpose, so every message type and close code is reviewed in one place.
 */
export function createProtocol(deps: ProtocolDeps): Protocol {
  const { metrics, render } = deps;

  const close = (c: State, code: number, reason: string) => c.socket.close(code, reason);

  /** Ends a subscription's audit trail, once. */
  const endTrail = (c: State, id: string, reason: Parameters<SubscriptionTrail['ended']>[0], errors?: readonly unknown[]) => {
    const trail = c.trails.get(id);
    if (!trail) return;
    c.trails.delete(id);
    trail.ended(reason, errors);
  };

  const stopAll = (c: State) => {
    for (const stop of c.ops.values()) stop();
    c.ops.clear();
    c.subs.clear();
    for (const id of [...c.trails.keys()]) endTrail(c, id, 'closed');
    clearTimeout(c.initTimer);
    clearTimeout(c.expiry);
  };

  const expired = (c: State) => close(c, CloseCode.Forbidden, 'Forbidden: token expired');
  const initTimedOut = (c: State) => {
    if (!c.acked) close(c, CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
  };

  const armExpiry = (c: State, viewer: Viewer) => {
    clearTimeout(c.expiry);
    c.expiry = undefined;
    if (viewer.exp === undefined) return;
    const ms = Math.max(0, viewer.exp * 1000 - Date.now());
    c.expiry = setTimeout(expired, Math.min(ms, 2 ** 31 - 1), c);
  };

  const refreshToken = async (c: State, authorization: string): Promise<Viewer> => {
    const current = c.viewer;
    const next = await deps.authenticate(authorization).catch(() => undefined);
    if (!current || c.socket.closing) throw forbidden('This connection is closing.');
    if (!next) throw forbidden('The new token is invalid, expired or revoked.');
    if (next.userId !== current.userId || next.orgId !== current.orgId || next.role !== current.role)
      throw forbidden('The new token must be for the same user, organisation and role as the connection.');
    c.viewer = next;
    armExpiry(c, next);
    return next;
  };

  const sendError = (c: State, id: string, errors: readonly unknown[]) => {
    if (!c.ops.has(id)) return;
    c.ops.delete(id);
    c.subs.delete(id);
    endTrail(c, id, 'error', errors);
    const payload = errors.map((e) => (isCoded(e) ? e : deps.maskError(e)).toJSON());
    c.socket.send(JSON.stringify({ id, type: 'error', payload }));
  };

  const complete = (c: State, id: string) => {
    if (!c.ops.has(id)) return;
    c.ops.delete(id);
    c.subs.delete(id);
    endTrail(c, id, 'done');
    c.socket.send(JSON.stringify({ id, type: 'complete' }));
  };

  /** Hands a stream subscription to the shared render; false when it is not one. */
  const startStream = async (c: State, id: string, args: ExecutionArgs, op: ReturnType<typeof getOperationAST>, query: string) => {
    if (!op) return false;
    const started = await render.start({
      id,
      viewer: c.viewer,
      socket: c.socket,
      args,
      op,
      query,
      end: (err) => {
        c.ops.get(id)?.();
        sendError(c, id, [err]);
      },
    });
    if (!started) return false;
    if ('errors' in started) {
      sendError(c, id, started.errors);
      return true;
    }
    if (!c.ops.has(id)) {
      started.stop(); // completed by the client meanwhile
      return true;
    }
    metrics.subscriptions.inc();
    c.ops.set(id, () => {
      started.stop();
      metrics.subscriptions.dec();
    });
    c.trails.get(id)?.started();
    return true;
  };

  /** A subscription that is not a stream field: yoga's subscribe, one frame per result. */
  const runSubscription = async (c: State, id: string, env: Enveloped, args: ExecutionArgs) => {
    const result = (await env.subscribe(args)) as ExecutionResult | AsyncIterableIterator<ExecutionResult>;
    if (!(Symbol.asyncIterator in result)) {
      if (result.errors) return sendError(c, id, result.errors);
      c.socket.send(JSON.stringify({ id, type: 'next', payload: result }));
      return complete(c, id);
    }
    if (!c.ops.has(id)) return void result.return?.();
    c.ops.set(id, () => void result.return?.());
    c.trails.get(id)?.started();
    for await (const r of result) {
      if (!c.ops.has(id)) break;
      c.socket.send(JSON.stringify({ id, type: 'next', payload: r }));
    }
    return complete(c, id);
  };

  const runOperation = async (c: Socket, id: string, payload: Record<string, unknown>) => {
    const query = payload.query as string;
    const env = deps.getEnveloped({
      viewer: c.viewer,
      requestId: randomUUID(),
      transport: 'ws',
      socketId: c.socket.id,
      connection: c as ConnectionControl,
      ip: c.socket.ip,
    });
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
    const variableValues = (payload.variables as Record<string, unknown> | null) ?? undefined;
    const limits = deps.limits;
    if (limits) {
      if (op.operation === 'subscription') {
        const max = limits.subscriptionsPerSocket;
        if (c.subs.size >= max) {
          limits.refused('subscriptions');
          return sendError(c, id, [
            capExceeded('SUBSCRIPTIONS_PER_SOCKET', max, `At most ${max} subscriptions per connection: complete one first.`),
          ]);
        }
        const cost = filterCost(op, document, variableValues);
        if (cost > limits.maxFilterCost) {
          limits.refused('filter_cost');
          return sendError(c, id, [
            capExceeded(
              'FILTER_COST',
              limits.maxFilterCost,
              `Subscription arguments too large (${cost} values, at most ${limits.maxFilterCost}).`,
            ),
          ]);
        }
        c.subs.add(id);
      }
      const wait = await limits.operation(op, c.viewer, c.socket.ip);
      if (wait) return sendError(c, id, [rateLimited(wait)]);
    }
    const args: ExecutionArgs = {
      schema: env.schema,
      document,
      operationName,
      variableValues,
      contextValue: await env.contextFactory(),
    };
    if (op.operation === 'subscription') {
      const trail = deps.onSubscription?.(args, op);
      if (trail) c.trails.set(id, trail);
      if (!(await startStream(c, id, args, op, query))) await runSubscription(c, id, env, args);
      return;
    }
    const result = (await env.execute(args)) as ExecutionResult; // latency is measured in the shared pipeline
    if (!c.ops.has(id)) return;
    c.socket.send(JSON.stringify({ id, type: 'next', payload: result }));
    complete(c, id);
  };

  const init = async (c: Socket, payload: unknown) => {
    if (c.initReceived) return close(c, CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
    c.initReceived = true;
    const params = isObj(payload) ? payload : {};
    const viewer = await deps.authenticate(params.authorization ?? params.Authorization).catch(() => undefined);
    if (!viewer) return close(c, CloseCode.Forbidden, 'Forbidden');
    if (c.socket.closing) return;
    if (deps.limits) {
      const verdict = await deps.limits.socketOpening(viewer, c.socket.ip, c.socket.id);
      if (verdict === 'cap') return close(c, CloseCode.TryAgainLater, 'Try again later: too many sockets for this user');
      if (verdict === 'rate') return close(c, CloseCode.TryAgainLater, 'Try again later: too many connection attempts');
      if (c.socket.closing) return deps.limits.socketClosed(viewer, c.socket.id);
      c.slot = true;
    }
    c.viewer = viewer;
    c.acked = true;
    clearTimeout(c.initTimer);
    c.initTimer = undefined;
    armExpiry(c, viewer);
    c.socket.send('{"type":"connection_ack"}');
    deps.onSocket?.opened(viewer, c.socket.id);
    if (deps.sessions) {
      c.registered = true;
      deps.sessions.add(c.socket.id, c as SocketSession);
    }
  };

  const subscribe = async (c: Socket, msg: Record<string, unknown>) => {
    const { id, payload } = msg;
    if (typeof id !== 'string' || !id || !isObj(payload) || typeof payload.query !== 'string')
      return close(c, CloseCode.BadRequest, 'Invalid message received');
    if (!c.acked) return close(c, CloseCode.Unauthorized, 'Unauthorized');
    if (c.ops.has(id)) return close(c, CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`);
    c.ops.set(id, () => {});
    try {
      await runOperation(c, id, payload);
    } catch (err) {
      sendError(c, id, [err]);
    }
  };

  const onMessage = async (c: Socket, raw: string) => {
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (!isObj(parsed) || typeof parsed.type !== 'string') throw new Error('bad');
      msg = parsed;
    } catch {
      return close(c, CloseCode.BadRequest, 'Invalid message received');
    }
    switch (msg.type) {
      case 'connection_init':
        return init(c, msg.payload);
      case 'ping':
        return c.socket.send(msg.payload === undefined ? '{"type":"pong"}' : JSON.stringify({ type: 'pong', payload: msg.payload }));
      case 'pong':
        return;
      case 'subscribe':
        return subscribe(c, msg);
      case 'complete': {
        if (typeof msg.id !== 'string') return close(c, CloseCode.BadRequest, 'Invalid message received');
        const stop = c.ops.get(msg.id);
        c.ops.delete(msg.id);
        c.subs.delete(msg.id);
        stop?.();
        endTrail(c, msg.id, 'complete');
        return;
      }
      default:
        return close(c, CloseCode.BadRequest, `Unexpected message of type ${msg.type} received`);
    }
  };

  /** One socket: its state, and as methods its handlers, connection control and session. */
  class SocketState implements Socket {
    viewer: Viewer | undefined = undefined;
    initReceived = false;
    acked = false;
    ops = new Map<string, () => void>();
    trails = new Map<string, SubscriptionTrail>();
    subs = new Set<string>();
    slot = false;
    initTimer: NodeJS.Timeout | undefined;
    expiry: NodeJS.Timeout | undefined = undefined;
    registered = false;
    constructor(readonly socket: ProtocolSocket) {
      this.initTimer = setTimeout(initTimedOut, deps.config.initTimeoutMs, this);
    }
    message(data: string) {
      return onMessage(this, data);
    }
    refreshToken(authorization: string) {
      return refreshToken(this, authorization);
    }
    close(code: number, reason: string) {
      close(this, code, reason);
    }
    closed() {
      stopAll(this);
      const { viewer, socket } = this;
      if (this.acked && viewer) deps.onSocket?.closed(viewer, socket.id);
      if (this.slot && viewer) deps.limits?.socketClosed(viewer, socket.id);
      if (this.registered && viewer) deps.sessions?.remove(socket.id, viewer);
    }
  }

  return {
    opened: (socket) => new SocketState(socket),
  };
}
