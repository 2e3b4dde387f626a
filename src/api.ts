import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { type DocumentNode, GraphQLError, Kind, getOperationAST, visit } from 'graphql';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { Container } from './container.js';
import type { Context } from './graphql/context.js';
import { buildSchema } from './graphql/schema.js';
import { createGraphiQLPage } from './http/graphiql.js';
import { createHealth } from './http/health.js';
import { createLimits, httpRateLimitedStatus, httpRateLimits } from './protection/limits.js';
import { clientIp } from './protection/rate-limits.js';
import { introspectionPolicy } from './http/introspection-policy.js';
import { createHttpPolicy } from './http/origin-policy.js';
import { createRevocations } from './realtime/revocations.js';
import { CloseCode } from './realtime/ws/close-codes.js';
import { type ConnectionControl, createSocketSessions } from './realtime/ws/sessions.js';
import { attachWsServer, type WsServer } from './realtime/ws/adapter.js';
import { type Enveloped, createProtocol } from './realtime/ws/protocol.js';
import { createSharedRender } from './realtime/ws/shared-render.js';
import { badInput, isCoded } from './shared/errors.js';
import { safeError } from './shared/logger.js';
import type { Viewer } from './shared/viewer.js';

export interface Api {
  /** Starts listening; resolves with the bound port (pass 0 for a free one). */
  listen(port?: number, host?: string): Promise<number>;
  /**
   * Graceful stop: readiness fails first (for SHUTDOWN_DRAIN_MS, while still serving), then sockets close with 1001 so clients reconnect elsewhere,
   * in-flight HTTP requests finish, then the server closes. Does not close the container.
   */
  close(): Promise<void>;
  readonly ws: WsServer;
}

const withCode = (err: GraphQLError, code: string) =>
  new GraphQLError(err.message, {
    nodes: err.nodes,
    source: err.source,
    positions: err.positions,
    path: err.path,
    extensions: { ...err.extensions, code },
  });

/** Gives parse and validation errors (armor limits included) a catalog code. */
const codeRequestErrors = (): Plugin => ({
  onParse:
    () =>
    ({ result, replaceParseResult }) => {
      if (result instanceof GraphQLError && !result.extensions?.code) replaceParseResult(withCode(result, 'BAD_USER_INPUT'));
    },
  onValidate:
    () =>
    ({ result, setResult }) => {
      if (result.some((e) => !e.extensions?.code)) setResult(result.map((e) => (e.extensions?.code ? e : withCode(e, 'BAD_USER_INPUT'))));
    },
});

/**
 * Page sizes are clamped to MAX_PAGE_SIZE, but graphql-armor's cost limit multiplies by a literal
 * `first`/`last` before any resolver runs: an inline `first: 1000` would be refused while the same
 * value through a variable is clamped. Clamping literals at parse time makes both behave alike.
 */
const clampPageLiterals = (max: number): Plugin => {
  // per document: yoga's parser cache hands every request with the same text the same document,
  // so the AST is walked once per distinct operation, not on every request (null: nothing to clamp)
  const clamped = new WeakMap<DocumentNode, DocumentNode | null>();
  const clamp = (doc: DocumentNode): DocumentNode | null => {
    let changed = false;
    const out = visit(doc, {
      Argument(node) {
        if ((node.name.value !== 'first' && node.name.value !== 'last') || node.value.kind !== Kind.INT) return undefined;
        if (Number(node.value.value) <= max) return undefined;
        changed = true;
        return { ...node, value: { ...node.value, value: String(max) } };
      },
    });
    return changed ? out : null;
  };
  return {
    onParse:
      () =>
      ({ result, replaceParseResult }) => {
        if (!result || result instanceof Error) return;
        const doc = result as DocumentNode;
        let out = clamped.get(doc);
        if (out === undefined) {
          out = clamp(doc);
          clamped.set(doc, out);
        }
        if (out) replaceParseResult(out);
      },
  };
};

/** Query and mutation latency, observed in the pipeline both transports share. */
const measureOperations = (metrics: Container['metrics']): Plugin => ({
  onExecute: ({ args }) => {
    const started = performance.now();
    const type = getOperationAST(args.document, args.operationName)?.operation ?? 'unknown';
    return {
      onExecuteDone: () => {
        metrics.operationLatency.observe({ operation_type: type }, (performance.now() - started) / 1000);
      },
    };
  },
});

/**
 * Subscriptions are served over graphql-ws only: there a socket is closed when its token expires
 * and membership changes end streams. Over HTTP (SSE) neither could be enforced.
 */
const subscriptionsOverWebSocketOnly = (): Plugin<Context> => ({
  onSubscribe: ({ args, setResultAndStopExecution }) => {
    if ((args.contextValue as Context).transport !== 'ws')
      setResultAndStopExecution({
        errors: [badInput('Subscriptions are served over WebSocket (graphql-transport-ws) at /graphql, not over HTTP.')],
      });
  },
});

