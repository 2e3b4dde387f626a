import type { Redis, RedisOptions } from 'ioredis';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import type { Config } from './config.js';
import { type Database, openDatabase } from './db/client.js';
import { createAuthenticator, type Authenticator } from './http/auth.js';
import { createMetrics, registerQueueMetrics, type Metrics } from './http/metrics.js';
import type { Duties } from './jobs/define.js';
import type { ModuleDeps } from './modules/module.js';
import { type JobServices, MODULES, QUEUE_NAMES, type Services } from './modules/modules.js';
import { createCommit } from './realtime/commit.js';
import { createFanout } from './realtime/fanout.js';
import type { Fanout } from './realtime/fanout-types.js';
import { createHub, createPublisher, type Hub, type Publisher } from './realtime/hub.js';
import { ledgerRetention } from './realtime/retention.js';
import { createQueues, queuePrefix, type Queues } from './jobs/queues.js';
import { createCursorCodec, type CursorCodec } from './shared/cursor.js';
import { createLogger, type Logger } from './shared/logger.js';
import { connectRedis, isCluster, type RedisClient, type RedisTarget, withHandledSubscriptionCalls } from './shared/redis-client.js';
import { redisRetryStrategy, watchRedis } from './shared/redis-watch.js';
import { createShardedPubSub } from './realtime/sharded-pubsub.js';
import type { FanoutPubSub } from './realtime/hub.js';

/** What every process builds: storage, Redis for commands, publishing and queues, the services. */
export interface CoreContainer {
  config: Config;
  logger: Logger;
  database: Database;
  redis: { commands: RedisClient; pub: RedisClient; queue: RedisClient };
  /** A new connection for a role that needs its own (BullMQ workers: `maxRetriesPerRequest: null`). */
  redisConnection(role: 'worker'): RedisClient;
  queues: Queues;
  /** Publishes committed and ephemeral events (the hub where there is one). */
  publisher: Publisher;
  cursors: CursorCodec;
  metrics: Metrics;
  auth: Authenticator;
  services: Services;
  /** The worker side of the domains (what timers and jobs run); built for the worker and all roles only. */
  jobs: JobServices | undefined;
  /** Every module's job handlers and periodic duties, bound to `jobs`; built with them. */
  duties: Duties | undefined;
  /** Closes everything in reverse order of creation. */
  close(): Promise<void>;
}

/** An API-serving process (`serve`, `all`): also receives events (hub) and delivers them (fan-out). */
export interface Container extends CoreContainer {
  redis: CoreContainer['redis'] & { sub: RedisClient };
  /** RedisPubSub on one Redis; sharded pub/sub (SSUBSCRIBE/SPUBLISH) on a cluster. */
  pubsub: FanoutPubSub;
  hub: Hub;
  fanout: Fanout;
}

/** Which process the container is for: a `worker` builds no subscriber, hub or fan-out. */
export type ContainerRole = 'serve' | 'worker' | 'all';

export interface ContainerOptions {
  logger?: Logger;
  /** Apply migrations on start (default true). */
  migrate?: boolean;
  /** Default `all`. */
  role?: ContainerRole;
}

/**
 * Redis connection options for a role. Every role reconnects forever on a short schedule
 * ({@link redisRetryStrategy}), so any process rides out an outage and recovers by itself:
 * - `sub` and `worker` wait out an outage (`maxRetriesPerRequest: null`, BullMQ's requirement);
 * - `pub` and `queue` fail fast instead of buffering (no offline queue): publishing after a commit
 *   and enqueueing after a commit are best effort, backed by the ledger poll and the reconcilers;
 * - `commands` serves requests: a few retries, then the request fails instead of hanging.
 * `commands`, `pub` and `queue` also give up on a command Redis does not answer within
 * REDIS_COMMAND_TIMEOUT_MS (a stopped or black-holed server keeps the TCP connection open); `sub` and
 * `worker` do not, since their blocking commands wait on purpose.
 */
export function redisOptions(config: Config, role: string): { target: RedisTarget; options: RedisOptions } {
  const waits = role === 'sub' || role === 'worker';
  const failsFast = role === 'pub' || role === 'queue';
  return {
    target: redisTarget(config),
    options: {
      connectionName: `wardline:${role}`,
      retryStrategy: redisRetryStrategy,
      maxRetriesPerRequest: waits ? null : failsFast ? 0 : 3,
      enableOfflineQueue: !failsFast,
      ...(waits || !config.faults.redisCommandTimeoutMs ? {} : { commandTimeout: config.faults.redisCommandTimeoutMs }),
    },
  };
}

/** Where the deployment's Redis is: REDIS_CLUSTER_NODES (a cluster) when set, else REDIS_URL or the local default. */
export const redisTarget = (config: Config): RedisTarget => ({
  url: config.redisUrl ?? 'redis://127.0.0.1:6379',
  clusterNodes: config.redisClusterNodes,
});

/** Resolves once `r` is connected (rejects after `ms`: Redis answered another connection, so this is unexpected). */
const whenReady = (r: RedisClient, ms = 10_000) =>
  r.status === 'ready'
    ? Promise.resolve()
    : new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('Redis connection did not become ready')), ms);
        r.once('ready', () => {
          clearTimeout(t);
          resolve();
        });
      });

/**
 * The composition root: builds every dependency once and passes it down. Nothing else in the
 * code base opens connections, so a second instance is just a second call.
 */
