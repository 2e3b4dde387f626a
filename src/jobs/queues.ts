import { Queue, type JobsOptions } from 'bullmq';
import type { RedisClient } from '../shared/redis-client.js';
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { Logger } from '../shared/logger.js';
import { settleWithin } from '../shared/bounded.js';
import { isRedisConnectionError } from '../shared/redis-watch.js';
import type { JobDef, QueueName } from './define.js';

/**
 * BullMQ's key prefix. On a cluster it is hash-tagged (`{wl:bull}`): every key of every queue
 * then lives in one slot, as BullMQ's Lua scripts (and flows across queues) require. One Redis
 * keeps the untagged prefix it always had.
 */
export const queuePrefix = (config: Pick<Config, 'redisPrefix' | 'redisClusterNodes'>) =>
  config.redisClusterNodes ? `{${config.redisPrefix}:bull}` : `${config.redisPrefix}:bull`;

/** Producers for every queue, on one connection (`enableOfflineQueue: false`: fail fast). */
export interface Queues {
  /** Validates the payload, then enqueues. A deterministic `jobId` makes repeated adds no-ops. */
  add<S extends z.ZodType>(def: JobDef<S>, data: z.input<S>, opts?: JobsOptions): Promise<void>;
  /** Removes a job if it is still waiting or delayed (e.g. an escalation cancelled by an ack). */
  remove(queue: QueueName, jobId: string): Promise<void>;
  counts(): Promise<Record<QueueName, Record<string, number>>>;
  queue(name: QueueName): Queue;
  close(): Promise<void>;
  /**
   * For enqueues after a commit: runs `work` and waits for it at most PUBLISH_TIMEOUT_MS, never
   * throwing; a failure (now or later) is logged with `what` and left to the module's reconciler.
   */
  afterCommit(work: () => Promise<unknown>, what: Record<string, unknown>, log?: Logger): Promise<void>;
}

/** Producers for `names` (every module's queues) on one connection. */
export function createQueues(
  connection: RedisClient,
  prefix: string,
  logger: Logger,
  names: readonly QueueName[],
  afterCommitMs = 300,
): Queues {
  const queues = new Map(
    names.map((q) => {
      const queue = new Queue(q, { connection, prefix });
      // an unhandled 'error' would reach console.error; outages are reported by the connection watcher
      queue.on('error', (err) => {
        if (!isRedisConnectionError(err)) logger.warn({ queue: q, err }, 'queue error');
      });
      return [q, queue];
    }),
  );
  const get = (name: QueueName) => {
    const q = queues.get(name);
    if (!q) throw new Error(`queue ${name} is not declared by any module (modules/<domain>/module.ts queues)`);
    return q;
  };
  return {
    async add(def, data, opts) {
      const payload = def.schema.parse(data);
      await get(def.queue).add(def.name, payload, {
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 5000 },
        ...def.defaults,
        ...opts,
      });
    },
    async remove(queue, jobId) {
      const job = await get(queue).getJob(jobId);
      if (!job) return;
      const state = await job.getState();
      if (state === 'delayed' || state === 'waiting' || state === 'prioritized') await job.remove().catch(() => {});
    },
    async counts() {
      const out = {} as Record<QueueName, Record<string, number>>;
      for (const q of names) out[q] = await get(q).getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
      return out;
    },
    queue: get,
    async afterCommit(work, what, log = logger) {
      const started = (async () => work())();
      await settleWithin(started, afterCommitMs, (err) => {
        if (isRedisConnectionError(err))
          log.debug({ ...what }, 'enqueue after commit skipped: Redis unavailable; the reconciler will add it');
        else log.warn({ ...what, err }, 'enqueue after commit failed; the reconciler will add it');
      });
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
    },
  };
}
