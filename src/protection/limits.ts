import type { IncomingMessage } from 'node:http';
import type { RedisClient } from '../shared/redis-client.js';
import { type DocumentNode, Kind, type OperationDefinitionNode, type ValueNode, getOperationAST } from 'graphql';
import { type Plugin, isAsyncIterable } from 'graphql-yoga';
import type { Config, LimitClass } from '../config.js';
import type { Context } from '../graphql/context.js';
import type { Metrics } from '../http/metrics.js';
import { rateLimitedHttp } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { rootFields } from '../shared/root-fields.js';
import type { Viewer } from '../shared/viewer.js';
import { clientIp, createRateLimiter, limitMetrics, type RateLimiter, type Verdict } from './rate-limits.js';
import { createSocketSlots, type SocketSlots } from './socket-slots.js';

/** Mutations whose root fields are all one of these are signals (their own class and budget). */
const SIGNAL_FIELDS = new Set(['sendCallSignal']);

/** The rate class of an operation: queries, mutations, subscription starts, call signals. */
export function classify(op: OperationDefinitionNode): LimitClass {
  if (op.operation === 'query') return 'query';
  if (op.operation === 'subscription') return 'subscribe';
  const fields = op.selectionSet.selections;
  return fields.length > 0 && fields.every((s) => s.kind === Kind.FIELD && SIGNAL_FIELDS.has(s.name.value)) ? 'signal' : 'mutation';
}

const valueCost = (v: unknown, depth = 0): number => {
  if (depth > 20) return 1_000_000;
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + valueCost(x, depth + 1), 0);
  if (v !== null && typeof v === 'object') return Object.values(v).reduce((n: number, x) => n + valueCost(x, depth + 1), 0);
  return v === null || v === undefined ? 0 : 1;
};
const nodeCost = (node: ValueNode, vars: Record<string, unknown>): number => {
  switch (node.kind) {
    case Kind.VARIABLE:
      return valueCost(vars[node.name.value]);
    case Kind.LIST:
      return node.values.reduce((n, x) => n + nodeCost(x, vars), 0);
    case Kind.OBJECT:
      return node.fields.reduce((n, f) => n + nodeCost(f.value, vars), 0);
    case Kind.NULL:
      return 0;
    default:
      return 1;
  }
};

/**
 * A subscription's filter cost: every value in its root fields' arguments counts one, list entries
 * one each (`alertRaised(filter: {regions: [50 codes]})` costs 50, `presenceChanged(userIds:)`
 * one per user). It bounds the per-event matching work one subscription can ask for. Root fields
 * inside fragments count the same as fields written directly.
 */
export function filterCost(op: OperationDefinitionNode, document: DocumentNode, variables: Record<string, unknown> | undefined): number {
  let cost = 0;
  for (const f of rootFields(op, document)) for (const a of f.arguments ?? []) cost += nodeCost(a.value, variables ?? {});
  return cost;
}

/** Everything the transports ask about limits (see docs/protection.md, "Rate limits and caps"). */
export interface Limits {
  readonly enabled: boolean;
  readonly rate: RateLimiter;
  /** Takes a token of the operation's class; seconds to wait when refused (at once when this instance's leases cover it). */
  operation(op: OperationDefinitionNode, viewer: Viewer | undefined, ip: string | undefined): Verdict | Promise<Verdict>;
  /** A WebSocket upgrade from `ip` (per-address connection budget). */
  upgrade(ip: string | undefined): Promise<Verdict>;
  /** A connection_init of `viewer`: the per-user connection budget, then a socket slot. */
  socketOpening(viewer: Viewer, ip: string | undefined, socketId: string): Promise<'ok' | 'rate' | 'cap'>;
  socketClosed(viewer: Viewer, socketId: string): void;
  readonly subscriptionsPerSocket: number;
  readonly maxFilterCost: number;
  refused(cls: 'subscriptions' | 'filter_cost'): void;
  close(): void;
}

