import type { Job, JobsOptions } from 'bullmq';
import type { z } from 'zod';

/** A queue's name; each module declares its queues and their settings in its record (`modules/<domain>/module.ts`). */
export type QueueName = string;

/** How a worker runs one queue. */
export interface QueueSettings {
  /** Jobs of this queue in flight at once in one worker process. */
  concurrency: number;
  /** BullMQ lock duration; a job of a killed worker is re-run after about this long. */
  lockMs: number;
}

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
