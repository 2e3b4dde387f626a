import { randomBytes } from 'node:crypto';
import { createApi } from '../api.js';
import { type Config, loadConfig } from '../config.js';
import { type CoreContainer, createContainer } from '../container.js';
import { openDatabase } from '../db/client.js';
import { mintToken, type TokenClaims } from '../http/auth.js';
import type { Logger } from '../shared/logger.js';
import { DataDirLockedError, assertPortFree, lockHolder, noteServedUrl } from './data-lock.js';
import { devJwtSecret, needsDevSecret } from './dev-secret.js';
import { type Dependency, awaitDependencies } from './dependencies.js';
import { provideRedis } from './embedded-redis.js';
import { startSandbox } from './sandbox.js';
import { DEMO_ORG, DEMO_USERS, demoTokens, formatDemoBanner, seedDemo } from './seed.js';

/**
 * Validates the environment (throws `ConfigError` listing every problem). Outside production,
 * with neither JWT_SECRET nor JWKS_URL, the secret kept in DATA_DIR/dev-jwt-secret is used.
 */
export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const dataDir = env.DATA_DIR || '.data';
  let devSecret: string | undefined;
  if (needsDevSecret(env)) devSecret = dataDir === ':memory:' ? randomBytes(48).toString('base64url') : devJwtSecret(dataDir);
  return loadConfig(env, devSecret);
}

/** What a process must release on shutdown, in reverse order of acquisition. */
export interface Lifecycle {
  /** Registers a release step; steps run newest first (api, then workers, container, redis-server). */
  defer(name: string, step: () => Promise<unknown>): void;
  /** Runs every step once, even if some fail; later calls return the same promise. */
  stop(): Promise<void>;
}

export function createLifecycle(logger: Logger): Lifecycle {
  const steps: Array<{ name: string; step: () => Promise<unknown> }> = [];
  let stopping: Promise<void> | undefined;
  return {
    defer: (name, step) => void steps.push({ name, step }),
    stop() {
      stopping ??= (async () => {
        for (const { name, step } of steps.reverse()) {
          try {
            await step();
          } catch (err) {
            logger.warn({ err, step: name }, 'shutdown step failed');
          }
        }
      })();
      return stopping;
    },
  };
}

/**
 * Stops gracefully on SIGTERM or SIGINT and exits 0. A signal during startup waits for startup
 * to settle (a half-opened database is closed, not abandoned). A second signal, a second or more
 * after the first, exits 1 at once; so does a shutdown that overruns SHUTDOWN_GRACE_MS by 10 s.
 */