export function createLimits(deps: { config: Config; redis: RedisClient; metrics: Metrics; logger: Logger }): Limits {
  const { config } = deps;
  const rc = config.rateLimits;
  const rate = createRateLimiter({
    config: rc,
    redis: deps.redis,
    prefix: config.redisPrefix,
    metrics: limitMetrics(deps.metrics),
    logger: deps.logger,
  });
  const slots: SocketSlots | undefined = rc.enabled
    ? createSocketSlots({
        redis: deps.redis,
        prefix: config.redisPrefix,
        cap: rc.socketsPerUser,
        // presence's device lease and refresh: a crashed instance's sockets free their slots as its devices go offline
        leaseMs: config.presence.ttlMs,
        renewMs: config.presence.refreshMs,
        timeoutMs: rc.redisTimeoutMs,
        logger: deps.logger,
      })
    : undefined;
  return {
    enabled: rc.enabled,
    rate,
    operation: (op, viewer, ip) => (rc.enabled ? rate.take(classify(op), viewer, ip) : undefined),
    upgrade: async (ip) => (rc.enabled ? rate.take('connect', undefined, ip) : undefined),
    async socketOpening(viewer, _ip, socketId) {
      if (!slots) return 'ok';
      // the address was charged at the upgrade; here the user (or service token). The budget and the
      // slot are asked for together (one round trip on the pipelined connection, not two: this is
      // what every socket of a reconnect storm pays); a slot taken by a refused attempt is given back
      const [wait, claimed] = await Promise.all([rate.take('connect', viewer, undefined), slots.claim(viewer, socketId)]);
      if (wait) {
        if (claimed) slots.release(viewer, socketId);
        return 'rate';
      }
      if (claimed) return 'ok';
      rate.refused('sockets');
      return 'cap';
    },
    socketClosed: (viewer, socketId) => slots?.release(viewer, socketId),
    subscriptionsPerSocket: rc.enabled ? rc.subscriptionsPerSocket : Number.POSITIVE_INFINITY,
    maxFilterCost: rc.enabled ? rc.maxFilterCost : Number.POSITIVE_INFINITY,
    refused: (cls) => rate.refused(cls),
    close: () => slots?.close(),
  };
}

/**
 * Rate limits for operations over HTTP (the WebSocket protocol checks its own before executing):
 * a refused operation gets RATE_LIMITED with HTTP 429 and Retry-After, and executes nothing.
 */
export function httpRateLimits(limits: Limits, trustedProxies: number): Plugin {
  return {
    onExecute: ({ args, setResultAndStopExecution }) => {
      const ctx = args.contextValue as Partial<Context> & { req?: IncomingMessage };
      if (!limits.enabled || ctx.transport !== 'http') return;
      const op = getOperationAST(args.document, args.operationName);
      if (!op) return;
      // most checks are answered from this instance's leases, without a promise
      const verdict = limits.operation(op, ctx.viewer, ctx.req ? clientIp(ctx.req, trustedProxies) : undefined);
      if (verdict === undefined) return;
      if (typeof verdict === 'number') return setResultAndStopExecution({ errors: [rateLimitedHttp(verdict)] });
      return verdict.then((wait) => {
        if (wait) setResultAndStopExecution({ errors: [rateLimitedHttp(wait)] });
      });
    },
  };
}

/**
 * A RATE_LIMITED raised while executing (the calls module's own limits, `CALL_START_RATE_PER_MIN` and
 * `CALL_SIGNAL_RATE`) answers HTTP like the shared budgets: status 429 with `Retry-After` (the
 * longest wait), when every error of the operation is RATE_LIMITED and no field produced data, so a
 * 429 never hides a partial success. Applies with RATE_LIMITS=off too: those limits are the module's.
 */
export function httpRateLimitedStatus(): Plugin {
  return {
    onExecute: ({ args }) => {
      if ((args.contextValue as Partial<Context>).transport !== 'http') return undefined;
      return {
        onExecuteDone: ({ result, setResult }) => {
          if (isAsyncIterable(result) || result.data != null || !result.errors?.length) return;
          const waits = result.errors.map((e) =>
            e.extensions?.code === 'RATE_LIMITED' ? Number(e.extensions.retryAfterSeconds) : Number.NaN,
          );
          if (!waits.every((w) => Number.isFinite(w) && w > 0)) return;
          const wait = String(Math.max(...waits));
          setResult({ ...result, extensions: { ...result.extensions, http: { status: 429, headers: { 'Retry-After': wait } } } });
        },
      };
    },
  };
}
