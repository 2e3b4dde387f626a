import type { Config } from '../../config.js';
import type { Db, Executor } from '../../db/client.js';
import type { Queues } from '../../jobs/queues.js';
import type { Commit, EventSink } from '../../realtime/commit.js';
import type { Logger } from '../../shared/logger.js';
import { quietUntil } from '../../shared/time.js';
import { AlreadyDelivered, KeyTaken, type NotificationsService } from '../notifications/service.js';
import * as repo from './repo.js';
import { type Pending, advance, cmp, isPending, notificationOf, pendingTimes, priorityOf } from './occurrence.js';
import type { ReminderRow } from './tables.js';
import { createTicks } from './ticks.js';

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

/** What one claim run did (a tick's return value). */
export interface DueRun {
  delivered: number;
  deferred: number;
  /** Occurrences that failed; they stay owed (the tick throws, so it retries with backoff). */
  failed: number;
  /** Delivery transactions (one per claim of up to {@link MAX_BATCH} reminders). */
  batches: number;
}

class OccurrenceRecorded extends Error {}
const isGuard = (err: unknown) => err instanceof AlreadyDelivered || err instanceof KeyTaken || err instanceof OccurrenceRecorded;

/** One occurrence to deliver. */
export interface DueItem {
  orgId: string;
  id: string;
  occurrenceMs: number;
}

/** An occurrence owed by a row the caller's transaction has locked; `i` is its slot in the outcomes. */
interface Owed {
  r: ReminderRow;
  occMs: number;
  i: number;
}

/** At most this many reminders per claim, i.e. per delivery transaction. */
export const MAX_BATCH = 500;
/** Claims a tick runs at once when more is owed than one claim takes (each its own transaction and connection). */
const LANES = 4;
const NO_HOOKS: DeliveryHooks = {};

/**
 * The worker side of reminders: exactly one delivery per occurrence, and the reconciler that
 * re-creates lost ticks. PostgreSQL decides; Redis only wakes a worker at the right second.
 */
