import { and, asc, desc, eq, inArray, isNotNull, lte, or, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
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

export type ReminderChange = Partial<Pick<ReminderRow, 'status' | 'nextAt' | 'snoozedUntil'>>;

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

/** What the reconciler needs of a reminder with something pending. */
export type DueRow = Pick<ReminderRow, 'id' | 'orgId' | 'nextAt' | 'snoozedUntil'>;

/**
 * Active reminders with an occurrence or snooze due before `horizon`, earliest first, across
 * organisations (the reconciler is a system duty); `orgIds` narrows it (tests share a database).
 */
export async function dueBefore(db: Executor, horizon: Date, limit: number, orgIds?: readonly string[]): Promise<DueRow[]> {
  if (orgIds && orgIds.length === 0) return [];
  return db
    .select({ id: reminders.id, orgId: reminders.orgId, nextAt: reminders.nextAt, snoozedUntil: reminders.snoozedUntil })
    .from(reminders)
    .where(
      and(
        eq(reminders.status, 'active'),
        or(lte(reminders.nextAt, horizon), and(isNotNull(reminders.snoozedUntil), lte(reminders.snoozedUntil, horizon))),
        orgIds ? inArray(reminders.orgId, [...orgIds]) : undefined,
      ),
    )
    .orderBy(sql`least(${reminders.nextAt}, ${reminders.snoozedUntil})`)
    .limit(limit);
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

/** Records delivered occurrences; returns how many were new (fewer means one was recorded before). */
export async function insertOccurrences(tx: Executor, rows: Array<typeof reminderOccurrences.$inferInsert>): Promise<number> {
  if (rows.length === 0) return 0;
  const inserted = await tx
    .insert(reminderOccurrences)
    .values(rows)
    .onConflictDoNothing()
    .returning({ id: reminderOccurrences.reminderId });
  return inserted.length;
}

/** Applies each row's status, nextAt and snoozedUntil in one statement. */
export async function updateReminders(
  tx: Executor,
  rows: ReadonlyArray<Pick<ReminderRow, 'orgId' | 'id' | 'status' | 'nextAt' | 'snoozedUntil'>>,
) {
  if (rows.length === 0) return;
  const values = sql.join(
    rows.map(
      (r) =>
        sql`(${r.orgId}, ${r.id}::uuid, ${r.status}, ${r.nextAt?.toISOString() ?? null}::timestamptz, ${r.snoozedUntil?.toISOString() ?? null}::timestamptz)`,
    ),
    sql`, `,
  );
  await tx.execute(sql`update ${reminders} set status = v.status, next_at = v.next_at, snoozed_until = v.snoozed_until, updated_at = now()
    from (values ${values}) as v(org_id, id, status, next_at, snoozed_until)
    where ${reminders.orgId} = v.org_id and ${reminders.id} = v.id`);
}
