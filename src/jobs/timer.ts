import type { JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { Logger } from '../shared/logger.js';
import { type Duties, type JobContext, type JobDef, type Periodic, implementJob } from './define.js';
import type { Queues } from './queues.js';

/**
 * A durable timer: "do X at time T" that survives restarts of every process and of Redis.
 * PostgreSQL holds the truth (a row says what is due and when); Redis only wakes a worker on time.
 *
 * - `schedule` after commit adds a delayed job with a deterministic id (a repeat is a no-op); a
 *   failed add is logged, not thrown: the reconciler re-creates or fires it.
 * - `cancel` removes a job that has not run (best effort: the handler re-checks PostgreSQL).
 * - `duties` binds the handler and a reconciler that, every `everyMs`, asks PostgreSQL what is
 *   overdue and fires it directly (no Redis needed).
 *
 * The handler must be idempotent behind a row (fire may run more than once for one timer).
 * Used by alert escalation; reminders use due-second ticks instead (modules/reminders/ticks.ts).
 */
export interface DurableTimer<S extends z.ZodType> {
  readonly job: JobDef<S>;
  /** The deterministic job id of a timer (BullMQ 6 refuses custom ids with a single `:`). */
  id(data: z.output<S>): string;
  schedule(queues: Queues, data: z.input<S>, at: Date, opts?: JobsOptions): Promise<void>;
  cancel(queues: Queues, data: z.input<S>): Promise<void>;
  /** The handler and the reconciler, for the worker process. */
  duties<R>(d: TimerDuties<S, R>): Duties;
}

export interface TimerDuties<S extends z.ZodType, R> {
  /** Does the work; returns what the job records. Must be idempotent. */
  fire(data: z.output<S>, ctx?: JobContext): Promise<R>;
  /** How often the reconciler runs. */
  everyMs: number;
  /** Timers PostgreSQL says are overdue (due before `before`), oldest first. */
  overdue(before: Date): Promise<Array<z.output<S>>>;
  /** How late a timer must be before the reconciler steps in (so it never races a healthy queue). */
  graceMs: number;
  /** Whether a fire's result counts as done work (for the reconciler's log line). */
  fired?(result: R): boolean;
  logger: Logger;
}

export function defineTimer<S extends z.ZodType>(def: { job: JobDef<S>; id: (data: z.output<S>) => string }): DurableTimer<S> {
  const { job } = def;
  const idOf = (data: z.input<S>) => def.id(job.schema.parse(data));
  return {
    job,
    id: def.id,
    async schedule(queues, data, at, opts) {
      await queues.add(job, data, { jobId: idOf(data), delay: Math.max(0, at.getTime() - Date.now()), ...opts });
    },
    async cancel(queues, data) {
      await queues.remove(job.queue, idOf(data));
    },
    duties(d) {
      const periodic: Periodic = {
        name: `${job.name}-reconciler`,
        everyMs: d.everyMs,
        run: async () => {
          let fired = 0;
          for (const data of await d.overdue(new Date(Date.now() - d.graceMs))) {
            try {
              if ((d.fired ?? (() => true))(await d.fire(data))) fired++;
            } catch (err) {
              d.logger.warn({ job: job.name, jobId: def.id(data), err }, 'reconciling a timer failed');
            }
          }
          if (fired > 0) d.logger.info({ job: job.name, fired }, 'reconciler fired overdue timers');
        },
      };
      return { jobs: [implementJob(job, (data, ctx) => d.fire(data, ctx))], periodic: [periodic] };
    },
  };
}

/**
 * Schedules after commit, waiting at most PUBLISH_TIMEOUT_MS, and logs instead of throwing: the
 * reconciler owns a failed or late add.
 */
export async function scheduleAfterCommit<S extends z.ZodType>(
  timer: DurableTimer<S>,
  queues: Queues,
  data: z.input<S>,
  at: Date,
  logger: Logger,
  opts?: JobsOptions,
): Promise<void> {
  await queues.afterCommit(() => timer.schedule(queues, data, at, opts), { job: timer.job.name }, logger);
}
