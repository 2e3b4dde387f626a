import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import type { Commit } from '../../realtime/commit.js';
import type { Logger } from '../../shared/logger.js';
import { quietUntil } from '../../shared/time.js';
import type { Priority } from '../notifications/tables.js';
import { AlreadyDelivered, type NotificationsService } from '../notifications/service.js';
import { type ReminderNotificationData, occurrenceKey, reminderDue } from './events.js';
import * as repo from './repo.js';
import { followingOccurrence, scheduleOf } from './schedule.js';
import type { ReminderRow } from './tables.js';

export interface DeliveryDeps {
  db: Db;
  commit: Commit;
  queues: Queues;
  notifications: NotificationsService;
  config: Config['reminders'];
  logger: Logger;
}

/** Test seams of one delivery (the worker-kill tests sleep here); production passes none. */
export interface DeliveryHooks {
  /** Runs inside the delivery transaction, after every write, before COMMIT. */
  beforeCommit?(): Promise<void>;
}

export type DeliveryOutcome =
  | { outcome: 'delivered'; notificationId: string }
  | { outcome: 'skipped'; reason: 'missing' | 'inactive' | 'not-pending' | 'already-delivered' }
  | { outcome: 'deferred'; until: Date };

type Pending = Pick<ReminderRow, 'id' | 'orgId' | 'status' | 'nextAt' | 'snoozedUntil'>;

/** The instants a reminder still owes a delivery for (regular occurrence and snooze). */
export const pendingTimes = (r: Pick<ReminderRow, 'nextAt' | 'snoozedUntil'>): Date[] =>
  [r.nextAt, r.snoozedUntil].filter((d): d is Date => d instanceof Date);

const isPending = (r: Pending, occ: Date) => r.status === 'active' && pendingTimes(r).some((d) => d.getTime() === occ.getTime());

/** Critical reminders are critical notifications (ignore quiet hours); medication and appointments high. */
export const priorityOf = (r: Pick<ReminderRow, 'critical' | 'kind'>): Priority =>
  r.critical ? 'critical' : r.kind === 'custom' ? 'normal' : 'high';

/** The row after delivering `occ`: that pending time is consumed and the schedule moves on. */
function advance(r: ReminderRow, occ: Date, now: Date): repo.ReminderChange {
  const same = (d: Date | null) => d?.getTime() === occ.getTime();
  const snoozedUntil = same(r.snoozedUntil) ? null : r.snoozedUntil;
  const nextAt = same(r.nextAt) ? followingOccurrence(scheduleOf(r), occ, now) : r.nextAt;
  return { nextAt, snoozedUntil, status: nextAt || snoozedUntil ? 'active' : 'completed' };
}

class OccurrenceRecorded extends Error {}

/**
 * The worker side of reminders: exactly one delivery per occurrence, and the reconciler that
 * re-creates lost jobs. PostgreSQL decides; Redis only wakes the worker at the right time.
 */
