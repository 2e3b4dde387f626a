import { Redis, type RedisOptions } from 'ioredis';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import type { Config } from './config.js';
import { type Database, openDatabase } from './db/client.js';
import { createAuthenticator, type Authenticator } from './http/auth.js';
import { createMetrics, registerQueueMetrics, type Metrics } from './http/metrics.js';
import { createAlertsService, type AlertsService } from './modules/alerts/service.js';
import { createEscalation, type Escalation } from './modules/alerts/escalation.js';
import { createDelivery, type Delivery } from './modules/reminders/delivery.js';
import { createIdentityService, type IdentityService } from './modules/identity/service.js';
import { createNotificationsService, type NotificationsService } from './modules/notifications/service.js';
import { createCommit } from './realtime/commit.js';
import { createMessagingService, type MessagingService } from './modules/messaging/service.js';
import { createPresenceService, type PresenceService } from './modules/presence/service.js';
import { createRemindersService, type RemindersService } from './modules/reminders/service.js';
import { createFanout } from './realtime/fanout.js';
import type { Fanout } from './realtime/fanout-types.js';
import { createHub, createPublisher, type Hub, type Publisher } from './realtime/hub.js';
import { createQueues, type Queues } from './jobs/queues.js';
import { createCursorCodec, type CursorCodec } from './shared/cursor.js';
import { createLogger, type Logger } from './shared/logger.js';
import { redisRetryStrategy, watchRedis } from './shared/redis-watch.js';

/** Domain services; resolvers call these and nothing else. */
export interface Services {
  alerts: AlertsService;
  identity: IdentityService;
  messaging: MessagingService;
  notifications: NotificationsService;
  presence: PresenceService;
  reminders: RemindersService;
}

/** What every process builds: storage, Redis for commands, publishing and queues, the services. */
export interface CoreContainer {
  config: Config;
  logger: Logger;
  database: Database;
  redis: { commands: Redis; pub: Redis; queue: Redis };
  /** A new connection for a role that needs its own (BullMQ workers: `maxRetriesPerRequest: null`). */
  redisConnection(role: 'worker'): Redis;
  queues: Queues;
  /** Publishes committed and ephemeral events (the hub where there is one). */
  publisher: Publisher;
  cursors: CursorCodec;
  metrics: Metrics;
  auth: Authenticator;
  services: Services;
  /** The worker side of the domains (what timers and jobs run); built for the worker and all roles only. */
  jobs: JobServices | undefined;
  /** Closes everything in reverse order of creation. */
  close(): Promise<void>;
}

/** What job handlers call: never reachable from resolvers. */
export interface JobServices {
  alerts: Escalation;
  reminders: Delivery;
}

/** An API-serving process (`serve`, `all`): also receives events (hub) and delivers them (fan-out). */
export interface Container extends CoreContainer {
  redis: CoreContainer['redis'] & { sub: Redis };
  pubsub: RedisPubSub;
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
 */
export function redisOptions(config: Config, role: string): { url: string; options: RedisOptions } {
  const waits = role === 'sub' || role === 'worker';
  const failsFast = role === 'pub' || role === 'queue';
  return {
    url: config.redisUrl ?? 'redis://127.0.0.1:6379',
    options: {
      connectionName: `wardline:${role}`,
      retryStrategy: redisRetryStrategy,
      maxRetriesPerRequest: waits ? null : failsFast ? 0 : 3,
      enableOfflineQueue: !failsFast,
    },
  };
}

/** Resolves once `r` is connected (rejects after `ms`: Redis answered another connection, so this is unexpected). */
const whenReady = (r: Redis, ms = 10_000) =>
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
      const { url, options } = redisOptions(config, role);
      const r = new Redis(url, options);
      watchRedis(r, role, logger);
      closers.push(() => r.quit().catch(() => r.disconnect()));
      return r;
    };
    const redis = { commands: mk('commands'), pub: mk('pub'), queue: mk('queue') };
    // the commands connection fails when Redis is unreachable at start (a clear error, not a hang)
    await redis.commands.ping();
    await Promise.all([redis.pub, redis.queue].map((r) => whenReady(r)));
    const queues = createQueues(redis.queue, `${config.redisPrefix}:bull`, logger);
    closers.push(() => queues.close());

    const metrics = createMetrics();
    registerQueueMetrics(metrics, () => queues.counts());
    const cursors = createCursorCodec(config.cursorSecret);
    const realtime = receives
      ? await createRealtime(config, { mk, pub: redis.pub, db: database.db, logger, metrics, cursors, closers })
      : undefined;
    const publisher: Publisher = realtime?.hub ?? createPublisher(redis.pub, config.redisPrefix);

    const identity = createIdentityService({ db: database.db });
    const commit = createCommit(database.db, publisher, logger);
    const messaging = createMessagingService({
      db: database.db,
      publisher,
      commit,
      redis: redis.commands,
      cursors,
      identity,
      limits: config.limits,
      keyPrefix: config.redisPrefix,
      typingThrottleMs: config.realtime.typingThrottleMs,
    });

    const notifications = createNotificationsService({ db: database.db, commit, cursors, identity, limits: config.limits });
    const presence = createPresenceService({
      redis: redis.commands,
      publisher,
      identity,
      messaging,
      config: config.presence,
      keyPrefix: config.redisPrefix,
      logger,
    });
    closers.push(() => presence.close());
    const reminders = createRemindersService({
      db: database.db,
      commit,
      queues,
      identity,
      notifications,
      config: config.reminders,
      logger,
    });
    const alerts = createAlertsService({
      db: database.db,
      commit,
      cursors,
      identity,
      notifications,
      queues,
      logger,
      config: config.alerts,
      limits: config.limits,
    });

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
      services: { identity, messaging, notifications, presence, alerts, reminders },
      jobs:
        opts.role === 'serve'
          ? undefined
          : {
              alerts: createEscalation({ db: database.db, commit, identity, notifications, config: config.alerts, logger }),
              reminders: createDelivery({ db: database.db, commit, queues, notifications, config: config.reminders, logger }),
            },
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
    mk: (role: string) => Redis;
    pub: Redis;
    db: Database['db'];
    logger: Logger;
    metrics: Metrics;
    cursors: CursorCodec;
    closers: Array<() => Promise<unknown>>;
  },
) {
  const sub = d.mk('sub');
  await whenReady(sub);
  const pubsub = new RedisPubSub({ publisher: d.pub, subscriber: sub });
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
