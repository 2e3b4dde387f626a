import { and, asc, eq, gt, inArray, isNotNull, isNull, lte, or, sql, type SQL } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { olderThanRow } from '../../db/keyset.js';
import type { Viewer } from '../../shared/viewer.js';
import { users } from '../identity/tables.js';
import { type AlertFilterSpec, type AlertSnapshot, EARTH_RADIUS_KM } from './events.js';
import { ALERT_LEVELS, alertAcks, alerts, type AlertRow } from './tables.js';

export const toSnapshot = (r: AlertRow): AlertSnapshot => ({
  id: r.id,
  orgId: r.orgId,
  level: r.level,
  type: r.type,
  title: r.title,
  body: r.body,
  lat: r.lat,
  lng: r.lng,
  regionCode: r.regionCode,
  riskScore: r.riskScore,
  actionRequired: r.actionRequired,
  actionUrl: r.actionUrl,
  expiresAt: r.expiresAt?.toISOString() ?? null,
  audience: r.audience,
  raisedBy: r.raisedBy,
  clientKey: r.clientKey,
  createdAt: r.createdAt.toISOString(),
  escalatedAt: r.escalatedAt?.toISOString() ?? null,
});

/** Inserts unless (org, raisedBy, clientKey) exists; undefined on that conflict. */
export async function insertAlert(tx: Executor, row: typeof alerts.$inferInsert): Promise<AlertRow | undefined> {
  const [r] = await tx.insert(alerts).values(row).onConflictDoNothing().returning();
  return r;
}

export async function findAlert(db: Executor, orgId: string, id: string, lock = false): Promise<AlertRow | undefined> {
  const q = db
    .select()
    .from(alerts)
    .where(and(eq(alerts.orgId, orgId), eq(alerts.id, id)));
  const [r] = lock ? await q.for('update') : await q;
  return r;
}

export async function findByClientKey(db: Executor, orgId: string, raisedBy: string, clientKey: string) {
  const [r] = await db
    .select()
    .from(alerts)
    .where(and(eq(alerts.orgId, orgId), eq(alerts.raisedBy, raisedBy), eq(alerts.clientKey, clientKey)));
  return r;
}

/** SQL twin of `isRecipient` in events.ts. */
const recipientOf = (viewer: Viewer): SQL =>
  or(
    sql`${alerts.audience}->>'kind' = 'org'`,
    sql`(${alerts.audience}->>'kind' = 'roles' and ${alerts.audience}->'roles' @> jsonb_build_array(${viewer.role}::text))`,
    sql`(${alerts.audience}->>'kind' = 'users' and ${alerts.audience}->'userIds' @> jsonb_build_array(${viewer.userId}::text))`,
    viewer.role === 'admin' ? isNotNull(alerts.escalatedAt) : undefined,
  ) as SQL;

/** SQL twin of `matchesFilter` in events.ts (same haversine). */
const filterSql = (f: AlertFilterSpec): Array<SQL | undefined> => {
  const near = f.near;
  return [
    f.minLevel ? inArray(alerts.level, ALERT_LEVELS.slice(ALERT_LEVELS.indexOf(f.minLevel))) : undefined,
    f.types ? inArray(alerts.type, f.types) : undefined,
    f.regions ? inArray(alerts.regionCode, f.regions) : undefined,
    f.minRisk !== undefined ? sql`${alerts.riskScore} >= ${f.minRisk}::float8` : undefined,
    near
      ? sql`(${alerts.lat} is not null and ${alerts.lng} is not null and 2 * ${EARTH_RADIUS_KM}::float8 * asin(least(1, sqrt(power(sin(radians(${alerts.lat} - ${near.lat}::float8) / 2), 2) + cos(radians(${near.lat}::float8)) * cos(radians(${alerts.lat})) * power(sin(radians(${alerts.lng} - ${near.lng}::float8) / 2), 2)))) <= ${near.radiusKm}::float8)`
      : undefined,
  ];
};

