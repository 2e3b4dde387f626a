import { type Duties, type JobImpl, type Periodic, implementJob } from '../../jobs/define.js';
import type { DeliveryHooks } from './delivery.js';
import { reminderDue, reminderTick } from './events.js';
import type { ModuleDeps, WorkerSide } from '../module.js';
import type { NotificationsService } from '../notifications/service.js';
import { type Delivery as ReminderDelivery, createDelivery } from './delivery.js';

/** Test seams of the handler (see test/reminders/worker-child.ts); production passes none. */
export interface ReminderJobHooks extends DeliveryHooks {
  /** Runs after the deliveries committed, before the job is acknowledged. */
  afterCommit?(): Promise<void>;
}

type Delivery = Pick<ReminderDelivery, 'deliverDue' | 'reconcile'>;

/** `orgIds` scopes the claims to some organisations (tests share one database); production passes none. */
export interface ReminderScope {
  orgIds?: () => readonly string[];
}

/**
 * The handler of a due-second tick (`reminders-due`): claims and delivers every occurrence owed
 * by now, of every reminder, in set-based batches. PostgreSQL decides what is owed, so a retried
 * tick, a stalled tick re-run after its worker died, two ticks at once or the reconciler never
 * deliver an occurrence twice. Jobs of the per-occurrence kind of earlier versions still in Redis
 * after an upgrade run the same claim.
 */
export function reminderJobs(reminders: Delivery, hooks: ReminderJobHooks = {}, scope: ReminderScope = {}): JobImpl[] {
  const run = async () => {
    const result = await reminders.deliverDue({ scope: { orgIds: scope.orgIds?.() }, hooks });
    await hooks.afterCommit?.();
    return result;
  };
  return [implementJob(reminderTick, run), implementJob(reminderDue, run)];
}

/**
 * Every REMINDER_RECONCILE_MS: delivers what is overdue without Redis, and re-creates the ticks of
 * what falls due within two periods (deterministic ids make that a no-op while they exist): covers
 * Redis restarts, flushed queues, enqueues that failed after commit and ticks that gave up.
 */
export function reminderReconciler(reminders: Delivery, everyMs: number, opts: ReminderScope = {}): Periodic {
  return {
    name: 'reminder-reconciler',
    everyMs,
    run: async () => {
      await reminders.reconcile({ orgIds: opts.orgIds?.() });
    },
  };
}

/** The worker side of reminders: the tick handler and the reconciler. */
export function reminderDuties(reminders: Delivery, reconcileMs: number): Duties {
  return { jobs: reminderJobs(reminders), periodic: [reminderReconciler(reminders, reconcileMs)] };
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