/** Creates the HTTP + WebSocket API on `/graphql` for one container (one instance). */
export function createApi(c: Container): Api {
  const { config, logger, services, fanout, auth } = c;
  const limits = createLimits({ config, redis: c.redis.commands, metrics: c.metrics, logger });
  const sessions = createSocketSessions();
  const revocations = createRevocations({
    redis: c.redis.commands,
    pubsub: c.pubsub,
    prefix: config.redisPrefix,
    ttlSeconds: config.sessions.revocationTtlSeconds,
    logger,
    onRevoked: (orgId, userId, notBefore) =>
      sessions.closeUser(orgId, userId, notBefore, CloseCode.Forbidden, 'Forbidden: sessions revoked'),
  });
  const revocationsReady = revocations.start();
  revocationsReady.catch(() => {}); // reported by listen()
  const authenticate = async (authorization: unknown): Promise<Viewer | undefined> => {
    const viewer = await auth.verify(typeof authorization === 'string' ? authorization : undefined);
    if (!viewer || revocations.isRevoked(viewer)) return undefined;
    await services.identity.ensureViewer(viewer);
    return viewer;
  };

  const maskError = (err: unknown): GraphQLError => {
    const original = err instanceof GraphQLError && err.originalError ? err.originalError : err;
    if (isCoded(original)) return err instanceof GraphQLError && err.path ? withCode(err, String(original.extensions.code)) : original;
    if (err instanceof GraphQLError && !err.originalError) return err.extensions?.code ? err : withCode(err, 'BAD_USER_INPUT');
    // variable coercion (`$n: Int` given "abc", an unknown enum value) wraps graphql-js's own
    // user-safe GraphQLError; without a path it never came from a resolver
    if (err instanceof GraphQLError && !err.path && original instanceof GraphQLError) return withCode(err, 'BAD_USER_INPUT');
    logger.error({ err: original }, 'unexpected error');
    return new GraphQLError('Unexpected error.', {
      path: err instanceof GraphQLError ? err.path : undefined,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  };

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema: buildSchema(),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // yoga logs resolver errors itself; route them through safeError so no data reaches logs
    logging: {
      debug: () => {},
      info: () => {},
      warn: (...a) => logger.warn({ errors: a.map((x) => (x instanceof Error ? safeError(x) : String(x).split('\n')[0])) }, 'yoga warning'),
      error: () => {},
    },
    maskedErrors: { maskError: (err) => maskError(err) },
    // GraphiQL is served by http/graphiql.ts (assets from this server, its own fetcher)
    graphiql: false,
    // CORS is answered by http/origin-policy.ts from ALLOWED_ORIGINS, before yoga
    cors: false,
    plugins: [
      EnvelopArmorPlugin({
        maxDepth: { n: config.limits.maxDepth },
        maxAliases: { n: config.limits.maxAliases },
        maxTokens: { n: config.limits.maxTokens },
        costLimit: { maxCost: config.limits.maxCost },
        maxDirectives: { n: config.limits.maxDirectives },
        blockFieldSuggestion: { enabled: true },
      }),
      clampPageLiterals(config.limits.maxPageSize),
      codeRequestErrors(),
      subscriptionsOverWebSocketOnly(),
      httpRateLimits(limits, config.rateLimits.trustedProxies),
      httpRateLimitedStatus(),
      measureOperations(c.metrics),
      ...[introspectionPolicy(config.introspection)].filter((p): p is Plugin => p !== undefined),
    ],
    context: async (initial): Promise<Context> => {
      const requestId = (initial.requestId as string | undefined) ?? randomUUID();
      let viewer = initial.viewer as Viewer | undefined;
      if (initial.transport !== 'ws') {
        const request = initial.request as Request;
        viewer = await authenticate(request.headers.get('authorization'));
      }
      const socketId = initial.transport === 'ws' ? (initial.socketId as string | undefined) : undefined;
      const req = initial.req as IncomingMessage | undefined;
      const ip = initial.transport === 'ws' ? (initial.ip as string | undefined) : req && clientIp(req, config.rateLimits.trustedProxies);
      const connection = initial.transport === 'ws' ? (initial.connection as ConnectionControl | undefined) : undefined;
      const transport = initial.transport === 'ws' ? 'ws' : 'http';
      return { viewer, services, realtime: fanout, requestId, socketId, ip, transport, connection, revocations };
    },
  });

  const health = createHealth(c);
  const graphiql = config.graphiql ? createGraphiQLPage({ endpoint: '/graphql', title: 'Wardline GraphiQL' }) : undefined;
  const policy = createHttpPolicy(config.http, async (authorization) => (await auth.verify(authorization))?.role === 'service');
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (health.handle(req, res)) return;
    if (graphiql?.handle(req, res)) return;
    policy.admit(req, res, () => void yoga(req, res));
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;

  const protocol = createProtocol({
    config: config.ws,
    metrics: c.metrics,
    render: createSharedRender({ fanout, logger, maskError }),
    authenticate,
    getEnveloped: (initial) => yoga.getEnveloped(initial) as unknown as Enveloped,
    maskError,
    onSocket: { opened: services.presence.socketOpened, closed: services.presence.socketClosed },
    limits: limits.enabled ? limits : undefined,
    sessions,
    onSubscription: (args, op) => services.audit.subscription(args.contextValue as Context, args, op),
  });
  const ws = attachWsServer(server, '/graphql', {
    config: config.ws,
    logger,
    metrics: c.metrics,
    protocol,
    clientIp: (req) => clientIp(req, config.rateLimits.trustedProxies),
    admit: limits.enabled ? limits.upgrade : undefined,
  });

  return {
    ws,
    listen: (port = config.port, host = config.host) =>
      revocationsReady.then(
        () =>
          new Promise((resolve, reject) => {
            server.once('error', reject);
            server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
          }),
      ),
    async close() {
      health.setDraining();
      // SHUTDOWN_DRAIN_MS: readiness answers 503 while everything keeps serving (new connections
      // included), so a load balancer sees the instance leave before its sockets are closed
      if (config.faults.drainMs > 0) {
        logger.info({ drainMs: config.faults.drainMs }, 'draining: readiness fails, still serving');
        await new Promise((r) => setTimeout(r, config.faults.drainMs));
      }
      await revocations.close();
      await ws.close();
      limits.close();
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), config.shutdownGraceMs);
      force.unref();
      await closed;
      clearTimeout(force);
    },
  };
}
