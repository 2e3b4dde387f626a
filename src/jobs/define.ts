import type { Job, JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { Container } from '../container.js';

/** The queues Wardline runs. One BullMQ Worker per queue dispatches by job name. */
export const QUEUES = ['reminders', 'alerts'] as const;
export type QueueName = (typeof QUEUES)[number];

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
 * What a handler gets besides its payload. `job` and `token` let it re-delay itself
 * (`job.moveToDelayed(ts, token)` then `throw new DelayedError()`, BullMQ's pattern).
 */
export interface JobContext {
  container: Container;
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
