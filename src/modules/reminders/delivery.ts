import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import type { Commit } from '../../realtime/commit.js';
import type { Logger } from '../../shared/logger.js';
import { quietUntil } from '../../shared/time.js';
import { type Batcher, createBatcher } from './batcher.js';
import type { Priority } from '../notifications/tables.js';
import { AlreadyDelivered, KeyTaken, type NotificationsService } from '../notifications/service.js';
import { type ReminderNotificationData, occurrenceKey, reminderTimer } from './events.js';
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

const cmp = (a: string | undefined, b: string | undefined) => ((a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0);

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

/** One occurrence to deliver. */
export interface DueItem {
  orgId: string;
  id: string;
  occurrenceMs: number;
}

/** At most this many occurrences per delivery transaction, and this many transactions at once per worker. */
const MAX_BATCH = 200;
const MAX_BATCHES_IN_FLIGHT = 4;
const NO_HOOKS: DeliveryHooks = {};

/**
 * The producer side, shared by the API service and the worker: one delayed job per pending time of
 * a reminder, on the durable timer; removal when a change makes a time no longer pending.
 */
export function createScheduling(deps: Pick<DeliveryDeps, 'queues' | 'config' | 'logger'>) {
  const { queues, config, logger } = deps;
  const jobOpts = { attempts: config.attempts, backoff: { type: 'exponential' as const, delay: config.backoffMs } };

  /** Enqueues a delayed job per pending time (up to `horizonMs` ahead, if given); repeated adds are no-ops. */
  async function enqueue(r: Pending, horizonMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (r.status !== 'active') return;
    for (const at of pendingTimes(r)) {
      if (at.getTime() > horizonMs) continue;
      await reminderTimer.schedule(queues, { reminderId: r.id, orgId: r.orgId, occurrenceMs: at.getTime() }, at, jobOpts);
    }
  }

  /** After a commit (bounded wait): a failed or late enqueue is not an error, the reconciler re-creates the job. */
  const enqueueAfterCommit = (r: Pending) => queues.afterCommit(() => enqueue(r), { reminderId: r.id }, logger);

  /** Best-effort removal of waiting or delayed jobs (the handler re-checks the row anyway). */
  const removeJobs = (orgId: string, id: string, times: Date[]) =>
    queues.afterCommit(
      () => Promise.all(times.map((t) => reminderTimer.cancel(queues, { reminderId: id, orgId, occurrenceMs: t.getTime() }))),
      { reminderId: id },
      logger,
    );

  return { enqueue, enqueueAfterCommit, removeJobs };
}

/**
 * The worker side of reminders: exactly one delivery per occurrence, and the reconciler that
 * re-creates lost jobs. PostgreSQL decides; Redis only wakes the worker at the right time.
 */
export function createDelivery(deps: DeliveryDeps) {
  const { db, commit, queues, config, logger } = deps;
  const { enqueue, enqueueAfterCommit } = createScheduling(deps);

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
   * Delivers occurrence `occurrenceMs` of a reminder at most once, in its own transaction: lock
   * the row, check it is active and still owes this occurrence, store the notification (and its
   * inbox event) through the notifications service, record the occurrence (primary key = the
   * guard), advance `next_at`; then enqueue the next occurrence. A non-critical occurrence due in
   * the recipient's quiet hours is deferred to their end instead, keeping its identity.
   */
  async function deliver(orgId: string, id: string, occurrenceMs: number, hooks: DeliveryHooks = NO_HOOKS): Promise<DeliveryOutcome> {
    const occ = new Date(occurrenceMs);
    const now = new Date();
    const [early] = await precheck([{ orgId, id, occurrenceMs }], now);
    if (early) return early;
    let after: ReminderRow | undefined;
    let outcome: DeliveryOutcome;
    try {
      [after, outcome] = await commit(async (tx, events) => {
        const r = await repo.lockReminder(tx, orgId, id);
        if (!r || !isPending(r, occ))
          return [undefined, { outcome: 'skipped', reason: r?.status === 'active' ? 'not-pending' : 'inactive' }] as const;
        const { notification } = await deps.notifications.createInTx(tx, events, notificationOf(r, occurrenceMs));
        const recorded = await repo.insertOccurrence(tx, { reminderId: id, orgId, occurrenceAt: occ, notificationId: notification.id });
        if (!recorded) throw new OccurrenceRecorded();
        const updated = await repo.updateReminder(tx, orgId, id, advance(r, occ, now));
        await hooks.beforeCommit?.();
        return [updated, { outcome: 'delivered', notificationId: notification.id }] as const;
      });
    } catch (err) {
      if (!(err instanceof AlreadyDelivered || err instanceof KeyTaken || err instanceof OccurrenceRecorded)) throw err;
      // the occurrence was delivered by an earlier transaction: never notify again, only move on
      after = await repair(orgId, id, occ, err instanceof AlreadyDelivered ? err.notification.id : null);
      outcome = { outcome: 'skipped', reason: 'already-delivered' };
    }
    if (after) await enqueueAfterCommit(after);
    return outcome;
  }

  /** The notification of occurrence `occ` of `r` (title and body come from PostgreSQL, never from the job). */
  const notificationOf = (r: ReminderRow, occurrenceMs: number) => {
    const data: ReminderNotificationData = {
      reminderId: r.id,
      occurrenceAt: new Date(occurrenceMs).toISOString(),
      reminderKind: r.kind,
      snoozed: r.snoozedUntil?.getTime() === occurrenceMs && r.nextAt?.getTime() !== occurrenceMs,
    };
    return {
      orgId: r.orgId,
      userId: r.userId,
      kind: 'reminder' as const,
      priority: priorityOf(r),
      title: r.title,
      body: r.body,
      data: { ...data },
      clientKey: occurrenceKey(r.id, occurrenceMs),
    };
  };

  /** Outcomes decided before any lock: gone, inactive, not owed, or in quiet hours (deferred). */
  async function precheck(items: DueItem[], now: Date): Promise<Array<DeliveryOutcome | undefined>> {
    const rows = new Map((await repo.findReminders(db, items)).map((r) => [r.id, r]));
    const prefs = new Map<string, ReturnType<NotificationsService['preferences']>>();
    return Promise.all(
      items.map(async (it): Promise<DeliveryOutcome | undefined> => {
        const r = rows.get(it.id);
        if (!r || r.orgId !== it.orgId) return { outcome: 'skipped', reason: 'missing' };
        if (r.status !== 'active') return { outcome: 'skipped', reason: 'inactive' };
        if (!isPending(r, new Date(it.occurrenceMs))) return { outcome: 'skipped', reason: 'not-pending' };
        if (priorityOf(r) === 'critical') return undefined;
        const key = `${r.orgId}\0${r.userId}`;
        if (!prefs.has(key))
          prefs.set(key, deps.notifications.preferences({ userId: r.userId, orgId: r.orgId, role: 'system', name: 'System' }));
        const p = await prefs.get(key);
        const until = p && quietUntil(now, p.timeZone, p.quietStart, p.quietEnd);
        return until ? { outcome: 'deferred', until } : undefined;
      }),
    );
  }

  /**
   * Delivers many occurrences in ONE transaction (the worker's batched path): lock the reminders
   * in id order; per occurrence, by user (inbox heads are locked in one order) then by time (an
   * inbox gets them in time order), re-check it is owed and store its notification; then record
   * every occurrence row (the guard) and advance every reminder in two statements. If any
   * occurrence turns out delivered before, the batch rolls back and each item goes through
   * {@link deliver} on its own.
   */
  async function deliverMany(items: DueItem[], hooks: DeliveryHooks = NO_HOOKS): Promise<DeliveryOutcome[]> {
    const now = new Date();
    const out = await precheck(items, now);
    const todo = items.map((it, i) => ({ ...it, i })).filter(({ i }) => out[i] === undefined);
    if (todo.length === 0) return out as DeliveryOutcome[];
    let changed: ReminderRow[] = [];
    try {
      changed = await commit(async (tx, events) => {
        const locked = new Map((await repo.lockReminders(tx, todo)).map((r) => [r.id, r]));
        const order = [...todo].sort(
          (x, y) => cmp(locked.get(x.id)?.userId, locked.get(y.id)?.userId) || x.occurrenceMs - y.occurrenceMs || cmp(x.id, y.id),
        );
        const after = new Map<string, ReminderRow>();
        const owed: Array<{ it: (typeof order)[number]; r: ReminderRow }> = [];
        for (const it of order) {
          const r = after.get(it.id) ?? locked.get(it.id);
          if (!r || !isPending(r, new Date(it.occurrenceMs))) {
            out[it.i] = { outcome: 'skipped', reason: r?.status === 'active' ? 'not-pending' : 'inactive' };
            continue;
          }
          owed.push({ it, r });
          after.set(it.id, { ...r, ...advance(r, new Date(it.occurrenceMs), now) });
        }
        // one set-based write for every notification of the batch (a fixed number of statements)
        const created = await deps.notifications.createManyInTx(
          tx,
          events,
          owed.map(({ it, r }) => notificationOf(r, it.occurrenceMs)),
        );
        const recorded = owed.map(({ it }, k) => {
          const notificationId = (created[k] as { id: string }).id;
          out[it.i] = { outcome: 'delivered', notificationId };
          return { reminderId: it.id, orgId: it.orgId, occurrenceAt: new Date(it.occurrenceMs), notificationId };
        });
        if ((await repo.insertOccurrences(tx, recorded)) !== recorded.length) throw new OccurrenceRecorded();
        await repo.updateReminders(tx, [...after.values()]);
        await hooks.beforeCommit?.();
        return [...after.values()];
      });
    } catch (err) {
      if (!(err instanceof AlreadyDelivered || err instanceof KeyTaken || err instanceof OccurrenceRecorded)) throw err;
      for (const it of todo) out[it.i] = await deliver(it.orgId, it.id, it.occurrenceMs, hooks);
    }
    await Promise.all(changed.map(enqueueAfterCommit));
    return out as DeliveryOutcome[];
  }

  const batchers = new Map<DeliveryHooks, Batcher<DueItem, DeliveryOutcome>>();
  /**
   * What the job handler calls: concurrent jobs of this worker share delivery transactions
   * (see {@link createBatcher}); the outcome is this occurrence's.
   */
  function deliverBatched(item: DueItem, hooks: DeliveryHooks = NO_HOOKS): Promise<DeliveryOutcome> {
    let b = batchers.get(hooks);
    if (!b) {
      b = createBatcher((items) => deliverMany(items, hooks), { maxBatch: MAX_BATCH, maxInFlight: MAX_BATCHES_IN_FLIGHT });
      batchers.set(hooks, b);
    }
    return b.submit(item);
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

  return { deliver, deliverMany, deliverBatched, reconcile };
}

export type Delivery = ReturnType<typeof createDelivery>;