export function createDelivery(deps: DeliveryDeps) {
  const { db, commit, config, logger, notifications } = deps;
  const ticks = createTicks(deps);

  /** What to schedule once a transaction that changed `rows` and held some until `holds` has committed. */
  const followUps = (rows: readonly Pending[], holds: readonly Date[]) => [
    ...rows.filter((r) => r.status === 'active').flatMap(pendingTimes),
    ...holds,
  ];

  /** When quiet hours hold each owed occurrence (none for critical ones), from one preferences read per organisation. */
  async function quietHolds(
    tx: Executor,
    owed: readonly Owed[],
    now: Date,
  ): Promise<Map<string, { orgId: string; id: string; until: Date }>> {
    const byOrg = new Map<string, Set<string>>();
    for (const { r } of owed) if (priorityOf(r) !== 'critical') byOrg.set(r.orgId, (byOrg.get(r.orgId) ?? new Set()).add(r.userId));
    const holds = new Map<string, { orgId: string; id: string; until: Date }>();
    for (const [orgId, users] of byOrg) {
      const prefs = await notifications.preferencesOf(tx, orgId, [...users]);
      for (const { r } of owed) {
        const p = r.orgId === orgId && priorityOf(r) !== 'critical' ? prefs.get(r.userId) : undefined;
        const until = p && quietUntil(now, p.timeZone, p.quietStart, p.quietEnd);
        if (until) holds.set(r.id, { orgId, id: r.id, until });
      }
    }
    return holds;
  }

  /**
   * Inside the caller's transaction, which has locked every row of `owed`: holds what quiet hours
   * hold, then delivers the rest in a fixed number of statements — by user (inbox heads are locked
   * in one order) then by time (an inbox gets them in time order), re-checking each is still owed;
   * every notification and its inbox event, every occurrence row (the guard: one recorded before
   * throws, and the caller goes one by one) and every reminder's advance. Returns what to schedule.
   */
  async function settle(tx: Executor, events: EventSink, owed: Owed[], now: Date, out: DeliveryOutcome[], hooks: DeliveryHooks) {
    if (owed.length === 0) return [];
    const holds = await quietHolds(tx, owed, now);
    const order = owed
      .filter((o) => !holds.has(o.r.id))
      .sort((x, y) => cmp(x.r.userId, y.r.userId) || x.occMs - y.occMs || cmp(x.r.id, y.r.id));
    const after = new Map<string, ReminderRow>();
    const send: Owed[] = [];
    for (const o of order) {
      const r = after.get(o.r.id) ?? o.r;
      if (!isPending(r, new Date(o.occMs))) {
        out[o.i] = { outcome: 'skipped', reason: r.status === 'active' ? 'not-pending' : 'inactive' };
        continue;
      }
      send.push({ ...o, r });
      after.set(r.id, { ...r, ...advance(r, new Date(o.occMs), now) });
    }
    const items = send.map(({ r, occMs }) => notificationOf(r, occMs));
    // one item alone goes through createInTx, whose guard error names the notification stored before
    const created =
      items.length === 1
        ? [(await notifications.createInTx(tx, events, items[0] as (typeof items)[number])).notification]
        : await notifications.createManyInTx(tx, events, items);
    const recorded = send.map(({ r, occMs, i }, k) => {
      const notificationId = (created[k] as { id: string }).id;
      out[i] = { outcome: 'delivered', notificationId };
      return { reminderId: r.id, orgId: r.orgId, occurrenceAt: new Date(occMs), notificationId };
    });
    if ((await repo.insertOccurrences(tx, recorded)) !== recorded.length) throw new OccurrenceRecorded();
    await repo.updateReminders(tx, [...after.values()]);
    for (const o of owed) {
      const h = holds.get(o.r.id);
      if (h) out[o.i] = { outcome: 'deferred', until: h.until };
    }
    await repo.holdReminders(tx, [...holds.values()]);
    await hooks.beforeCommit?.();
    return followUps(
      [...after.values()],
      [...holds.values()].map((h) => h.until),
    );
  }

  /** Records an occurrence whose notification exists without delivering again, and moves on. */
  async function repair(orgId: string, id: string, occ: Date, notificationId: string | null): Promise<void> {
    const after = await commit(async (tx) => {
      const r = await repo.lockReminder(tx, orgId, id);
      if (!r || !isPending(r, occ)) return undefined;
      await repo.insertOccurrence(tx, { reminderId: id, orgId, occurrenceAt: occ, notificationId });
      return repo.updateReminder(tx, orgId, id, advance(r, occ, new Date()));
    });
    if (after) await ticks.scheduleAfterCommit(followUps([after], []));
  }

  /**
   * Delivers occurrence `occurrenceMs` of a reminder at most once, in its own transaction (the
   * one-by-one path after a batch met an occurrence delivered before): lock the row, check it still
   * owes the occurrence, then as in a batch. An occurrence found delivered is recorded and skipped.
   */
  async function deliver(orgId: string, id: string, occurrenceMs: number, hooks: DeliveryHooks = NO_HOOKS): Promise<DeliveryOutcome> {
    const occ = new Date(occurrenceMs);
    const out: DeliveryOutcome[] = [];
    try {
      const times = await commit(async (tx, events) => {
        const r = await repo.lockReminder(tx, orgId, id);
        if (!r) out[0] = { outcome: 'skipped', reason: 'missing' };
        else if (!isPending(r, occ)) out[0] = { outcome: 'skipped', reason: r.status === 'active' ? 'not-pending' : 'inactive' };
        else return settle(tx, events, [{ r, occMs: occurrenceMs, i: 0 }], new Date(), out, hooks);
        return [];
      });
      await ticks.scheduleAfterCommit(times);
      return out[0] as DeliveryOutcome;
    } catch (err) {
      if (!isGuard(err)) throw err;
      // the occurrence was delivered by an earlier transaction: never notify again, only move on
      await repair(orgId, id, occ, err instanceof AlreadyDelivered ? err.notification.id : null);
      return { outcome: 'skipped', reason: 'already-delivered' };
    }
  }

  /**
   * Delivers the given occurrences in ONE transaction: locks the reminders in id order (one lock
   * order for every batch), skips what is missing, inactive or no longer owed, and settles the
   * rest. If any occurrence turns out delivered before, the batch rolls back and each item goes
   * through {@link deliver} on its own.
   */
  async function deliverMany(items: DueItem[], hooks: DeliveryHooks = NO_HOOKS): Promise<DeliveryOutcome[]> {
    const out: DeliveryOutcome[] = [];
    try {
      const times = await commit(async (tx, events) => {
        const locked = new Map((await repo.lockReminders(tx, items)).map((r) => [r.id, r]));
        const owed: Owed[] = [];
        items.forEach((it, i) => {
          const r = locked.get(it.id);
          if (!r || r.orgId !== it.orgId) out[i] = { outcome: 'skipped', reason: 'missing' };
          else if (r.status !== 'active') out[i] = { outcome: 'skipped', reason: 'inactive' };
          else if (!isPending(r, new Date(it.occurrenceMs))) out[i] = { outcome: 'skipped', reason: 'not-pending' };
          else owed.push({ r, occMs: it.occurrenceMs, i });
        });
        return settle(tx, events, owed, new Date(), out, hooks);
      });
      await ticks.scheduleAfterCommit(times);
    } catch (err) {
      if (!isGuard(err)) throw err;
      for (const [i, it] of items.entries()) out[i] = await deliver(it.orgId, it.id, it.occurrenceMs, hooks);
    }
    return out;
  }

  /**
   * One claim and its settlement, in one transaction; returns how many reminders it claimed. A
   * claim that fails as a whole goes one by one: occurrences delivered before are recorded, and one
   * that fails is left owed and added to `failed` (passed over for the rest of the run).
   */
  async function claimOnce(scope: repo.DueScope, hooks: DeliveryHooks, run: DueRun, failed: string[]): Promise<number> {
    const now = new Date();
    const out: DeliveryOutcome[] = [];
    let owed: Owed[] = [];
    let claimed = 0;
    try {
      const times = await commit(async (tx, events) => {
        const rows = await repo.claimDue(tx, now, MAX_BATCH, scope, failed);
        claimed = rows.length;
        owed = rows.flatMap((r) => pendingTimes(r).flatMap((t) => (t.getTime() <= now.getTime() ? [{ r, occMs: t.getTime(), i: 0 }] : [])));
        owed.forEach((o, i) => (o.i = i));
        return settle(tx, events, owed, now, out, hooks);
      });
      await ticks.scheduleAfterCommit(times);
    } catch (err) {
      if (claimed === 0) throw err; // the claim itself failed (e.g. the database is away): retry the tick
      if (!isGuard(err)) logger.warn({ err, occurrences: owed.length }, 'reminder batch failed; delivering its occurrences one by one');
      for (const o of owed) {
        try {
          out[o.i] = await deliver(o.r.orgId, o.r.id, o.occMs, hooks);
        } catch (e) {
          run.failed++;
          failed.push(o.r.id);
          logger.warn({ reminderId: o.r.id, err: e }, 'reminder occurrence failed; it stays owed');
        }
      }
    }
    run.batches++;
    for (const o of out) {
      if (o?.outcome === 'delivered') run.delivered++;
      else if (o?.outcome === 'deferred') run.deferred++;
    }
    return claimed;
  }

  /**
   * THE tick: claims every reminder that owes something now ({@link repo.claimDue}: one
   * statement, FOR UPDATE SKIP LOCKED, so lanes, ticks and workers share the work without waiting
   * on each other) and settles each claim in its own transaction, in {@link LANES} lanes that each
   * claim again until a claim comes back short. If an occurrence failed, the run throws at its end
   * (it stays owed; the tick retries with backoff, the reconciler after that).
   */
  async function deliverDue(opts: { scope?: repo.DueScope; hooks?: DeliveryHooks } = {}): Promise<DueRun> {
    const { scope = {}, hooks = NO_HOOKS } = opts;
    const run: DueRun = { delivered: 0, deferred: 0, failed: 0, batches: 0 };
    const failed: string[] = [];
    const lane = async () => {
      while ((await claimOnce(scope, hooks, run, failed)) === MAX_BATCH);
    };
    // every lane from the start: the first deliveries of a big second do not wait for a first batch
    // (with little owed, the other lanes' claims find nothing: one short transaction each)
    await Promise.all(Array.from({ length: LANES }, lane));
    if (run.failed > 0) throw new Error(`${run.failed} reminder occurrence(s) failed and stay owed (${run.delivered} delivered)`);
    return run;
  }

  /**
   * The safety net (a periodic duty of every worker), which needs no Redis for what is overdue:
   * delivers whatever is owed now (after a Redis restart that lost its data, a flushed queue, an
   * enqueue that failed, a tick that exhausted its attempts), then re-creates the tick of every
   * instant something falls due within two reconcile periods (a no-op where it exists).
   */
  async function reconcile(opts: { orgIds?: readonly string[]; limit?: number } = {}): Promise<{ due: number; fired: number }> {
    const scope = { orgIds: opts.orgIds };
    let run: DueRun = { delivered: 0, deferred: 0, failed: 0, batches: 0 };
    try {
      run = await deliverDue({ scope });
    } catch (err) {
      logger.warn({ err }, 'reminder reconciler: delivering what is owed failed; it stays owed');
    }
    const horizon = new Date(Date.now() + 2 * config.reconcileMs);
    const instants = await repo.dueInstants(db, horizon, opts.limit ?? 5_000, scope);
    await ticks.schedule(instants, true);
    const fired = run.delivered + run.deferred;
    if (fired > 0) logger.info({ fired }, 'reminder reconciler delivered occurrences no tick had taken');
    return { due: instants.length, fired };
  }

  return { deliver, deliverMany, deliverDue, reconcile };
}

export type Delivery = ReturnType<typeof createDelivery>;
