import type { RedisClient } from '../shared/redis-client.js';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import type { Metrics } from '../http/metrics.js';
import type { Duties, QueueSettings } from '../jobs/define.js';
import type { Queues } from '../jobs/queues.js';
import type { Commit } from '../realtime/commit.js';
import type { Publisher } from '../realtime/hub.js';
import type { CursorCodec } from '../shared/cursor.js';
import type { Logger } from '../shared/logger.js';

/** The shared parts every module builds from; the composition root passes them. */
export interface ModuleDeps {
  config: Config;
  logger: Logger;
  db: Db;
  commit: Commit;
  cursors: CursorCodec;
  queues: Queues;
  publisher: Publisher;
  /** The commands connection (typing throttle, presence). */
  redis: RedisClient;
  /** The instance's Prometheus metrics (a module registers its own on `metrics.registry`). */
  metrics: Metrics;
}

/** What a module's worker side gives the worker process: the side itself (what its jobs call) and its duties. */
export interface WorkerSide<W> {
  side: W;
  duties: Duties;
}

/**
 * One domain as the composition root sees it, listed once in `modules/modules.ts`. `S` is its
 * API service, `U` the services of other modules it uses (listed before it), `W` its worker side.
 * Its tables are found by drizzle-kit through `db/schema.ts`, its GraphQL fields by
 * `graphql/schema.ts` (both by the module's folder), its config section in `config.ts`.
 */
export interface DomainModule<N extends string, S, U, W = never> {
  name: N;
  /** Queues its jobs run on, each with its own settings. */
  queues?: Record<string, (w: Config['worker']) => QueueSettings>;
  /** Builds its API service (resolvers call it). */
  service(d: ModuleDeps, uses: U): S;
  /**
   * Builds its worker side, only in processes that run jobs (`worker`, `all`): a dynamic import,
   * so an API process never loads job handlers.
   */
  worker?(d: ModuleDeps, uses: U & Record<N, S>): Promise<WorkerSide<W>>;
  /** Releases what the service holds (timers, in-flight work), on shutdown. */
  close?(service: S): Promise<void>;
}

/** Declares a module (a typed identity: the record is the module's whole seam). */
export const defineModule = <N extends string, S, U, W = never>(m: DomainModule<N, S, U, W>) => m;
