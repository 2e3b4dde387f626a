import type { Job, JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { Config } from '../config.js';

/** The queues Wardline runs. One BullMQ Worker per queue dispatches by job name. */
export const QUEUES = ['reminders', 'alerts'] as const;
export type QueueName = (typeof QUEUES)[number];

/** How a worker runs one queue. */
export interface QueueSettings {
  /** Jobs of this queue in flight at once in one worker process. */
  concurrency: number;
  /** BullMQ lock duration; a job of a killed worker is re-run after about this long. */
  lockMs: number;
}

/**
 * Each queue's own settings, from the configuration. Reminders run at WORKER_CONCURRENCY (their
 * deliveries batch into shared transactions, so concurrency is throughput); escalations are rare
 * and each is a transaction of its own, so a few at a time are plenty.
 */
export const QUEUE_SETTINGS: Record<QueueName, (w: Config['worker']) => QueueSettings> = {
  reminders: (w) => ({ concurrency: w.concurrency, lockMs: w.lockMs }),
  alerts: (w) => ({ concurrency: Math.min(w.concurrency, 20), lockMs: w.lockMs }),
};

/**
 * A job contract shared by producer and consumer (Hive's kit): the payload schema is checked on
 * enqueue and again on processing. Payloads carry ids, never patient data (Redis stores them in
 * clear text).
 */
export interface JobDef<S extends z.ZodType> {
  queue: QueueName;
  name: string;
  schema: S;
  /** Defaults for every add (attempts, backoff...). */
  defaults?: JobsOptions;
}

export const defineJob = <S extends z.ZodType>(def: JobDef<S>): JobDef<S> => def;

/**
 * What a handler gets besides its payload: the job, never the container (a handler's
 * dependencies are bound when its module builds its duties). `job` and `token` let it re-delay
 * itself (`job.moveToDelayed(ts, token)` then `throw new DelayedError()`, BullMQ's pattern).
 */
export interface JobContext {
  attempt: number;
  jobId: string;
  job: Job;
  token: string | undefined;
}

/** What a worker runs for one job definition. Throw UnrecoverableError for permanent failures. */
export interface JobImpl {
  def: JobDef<z.ZodType>;
  handle(data: unknown, ctx: JobContext): Promise<unknown>;
}

export const implementJob = <S extends z.ZodType>(
  def: JobDef<S>,
  handle: (data: z.output<S>, ctx: JobContext) => Promise<unknown>,
): JobImpl => ({ def: def as JobDef<z.ZodType>, handle: (data, ctx) => handle(def.schema.parse(data), ctx) });

/** A periodic duty of the worker process (e.g. a reconciler), its dependencies bound. */
export interface Periodic {
  name: string;
  everyMs: number;
  run(): Promise<void>;
}

/** What a module asks of the worker process: job handlers and periodic duties. */
export interface Duties {
  jobs: JobImpl[];
  periodic: Periodic[];
}
