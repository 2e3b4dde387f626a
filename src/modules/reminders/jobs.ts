import { DelayedError } from 'bullmq';
import { type JobImpl, implementJob } from '../../jobs/define.js';
import type { Periodic } from '../../jobs/registry.js';
import type { DeliveryHooks } from './delivery.js';
import { reminderDue } from './events.js';

/** Test seams of the handler (see test/reminders/worker-child.ts); production passes none. */
export interface ReminderJobHooks extends DeliveryHooks {
  /** Runs after the delivery committed, before the job is acknowledged. */
  afterCommit?(): Promise<void>;
}

/**
 * The handler of `reminder-due`: PostgreSQL decides whether the occurrence is still owed, so a
 * retried job, a stalled job re-run after its worker died, or a duplicate never delivers twice.
 * Concurrent jobs of one worker share a delivery transaction (each keeps its own guard row).
 * A deferral (quiet hours) moves this same job to the delayed set: the occurrence keeps its id.
 */
export function reminderJob(hooks: ReminderJobHooks = {}): JobImpl {
  return implementJob(reminderDue, async ({ reminderId, orgId, occurrenceMs }, { container, job, token }) => {
    const result = await container.services.reminders.deliverBatched({ orgId, id: reminderId, occurrenceMs }, hooks);
    if (result.outcome === 'deferred') {
      await job.moveToDelayed(result.until.getTime(), token);
      throw new DelayedError();
    }
    await hooks.afterCommit?.();
    return result;
  });
}

/**
 * Re-creates the jobs of due or nearly due reminders every REMINDER_RECONCILE_MS (deterministic
 * ids make that a no-op while they exist): covers Redis restarts, flushed queues and enqueues that
 * failed after commit. `orgIds` scopes it to some organisations (tests share one database).
 */
export function reminderReconciler(opts: { orgIds?: () => readonly string[] } = {}): Periodic {
  return {
    name: 'reminder-reconciler',
    everyMs: (c) => c.config.reminders.reconcileMs,
    run: async (c) => {
      await c.services.reminders.reconcile({ orgIds: opts.orgIds?.() });
    },
  };
}

export const REMINDER_JOBS: JobImpl[] = [reminderJob()];
