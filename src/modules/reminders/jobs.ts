import { DelayedError } from 'bullmq';
import { type Duties, type JobImpl, type Periodic, implementJob } from '../../jobs/define.js';
import type { DeliveryHooks } from './delivery.js';
import { reminderDue } from './events.js';
import type { ModuleDeps, WorkerSide } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import { type Delivery as ReminderDelivery, createDelivery } from './delivery.js';

/** Test seams of the handler (see test/reminders/worker-child.ts); production passes none. */
export interface ReminderJobHooks extends DeliveryHooks {
  /** Runs after the delivery committed, before the job is acknowledged. */
  afterCommit?(): Promise<void>;
}

type Delivery = Pick<ReminderDelivery, 'deliverBatched' | 'reconcile'>;

/**
 * The handler of `reminder-due`: PostgreSQL decides whether the occurrence is still owed, so a
 * retried job, a stalled job re-run after its worker died, or a duplicate never delivers twice.
 * Concurrent jobs of one worker share a delivery transaction (each keeps its own guard row).
 * A deferral (quiet hours) moves this same job to the delayed set: the occurrence keeps its id.
 */
export function reminderJob(reminders: Delivery, hooks: ReminderJobHooks = {}): JobImpl {
  return implementJob(reminderDue, async ({ reminderId, orgId, occurrenceMs }, { job, token }) => {
    const result = await reminders.deliverBatched({ orgId, id: reminderId, occurrenceMs }, hooks);
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
export function reminderReconciler(reminders: Delivery, everyMs: number, opts: { orgIds?: () => readonly string[] } = {}): Periodic {
  return {
    name: 'reminder-reconciler',
    everyMs,
    run: async () => {
      await reminders.reconcile({ orgIds: opts.orgIds?.() });
    },
  };
}

/** The worker side of reminders: the occurrence handler and the reconciler. */
export function reminderDuties(reminders: Delivery, reconcileMs: number): Duties {
  return { jobs: [reminderJob(reminders)], periodic: [reminderReconciler(reminders, reconcileMs)] };
}

/** The reminders module's worker side: the delivery (what the jobs call) and its duties. */
export function remindersWorker(d: ModuleDeps, u: { notifications: NotificationsService }): WorkerSide<ReminderDelivery> {
  const delivery = createDelivery({
    db: d.db,
    commit: d.commit,
    queues: d.queues,
    notifications: u.notifications,
    config: d.config.reminders,
    logger: d.logger,
  });
  return { side: delivery, duties: reminderDuties(delivery, d.config.reminders.reconcileMs) };
}