/**
 * Alerts the viewer receives that match the filter, newest first, keyset-paginated on
 * (createdAt, id); the key of `afterId` is read from its row (PostgreSQL keeps microseconds).
 */
export async function pageAlerts(
  db: Executor,
  viewer: Viewer,
  filter: AlertFilterSpec,
  opts: { limit: number; afterId?: string; includeExpired: boolean },
): Promise<AlertRow[]> {
  return db
    .select()
    .from(alerts)
    .where(
      and(
        eq(alerts.orgId, viewer.orgId),
        recipientOf(viewer),
        ...filterSql(filter),
        opts.includeExpired ? undefined : or(isNull(alerts.expiresAt), gt(alerts.expiresAt, sql`now()`)),
        olderThanRow(alerts, viewer.orgId, opts.afterId),
      ),
    )
    .orderBy(sql`${alerts.createdAt} desc, ${alerts.id} desc`)
    .limit(opts.limit);
}

/** Records an acknowledgement; false when this user had already acknowledged. */
export async function insertAck(tx: Executor, orgId: string, alertId: string, userId: string, at: Date): Promise<boolean> {
  const rows = await tx
    .insert(alertAcks)
    .values({ orgId, alertId, userId, at })
    .onConflictDoNothing()
    .returning({ userId: alertAcks.userId });
  return rows.length > 0;
}

export async function hasAck(db: Executor, orgId: string, alertId: string): Promise<boolean> {
  const [r] = await db
    .select({ one: sql<number>`1` })
    .from(alertAcks)
    .where(and(eq(alertAcks.orgId, orgId), eq(alertAcks.alertId, alertId)))
    .limit(1);
  return Boolean(r);
}

/** Acknowledgements of these alerts with the user's name and role, oldest first. */
export async function acksOf(db: Executor, orgId: string, alertIds: readonly string[]) {
  if (alertIds.length === 0) return [];
  return db
    .select({
      alertId: alertAcks.alertId,
      at: alertAcks.at,
      id: alertAcks.userId,
      name: sql<string>`coalesce(${users.name}, ${alertAcks.userId})`,
      role: sql<string>`coalesce(${users.role}, 'provider')`,
    })
    .from(alertAcks)
    .leftJoin(users, eq(users.id, alertAcks.userId))
    .where(and(eq(alertAcks.orgId, orgId), inArray(alertAcks.alertId, [...alertIds])))
    .orderBy(asc(alertAcks.at), asc(alertAcks.userId));
}

/** Sets what an escalation changes; `escalatedAt` only while still null (idempotent). */
export async function markEscalated(tx: Executor, orgId: string, id: string, at: Date): Promise<AlertRow | undefined> {
  const [r] = await tx
    .update(alerts)
    .set({ escalatedAt: at, escalateAt: null })
    .where(and(eq(alerts.orgId, orgId), eq(alerts.id, id), isNull(alerts.escalatedAt)))
    .returning();
  return r;
}

/** Drops a pending escalation (acknowledged or expired alerts). */
export async function clearEscalation(tx: Executor, orgId: string, id: string): Promise<void> {
  await tx
    .update(alerts)
    .set({ escalateAt: null })
    .where(and(eq(alerts.orgId, orgId), eq(alerts.id, id), isNotNull(alerts.escalateAt)));
}

/**
 * Escalations due before `before`, across organisations (the reconciler's safety net for lost
 * jobs). Only rows with a pending escalation are in the partial index, so this stays cheap.
 */
export async function dueEscalations(db: Executor, before: Date, limit: number): Promise<Array<{ id: string; orgId: string }>> {
  return db
    .select({ id: alerts.id, orgId: alerts.orgId })
    .from(alerts)
    .where(and(isNotNull(alerts.escalateAt), lte(alerts.escalateAt, before)))
    .orderBy(asc(alerts.escalateAt))
    .limit(limit);
}