export function createDelivery(deps: DeliveryDeps) {
  const { db, commit, queues, config, logger } = deps;
  const jobOpts = { attempts: config.attempts, backoff: { type: 'exponential' as const, delay: config.backoffMs } };

  /** Enqueues a delayed job per pending time (up to `horizonMs` ahead, if given); repeated adds are no-ops. */
  async function enqueue(r: Pending, horizonMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (r.status !== 'active') return;
    const now = Date.now();
    for (const at of pendingTimes(r)) {
      if (at.getTime() > horizonMs) continue;
      const occurrenceMs = at.getTime();
      await queues.add(
        reminderDue,
        { reminderId: r.id, orgId: r.orgId, occurrenceMs },
        { ...jobOpts, jobId: occurrenceKey(r.id, occurrenceMs), delay: Math.max(0, occurrenceMs - now) },
      );
    }
  }

  /** After a commit: a failed enqueue is not an error, the reconciler re-creates the job. */
  const enqueueAfterCommit = (r: Pending) =>
    enqueue(r).catch((err) => logger.warn({ reminderId: r.id, err }, 'reminder enqueue failed; the reconciler will retry'));

  /** Best-effort removal of waiting or delayed jobs (the handler re-checks the row anyway). */
  const removeJobs = (id: string, times: Date[]) =>
    Promise.all(times.map((t) => queues.remove('reminders', occurrenceKey(id, t.getTime())))).catch((err) =>
      logger.warn({ reminderId: id, err }, 'reminder job removal failed; the handler will skip it'),
    );

  /** Records an occurrence whose notification exists without delivering again, and moves on. */
  async function repair(orgId: string, id: string, occ: Date, notificationId: string | null): Promise<ReminderRow | undefined> {
    return commit(async (tx) => {
      const r = await repo.lockReminder(tx, orgId, id);
      if (!r || !isPending(r, occ)) return undefined;
      await repo.insertOccurrence(tx, { reminderId: id, orgId, occurrenceAt: occ, notificationId });
      return repo.updateReminder(tx, orgId, id, advance(r, occ, new Date()));
    });
  }

  /**
   * Delivers occurrence `occurrenceMs` of a reminder at most once, in one transaction: lock the
   * row, check it is active and still owes this occurrence, store the notification (and its inbox
   * event) through the notifications service, record the occurrence (primary key = the guard),
   * advance `next_at`. Then enqueue the next occurrence. A non-critical occurrence due in the
   * recipient's quiet hours is deferred to their end instead, keeping its identity.
   */
  async function deliver(orgId: string, id: string, occurrenceMs: number, hooks: DeliveryHooks = {}): Promise<DeliveryOutcome> {
    const occ = new Date(occurrenceMs);
    const before = await repo.findReminder(db, orgId, id);
    if (!before) return { outcome: 'skipped', reason: 'missing' };
    if (before.status !== 'active') return { outcome: 'skipped', reason: 'inactive' };
    if (!isPending(before, occ)) return { outcome: 'skipped', reason: 'not-pending' };
    const now = new Date();
    if (priorityOf(before) !== 'critical') {
      const p = await deps.notifications.preferences({ userId: before.userId, orgId, role: 'system', name: 'System' });
      const until = quietUntil(now, p.timeZone, p.quietStart, p.quietEnd);
      if (until) return { outcome: 'deferred', until };
    }
    let after: ReminderRow | undefined;
    let outcome: DeliveryOutcome;
    try {
      [after, outcome] = await commit(async (tx, events) => {
        const r = await repo.lockReminder(tx, orgId, id);
        if (!r || !isPending(r, occ)) return [undefined, { outcome: 'skipped', reason: r?.status === 'active' ? 'not-pending' : 'inactive' }] as const;
        const data: ReminderNotificationData = {
          reminderId: id,
          occurrenceAt: occ.toISOString(),
          reminderKind: r.kind,
          snoozed: r.snoozedUntil?.getTime() === occurrenceMs && r.nextAt?.getTime() !== occurrenceMs,
        };
        const { notification } = await deps.notifications.createInTx(tx, events, {
          orgId,
          userId: r.userId,
          kind: 'reminder',
          priority: priorityOf(r),
          title: r.title,
          body: r.body,
          data: { ...data },
          clientKey: occurrenceKey(id, occurrenceMs),
        });
        const recorded = await repo.insertOccurrence(tx, { reminderId: id, orgId, occurrenceAt: occ, notificationId: notification.id });
        if (!recorded) throw new OccurrenceRecorded();
        const updated = await repo.updateReminder(tx, orgId, id, advance(r, occ, now));
        await hooks.beforeCommit?.();
        return [updated, { outcome: 'delivered', notificationId: notification.id }] as const;
      });
    } catch (err) {
      if (!(err instanceof AlreadyDelivered || err instanceof OccurrenceRecorded)) throw err;
      // the occurrence was delivered by an earlier transaction: never notify again, only move on
      after = await repair(orgId, id, occ, err instanceof AlreadyDelivered ? err.notification.id : null);
      outcome = { outcome: 'skipped', reason: 'already-delivered' };
    }
    if (after) await enqueueAfterCommit(after);
    return outcome;
  }

  /**
   * The safety net (a periodic duty of every worker): re-adds the job of every active reminder due
   * within two reconcile periods (a no-op where it exists), which re-creates what a Redis restart,
   * a flushed queue or a failed enqueue lost. Jobs that ended (retries exhausted) while PostgreSQL
   * still owes their occurrence for over a minute are replaced, so nothing is skipped.
   */
  async function reconcile(opts: { orgIds?: readonly string[]; limit?: number } = {}): Promise<{ due: number; revived: number }> {
    const now = Date.now();
    const horizon = now + 2 * config.reconcileMs;
    const rows = await repo.dueBefore(db, new Date(horizon), opts.limit ?? 5_000, opts.orgIds);
    const pending = rows.map((r) => ({ ...r, status: 'active' as const }));
    for (let i = 0; i < pending.length; i += 500) await Promise.all(pending.slice(i, i + 500).map((r) => enqueue(r, horizon)));
    let revived = 0;
    const stuckBefore = now - 60_000;
    for (const r of pending) {
      for (const t of pendingTimes(r).filter((d) => d.getTime() < stuckBefore)) {
        const job = await queues.queue('reminders').getJob(occurrenceKey(r.id, t.getTime()));
        const state = job ? await job.getState() : 'missing';
        if (state !== 'failed' && state !== 'completed') continue;
        await job?.remove();
        await enqueue({ ...r, nextAt: t, snoozedUntil: null });
        revived++;
      }
    }
    if (revived > 0) logger.warn({ revived }, 'reconciler replaced ended reminder jobs whose occurrence is still owed');
    return { due: rows.length, revived };
  }

  return { deliver, reconcile, enqueueAfterCommit, removeJobs };
}

export type Delivery = ReturnType<typeof createDelivery>;