export function stopOnSignals(lifecycle: Lifecycle, logger: Logger, started: Promise<unknown>, graceMs: number): void {
  let signalledAt = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalledAt) {
      // a Ctrl-C under `npm start` can arrive twice at once (from the terminal and forwarded by npm)
      if (Date.now() - signalledAt < 1_000) return;
      logger.warn({ signal }, 'second signal: exiting without finishing shutdown');
      process.exit(1);
    }
    signalledAt = Date.now();
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error({ graceMs }, 'shutdown timed out');
      process.exit(1);
    }, graceMs + 10_000).unref();
    // when startup fails instead, main's failure path stops the lifecycle and exits 1
    started.then(
      () =>
        lifecycle.stop().then(() => {
          logger.info('stopped');
          process.exit(0);
        }),
      () => {},
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * Ends a server process that cannot go on by itself: one log line saying why, an orderly stop, and
 * exit code 1, so a supervisor (compose, systemd, Kubernetes) restarts it. Never a silent half-alive process.
 */
export function exitFatally(logger: Logger, lifecycle: Lifecycle, reason: string, err?: unknown): void {
  logger.fatal({ reason, err }, 'exiting: cannot continue');
  setTimeout(() => process.exit(1), 5_000).unref();
  void lifecycle.stop().finally(() => process.exit(1));
}

/** Unhandled errors end a server process loudly (one fatal line, exit 1) instead of silently. */
export function exitOnUnhandled(logger: Logger, lifecycle: Lifecycle): void {
  process.on('unhandledRejection', (err) => exitFatally(logger, lifecycle, 'unhandled promise rejection', err));
  process.on('uncaughtException', (err) => exitFatally(logger, lifecycle, 'uncaught exception', err));
}

const shownHost = (host: string) =>
  host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host.includes(':') ? `[${host}]` : host;

/** The GraphQL URL a developer on this machine opens. */
export const graphqlUrl = (host: string, port: number) => `http://${shownHost(host)}:${port}/graphql`;

export interface ServerOptions {
  /** Serve the HTTP + WebSocket API (`serve`, `all`). */
  api: boolean;
  /** Run the BullMQ workers in this process (`worker`, `all`). */
  workers: boolean;
}

/**
 * Starts one API instance on the composition root: Redis (configured, local or spawned), the
 * container (migrations applied), the demo seed on an empty database, then the HTTP + WebSocket
 * server. Every acquired resource is registered on `lifecycle` as soon as it exists.
 */
export async function startServer(config: Config, logger: Logger, lifecycle: Lifecycle, opts: ServerOptions): Promise<number> {
  // the front door's traps, before anything is opened: a busy port, an embedded database in use
  if (opts.api) await assertPortFree(config.host, config.port);
  const holder = config.databaseUrl ? undefined : lockHolder(config.dataDir);
  if (holder) throw new DataDirLockedError(config.dataDir, holder);
  const redis = await redisOf(config, logger);
  lifecycle.defer('redis-server', () => redis.stop());
  const cfg: Config = { ...config, redisUrl: redis.url };
  // an unreachable dependency is waited for up to STARTUP_TIMEOUT_MS, then reported once with its cause
  await awaitDependencies(dependenciesOf(cfg), cfg.faults.startupTimeoutMs, logger);

  // each process builds only what it runs: a worker has no subscriber, hub or fan-out
  if (!opts.api) {
    const w = await createContainer(cfg, { logger, role: 'worker' });
    lifecycle.defer('container', () => w.close());
    await startJobs(w, logger, lifecycle);
    logger.info({ database: w.database.kind, redis: redis.source }, 'worker running');
    return 0;
  }
  const c = await createContainer(cfg, { logger, role: opts.workers ? 'all' : 'serve' });
  lifecycle.defer('container', () => c.close());
  // only a process that serves the API seeds (and prints the tokens a developer needs)
  const seeded = cfg.seedOnEmpty && (await c.services.identity.isEmpty()) ? await seedDemo(c.services) : undefined;
  // Workers stop after the API on shutdown (in-flight jobs finish), so they are registered first.
  if (opts.workers) await startJobs(c, logger, lifecycle);

  const api = createApi(c);
  lifecycle.defer('api', () => api.close());
  const port = await api.listen(cfg.port, cfg.host);
  const url = graphqlUrl(cfg.host, port);
  if (!cfg.databaseUrl) noteServedUrl(cfg.dataDir, url);
  logger.info({ port, host: cfg.host, database: c.database.kind, redis: redis.source }, 'listening');
  if (seeded) process.stdout.write(`${formatDemoBanner(seeded, await demoTokens(cfg, seeded), url)}\n`);
  if (cfg.env !== 'production') {
    process.stdout.write(`listening on ${url}${cfg.graphiql ? ' (GraphiQL: open it in a browser)' : ''}\n`);
  }
  return port;
}

/**
 * `sandbox`: `all`, plus a synthetic stream into the demo organisation (seeded on an empty
 * database as by `npm start`) through the public API, so every subscription of the tour moves.
 */
export async function startSandboxServer(config: Config, logger: Logger, lifecycle: Lifecycle, intervalMs = 3_000): Promise<number> {
  if (!config.auth.jwtSecret) throw new TokenError("JWKS_URL is set: the sandbox signs the demo users' tokens with JWT_SECRET only.");
  const port = await startServer({ ...config, seedOnEmpty: true }, logger, lifecycle, { api: true, workers: true });
  const tokens = await demoTokens(config, { orgId: DEMO_ORG.id, users: DEMO_USERS, conversationId: '', created: false });
  const byRole = (role: string) => tokens?.find((t) => t.role === role)?.token as string;
  const url = graphqlUrl(config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host, port);
  const sandbox = await startSandbox(
    url,
    { patient: byRole('patient'), provider: byRole('provider'), service: byRole('service') },
    logger,
    intervalMs,
  );
  lifecycle.defer('sandbox', () => sandbox.stop());
  process.stdout.write(
    `sandbox: a message every ${intervalMs / 1000} s in conversation ${sandbox.conversationId}, presence changes, alerts near Sydney, ` +
      'notifications and reminders for demo-patient. Watch them in GraphiQL (ConversationEvents, WatchPresence, AlertsNearMe, Inbox).\n',
  );
  return port;
}

/** Loads the job handlers (only processes that run jobs import them) and starts the workers. */
async function startJobs(c: CoreContainer, logger: Logger, lifecycle: Lifecycle): Promise<void> {
  const { startWorkers } = await import('../worker.js');
  const w = startWorkers(c, undefined, { onFatal: (reason) => exitFatally(logger, lifecycle, reason) });
  lifecycle.defer('workers', () => w.close());
}

/**
 * The deployment's Redis: a cluster (REDIS_CLUSTER_NODES, which wins over REDIS_URL), else REDIS_URL,
 * the local one or a spawned redis-server.
 */
async function redisOf(config: Config, logger: Logger): Promise<{ url: string | undefined; source: string; stop(): Promise<void> }> {
  if (!config.redisClusterNodes) return provideRedis(config.redisUrl, config.dataDir, logger);
  if (config.redisUrl) logger.warn('REDIS_URL is ignored: REDIS_CLUSTER_NODES is set, so Redis is the cluster');
  return { url: undefined, source: 'REDIS_CLUSTER_NODES', stop: async () => {} };
}

/** The external services a process with `cfg` needs (the embedded database is not one). */
const dependenciesOf = (cfg: Config): Dependency[] => [
  ...(cfg.databaseUrl ? [{ name: 'PostgreSQL' as const, url: cfg.databaseUrl }] : []),
  ...(cfg.redisClusterNodes
    ? [
        {
          name: 'Redis' as const,
          url: `redis://${cfg.redisClusterNodes[0]!.host}:${cfg.redisClusterNodes[0]!.port}`,
          clusterNodes: cfg.redisClusterNodes,
        },
      ]
    : cfg.redisUrl
      ? [{ name: 'Redis' as const, url: cfg.redisUrl }]
      : []),
];

/** `migrate`: applies the migrations in drizzle/ and exits; needs no Redis. */
export async function migrateDatabase(config: Config, logger: Logger): Promise<void> {
  await awaitDependencies(
    dependenciesOf({ ...config, redisUrl: undefined, redisClusterNodes: undefined }),
    config.faults.startupTimeoutMs,
    logger,
  );
  const database = await openDatabase(config.databaseUrl, config.dataDir);
  try {
    await database.migrate();
  } finally {
    await database.close();
  }
  logger.info({ database: database.kind }, 'migrations applied');
}

/** `seed`: seeds (or finds) the demo organisation and prints its tokens. */
export async function seedDatabase(config: Config, logger: Logger, lifecycle: Lifecycle): Promise<void> {
  const holder = config.databaseUrl ? undefined : lockHolder(config.dataDir);
  if (holder) {
    // the server has the embedded database open (and seeded it on its first start): print the tokens only
    process.stdout.write(`${await tokensWhileLocked(config, holder.pid, holder.url)}\n`);
    return;
  }
  const redis = await redisOf(config, logger);
  lifecycle.defer('redis-server', () => redis.stop());
  const cfg: Config = { ...config, redisUrl: redis.url };
  await awaitDependencies(dependenciesOf(cfg), cfg.faults.startupTimeoutMs, logger);
  const c = await createContainer(cfg, { logger });
  lifecycle.defer('container', () => c.close());
  const seed = await seedDemo(c.services);
  process.stdout.write(`${formatDemoBanner(seed, await demoTokens(cfg, seed), graphqlUrl(cfg.host, cfg.port))}\n`);
}

async function tokensWhileLocked(config: Config, pid: number, url: string | undefined): Promise<string> {
  const tokens = await demoTokens(config, { orgId: DEMO_ORG.id, users: DEMO_USERS, conversationId: '', created: false });
  const lines = [
    '',
    `Process ${pid} (the server) has the embedded database in ${config.dataDir} open, so seed leaves it alone:`,
    `a server seeds the demo organisation "${DEMO_ORG.id}" when it starts on an empty database (SEED_ON_EMPTY).`,
  ];
  if (tokens) {
    lines.push('Demo tokens (GraphiQL Headers tab: {"Authorization": "Bearer <token>"}):');
    for (const t of tokens) lines.push(`  ${t.role.padEnd(9)} ${t.id.padEnd(14)} ${t.token}`);
  } else lines.push('JWKS_URL is set: sign tokens for the demo users with your identity provider.');
  lines.push(`GraphiQL: ${url ?? graphqlUrl(config.host, config.port)}`, '');
  return lines.join('\n');
}

/** Thrown when a token cannot be minted here (JWKS_URL configured: no shared secret). */
export class TokenError extends Error {}

/** `token`: an HS256 token signed with JWT_SECRET (or the dev secret), with issuer/audience if set. */
export async function mintDevToken(config: Config, claims: TokenClaims, ttlSeconds: number): Promise<string> {
  if (!config.auth.jwtSecret) {
    throw new TokenError('JWKS_URL is set, so tokens come from your identity provider; `token` signs with JWT_SECRET only.');
  }
  return mintToken(config.auth.jwtSecret, claims, ttlSeconds, config.auth);
}
