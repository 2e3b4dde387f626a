import { and, asc, desc, eq, inArray, isNull, lte, notInArray, or, sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../../db/client.js';
import { type ReminderRow, reminderOccurrences, reminders } from './tables.js';

type Status = ReminderRow['status'];

/** Inserts unless (org, creator, clientKey) exists; returns the row and whether it is new. */
export async function insertReminder(db: Executor, row: typeof reminders.$inferInsert): Promise<{ row: ReminderRow; created: boolean }> {
  const [inserted] = await db.insert(reminders).values(row).onConflictDoNothing().returning();
  if (inserted) return { row: inserted, created: true };
  const existing = row.clientKey ? await findByClientKey(db, row.orgId, row.createdBy, row.clientKey) : undefined;
  if (!existing) throw new Error('reminder insert conflicted but no row found');
  return { row: existing, created: false };
}

export async function findByClientKey(db: Executor, orgId: string, createdBy: string, clientKey: string) {
  const [r] = await db
    .select()
    .from(reminders)
    .where(and(eq(reminders.orgId, orgId), eq(reminders.createdBy, createdBy), eq(reminders.clientKey, clientKey)));
  return r;
}

export async function findReminder(db: Executor, orgId: string, id: string): Promise<ReminderRow | undefined> {
  const [r] = await db
    .select()
    .from(reminders)
    .where(and(eq(reminders.orgId, orgId), eq(reminders.id, id)));
  return r;
}

/** Reads and locks the row until the transaction ends (serialises deliveries with pause/cancel/snooze). */
export async function lockReminder(tx: Executor, orgId: string, id: string): Promise<ReminderRow | undefined> {
  const [r] = await tx
    .select()
    .from(reminders)
    .where(and(eq(reminders.orgId, orgId), eq(reminders.id, id)))
    .for('update');
  return r;
}

/** A user's reminders, active ones first, then by next occurrence and creation. */
export async function listForUser(db: Executor, orgId: string, userId: string, statuses: readonly Status[] | undefined, limit: number) {
  return db
    .select()
    .from(reminders)
    .where(
      and(
        eq(reminders.orgId, orgId),
        eq(reminders.userId, userId),
        statuses?.length ? inArray(reminders.status, [...statuses]) : undefined,
      ),
    )
    .orderBy(sql`${reminders.status} <> 'active'`, asc(reminders.nextAt), desc(reminders.createdAt))
    .limit(limit);
}

export type ReminderChange = Partial<Pick<ReminderRow, 'status' | 'nextAt' | 'snoozedUntil' | 'heldUntil'>>;

export async function updateReminder(db: Executor, orgId: string, id: string, change: ReminderChange): Promise<ReminderRow> {
  const [r] = await db
    .update(reminders)
    .set({ ...change, updatedAt: new Date() })
    .where(and(eq(reminders.orgId, orgId), eq(reminders.id, id)))
    .returning();
  if (!r) throw new Error('reminder vanished during update');
  return r;
}

/** Records a delivered occurrence; false when it was recorded before (the exactly-once guard). */
export async function insertOccurrence(tx: Executor, row: typeof reminderOccurrences.$inferInsert): Promise<boolean> {
  const inserted = await tx.insert(reminderOccurrences).values(row).onConflictDoNothing().returning({ id: reminderOccurrences.reminderId });
  return inserted.length > 0;
}

export async function countOccurrences(db: Executor, orgId: string, reminderId: string): Promise<number> {
  const [r] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(reminderOccurrences)
    .where(and(eq(reminderOccurrences.orgId, orgId), eq(reminderOccurrences.reminderId, reminderId)));
  return r?.n ?? 0;
}

/** Scope of the system duties that span organisations; `orgIds` narrows them (tests share a database). */
export interface DueScope {
  orgIds?: readonly string[];
}
const inScope = (scope: DueScope) => (scope.orgIds ? inArray(reminders.orgId, [...scope.orgIds]) : undefined);
const owedBy = (at: Date) =>
  and(
    eq(reminders.status, 'active'),
    or(lte(reminders.nextAt, at), lte(reminders.snoozedUntil, at)),
    or(isNull(reminders.heldUntil), lte(reminders.heldUntil, at)),
  );

/**
 * THE claim: locks up to `limit` active reminders that owe an occurrence or snooze at `now` and are
 * not held, earliest second first and by user within a second, skipping rows another transaction holds (another worker's batch, a
 * control being applied). One statement, whatever the count; the locks last until the caller's
 * transaction ends. `exclude` passes over rows that failed earlier in the same run.
 */
export async function claimDue(tx: Executor, now: Date, limit: number, scope: DueScope, exclude: readonly string[] = []) {
  if (scope.orgIds && scope.orgIds.length === 0) return [];
  return (
    tx
      .select()
      .from(reminders)
      .where(and(owedBy(now), inScope(scope), exclude.length ? notInArray(reminders.id, [...exclude]) : undefined))
      // earliest second first, then by user: concurrent claims of one second take disjoint runs of
      // users, so their transactions do not queue on the same inbox heads
      .orderBy(sql`date_trunc('second', least(${reminders.nextAt}, ${reminders.snoozedUntil}))`, asc(reminders.userId))
      .limit(limit)
      .for('update', { skipLocked: true })
  );
}

/**
 * The instants (epoch ms) at which something falls due before `horizon`, once each: the earliest
 * pending time of each active reminder, or the end of its hold. What the reconciler re-creates
 * ticks for.
 */
export async function dueInstants(db: Executor, horizon: Date, limit: number, scope: DueScope): Promise<number[]> {
  if (scope.orgIds && scope.orgIds.length === 0) return [];
  const rows = await db
    .selectDistinct({
      at: sql<string>`(extract(epoch from greatest(least(${reminders.nextAt}, ${reminders.snoozedUntil}), ${reminders.heldUntil})) * 1000)::float8`,
    })
    .from(reminders)
    .where(and(eq(reminders.status, 'active'), or(lte(reminders.nextAt, horizon), lte(reminders.snoozedUntil, horizon)), inScope(scope)))
    .limit(limit);
  return rows.map((r) => Number(r.at));
}

/** Holds reminders until each row's instant (quiet hours), in one statement. */
export async function holdReminders(tx: Executor, rows: ReadonlyArray<{ orgId: string; id: string; until: Date }>) {
  if (rows.length === 0) return;
  const json = JSON.stringify(rows.map((r) => ({ o: r.orgId, i: r.id, h: r.until.toISOString() })));
  await tx.execute(sql`update ${reminders} set held_until = v.h, updated_at = now()
    from jsonb_to_recordset(${json}::jsonb) as v(o text, i uuid, h timestamptz)
    where ${reminders.orgId} = v.o and ${reminders.id} = v.i`);
}

/** An (organisation, reminder) pair: batch functions serve a system duty that spans organisations. */
export interface OrgRef {
  orgId: string;
  id: string;
}
const pairs = (refs: readonly OrgRef[]) =>
  sql`(${reminders.orgId}, ${reminders.id}) in (${sql.join(
    refs.map((r) => sql`(${r.orgId}, ${r.id}::uuid)`),
    sql`, `,
  )})`;

/** Reminders by (org, id), unlocked. */
export async function findReminders(db: Executor, refs: readonly OrgRef[]): Promise<ReminderRow[]> {
  if (refs.length === 0) return [];
  return db.select().from(reminders).where(pairs(refs));
}

/** Reads and locks the rows in id order (one lock order for every batch: no deadlock between batches). */
export async function lockReminders(tx: Executor, refs: readonly OrgRef[]): Promise<ReminderRow[]> {
  if (refs.length === 0) return [];
  return tx.select().from(reminders).where(pairs(refs)).orderBy(asc(reminders.id)).for('update');
}

/**
 * Records delivered occurrences; returns how many were new (fewer means one was recorded before).
 * One `jsonb` parameter for the whole batch (drizzle builds bound parameters one by one).
 */
export async function insertOccurrences(tx: Executor, rows: Array<typeof reminderOccurrences.$inferInsert>): Promise<number> {
  if (rows.length === 0) return 0;
  const json = JSON.stringify(
    rows.map((r) => ({ r: r.reminderId, t: r.occurrenceAt.toISOString(), o: r.orgId, n: r.notificationId ?? null })),
  );
  const inserted = await tx.execute(sql`insert into ${reminderOccurrences} (reminder_id, occurrence_at, org_id, notification_id)
    select r.r, r.t, r.o, r.n from jsonb_to_recordset(${json}::jsonb) as r(r uuid, t timestamptz, o text, n uuid)
    on conflict do nothing returning 1`);
  return rowsOf(inserted).length;
}

/** Applies each row's status, nextAt and snoozedUntil in one statement (a delivery also ends any hold). */
export async function updateReminders(
  tx: Executor,
  rows: ReadonlyArray<Pick<ReminderRow, 'orgId' | 'id' | 'status' | 'nextAt' | 'snoozedUntil'>>,
) {
  if (rows.length === 0) return;
  const json = JSON.stringify(
    rows.map((r) => ({
      o: r.orgId,
      i: r.id,
      s: r.status,
      n: r.nextAt?.toISOString() ?? null,
      z: r.snoozedUntil?.toISOString() ?? null,
    })),
  );
  await tx.execute(sql`update ${reminders} set status = v.s, next_at = v.n, snoozed_until = v.z, held_until = null, updated_at = now()
    from jsonb_to_recordset(${json}::jsonb) as v(o text, i uuid, s text, n timestamptz, z timestamptz)
    where ${reminders.orgId} = v.o and ${reminders.id} = v.i`);
}
