import { and, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { olderThanRow } from '../../db/keyset.js';
import type { NotificationSnapshot } from './events.js';
import { notificationPreferences, notifications, type NotificationRow, type PreferencesRow } from './tables.js';

export const toSnapshot = (r: NotificationRow): NotificationSnapshot => ({
  id: r.id,
  userId: r.userId,
  kind: r.kind,
  priority: r.priority,
  title: r.title,
  body: r.body,
  data: r.data,
  createdAt: r.createdAt.toISOString(),
  readAt: r.readAt?.toISOString() ?? null,
});

/** The notification a user already has under this idempotency key, if any. */
export async function findByClientKey(db: Executor, orgId: string, userId: string, clientKey: string) {
  const [r] = await db
    .select()
    .from(notifications)
    .where(and(eq(notifications.orgId, orgId), eq(notifications.userId, userId), eq(notifications.clientKey, clientKey)));
  return r;
}

export async function unreadCount(db: Executor, orgId: string, userId: string): Promise<number> {
  const [r] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(notifications)
    .where(and(eq(notifications.orgId, orgId), eq(notifications.userId, userId), isNull(notifications.readAt)));
  return r?.n ?? 0;
}

export async function findNotification(db: Executor, orgId: string, userId: string, id: string) {
  const [r] = await db
    .select()
    .from(notifications)
    .where(and(eq(notifications.orgId, orgId), eq(notifications.userId, userId), eq(notifications.id, id)));
  return r;
}

/** Marks unread items read (all, or the given ids); returns the ids that changed. */
export async function markRead(tx: Executor, orgId: string, userId: string, ids?: string[]): Promise<string[]> {
  const rows = await tx
    .update(notifications)
    .set({ readAt: new Date() })
    .where(
      and(
        eq(notifications.orgId, orgId),
        eq(notifications.userId, userId),
        isNull(notifications.readAt),
        ids ? inArray(notifications.id, ids) : undefined,
      ),
    )
    .returning({ id: notifications.id });
  return rows.map((r) => r.id);
}

/** Newest first, keyset-paginated on (createdAt, id) after the row `afterId`. */
export async function page(db: Executor, orgId: string, userId: string, limit: number, unreadOnly: boolean, afterId?: string) {
  return db
    .select()
    .from(notifications)
    .where(
      and(
        eq(notifications.orgId, orgId),
        eq(notifications.userId, userId),
        unreadOnly ? isNull(notifications.readAt) : undefined,
        olderThanRow(notifications, orgId, afterId),
      ),
    )
    .orderBy(desc(notifications.createdAt), desc(notifications.id))
    .limit(limit);
}

export async function getPreferences(db: Executor, orgId: string, userId: string): Promise<PreferencesRow | undefined> {
  const [r] = await db
    .select()
    .from(notificationPreferences)
    .where(and(eq(notificationPreferences.orgId, orgId), eq(notificationPreferences.userId, userId)));
  return r;
}

export async function upsertPreferences(db: Executor, row: typeof notificationPreferences.$inferInsert) {
  const [r] = await db
    .insert(notificationPreferences)
    .values(row)
    .onConflictDoUpdate({ target: notificationPreferences.userId, set: { ...row, updatedAt: new Date() } })
    .returning();
  return r as PreferencesRow;
}

/** Inserts many; rows whose (org, user, clientKey) exists are skipped. Returns the inserted rows. */
/**
 * Inserts many notifications in one statement from a single `jsonb` parameter (one JSON.stringify
 * instead of 11 bound parameters per row, which drizzle builds one by one), skipping rows whose
 * client key exists; returns the rows inserted (in no particular order).
 */
export async function insertNotifications(tx: Executor, rows: Array<typeof notifications.$inferInsert>): Promise<NotificationRow[]> {
  if (rows.length === 0) return [];
  const json = JSON.stringify(
    rows.map((r) => ({
      id: r.id,
      o: r.orgId,
      u: r.userId,
      k: r.kind,
      p: r.priority ?? 'normal',
      t: r.title,
      b: r.body ?? null,
      d: r.data ?? {},
      c: r.clientKey ?? null,
      s: r.pushed ?? true,
      a: (r.createdAt ?? new Date()).toISOString(),
      r: r.readAt?.toISOString() ?? null,
    })),
  );
  // every column, in the table's order (drizzle inserts a select into all of them)
  return tx
    .insert(notifications)
    .select(
      sql`select r.id, r.o, r.u, r.k, r.p, r.t, r.b, r.d, r.c, r.s, r.a, r.r from jsonb_to_recordset(${json}::jsonb)
        as r(id uuid, o text, u text, k text, p text, t text, b text, d jsonb, c text, s boolean, a timestamptz, r timestamptz)`,
    )
    .onConflictDoNothing()
    .returning();
}

/** Unread counts of several users of one organisation. */
export async function unreadCounts(db: Executor, orgId: string, userIds: string[]): Promise<Map<string, number>> {
  const rows = await db
    .select({ userId: notifications.userId, n: sql<number>`count(*)::int` })
    .from(notifications)
    .where(and(eq(notifications.orgId, orgId), inArray(notifications.userId, userIds), isNull(notifications.readAt)))
    .groupBy(notifications.userId);
  return new Map(rows.map((r) => [r.userId, r.n]));
}

export async function preferencesOf(db: Executor, orgId: string, userIds: string[]): Promise<Map<string, PreferencesRow>> {
  const rows = await db
    .select()
    .from(notificationPreferences)
    .where(and(eq(notificationPreferences.orgId, orgId), inArray(notificationPreferences.userId, userIds)));
  return new Map(rows.map((r) => [r.userId, r]));
}