export async function createContainer(config: Config, opts: ContainerOptions & { role: 'worker' }): Promise<CoreContainer>;
export async function createContainer(config: Config, opts?: ContainerOptions): Promise<Container>;
export async function createContainer(config: Config, opts: ContainerOptions = {}): Promise<CoreContainer | Container> {
  const receives = opts.role !== 'worker';
  const logger = opts.logger ?? createLogger(config.logLevel);
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const database = await openDatabase(config.databaseUrl, config.dataDir);
    closers.push(() => database.close());
    if (opts.migrate !== false) await database.migrate();

    const mk = (role: string) => {
      const { target, options } = redisOptions(config, role);
      const r = connectRedis(target, { ...options, sharded: role === 'sub' });
      watchRedis(r, role, logger);
      closers.push(() => closeRedis(r));
      return r;
    };
    const redis = { commands: mk('commands'), pub: mk('pub'), queue: mk('queue') };
    // the commands connection fails when Redis is unreachable at start (a clear error, not a hang)
    await redis.commands.ping();
    await Promise.all([redis.pub, redis.queue].map((r) => whenReady(r)));
    const queues = createQueues(redis.queue, queuePrefix(config), logger, QUEUE_NAMES, config.faults.afterCommitMs);
    closers.push(() => queues.close());

    const metrics = createMetrics();
    registerQueueMetrics(metrics, () => queues.counts());
    const cursors = createCursorCodec(config.cursorSecret);
    const realtime = receives
      ? await createRealtime(config, { mk, pub: redis.pub, db: database.db, logger, metrics, cursors, closers })
      : undefined;
    const publisher: Publisher = realtime?.hub ?? createPublisher(redis.pub, config.redisPrefix);

    const commit = createCommit(database.db, publisher, logger, config.faults.afterCommitMs);
    const deps: ModuleDeps = {
      config,
      logger,
      db: database.db,
      commit,
      cursors,
      queues,
      publisher,
      redis: redis.commands,
      metrics,
    };
    const services = buildServices(deps, closers);
    const workerSide = opts.role === 'serve' ? undefined : await buildWorkerSides(deps, services);

    const core: CoreContainer = {
      config,
      logger,
      database,
      redis,
      redisConnection: (role) => mk(role),
      queues,
      publisher,
      cursors,
      metrics,
      auth: createAuthenticator(config.auth),
      services,
      jobs: workerSide?.jobs,
      duties: workerSide?.duties,
      async close() {
        for (const c of closers.reverse()) await c().catch((err) => logger.warn({ err }, 'close failed'));
      },
    };
    return realtime ? { ...core, redis: { ...redis, sub: realtime.sub }, ...realtime } : core;
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw err;
  }
}

/** The receiving half of an API process: the subscriber connection, the hub and the fan-out. */
async function createRealtime(
  config: Config,
  d: {
    mk: (role: string) => RedisClient;
    pub: RedisClient;
    db: Database['db'];
    logger: Logger;
    metrics: Metrics;
    cursors: CursorCodec;
    closers: Array<() => Promise<unknown>>;
  },
) {
  const sub = d.mk('sub');
  await whenReady(sub);
  // one Redis: graphql-redis-subscriptions as always; a cluster: sharded pub/sub (a channel lives on
  // the master of its slot, so fan-out grows with the masters instead of crossing every node)
  const pubsub: FanoutPubSub =
    isCluster(sub) && isCluster(d.pub)
      ? createShardedPubSub({ publisher: d.pub, subscriber: sub })
      : new RedisPubSub({ publisher: d.pub as Redis, subscriber: withHandledSubscriptionCalls(sub as Redis) });
  const hub = createHub({ pubsub, db: d.db, logger: d.logger, channelPrefix: config.redisPrefix, pollMs: config.realtime.pollMs });
  d.closers.push(() => hub.close());
  const fanout = createFanout({
    hub,
    db: d.db,
    cursors: d.cursors,
    logger: d.logger,
    metrics: {
      delivered: (n, ms) => {
        d.metrics.deliveries.inc(n);
        d.metrics.deliveryLatency.observe(ms / 1000);
      },
    },
  });
  return { sub, pubsub, hub, fanout };
}

/**
 * Every module's API service, in the order of `MODULES` (each gets the services built before it).
 * The record is typed per module; the loop only assembles them.
 */
function buildServices(deps: ModuleDeps, closers: Array<() => Promise<unknown>>): Services {
  const built: Record<string, unknown> = {};
  for (const m of MODULES) {
    const service = m.service(deps, built as never);
    built[m.name] = service;
    const close = m.close;
    if (close) closers.push(() => close(service as never));
  }
  return built as Services;
}

/** Every module's worker side and duties (dynamic imports: only processes that run jobs load them). */
async function buildWorkerSides(deps: ModuleDeps, services: Services): Promise<{ jobs: JobServices; duties: Duties }> {
  const jobs: Record<string, unknown> = {};
  const { realtime } = deps.config;
  const duties: Duties = {
    jobs: [],
    periodic: [
      ledgerRetention({ db: deps.db, logger: deps.logger, retentionDays: realtime.retentionDays, everyMs: realtime.retentionEveryMs }),
    ],
  };
  for (const m of MODULES) {
    const w = await m.worker?.(deps, services as never);
    if (!w) continue;
    jobs[m.name] = w.side;
    duties.jobs.push(...w.duties.jobs);
    duties.periodic.push(...w.duties.periodic);
  }
  return { jobs: jobs as JobServices, duties };
}

/**
 * Closes a Redis connection without ever waiting on an absent server: QUIT when it is connected
 * (bounded: a hung server gets a disconnect after 1 s), an immediate disconnect otherwise (a QUIT
 * would sit in the offline queue of a connection that waits out outages, and shutdown with it).
 */
async function closeRedis(r: RedisClient): Promise<void> {
  if (r.status !== 'ready') return r.disconnect();
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 1_000)));
  const outcome = await Promise.race([r.quit().catch(() => 'failed' as const), gaveUp]);
  clearTimeout(timer);
  if (outcome !== 'OK') r.disconnect();
}
