import type { Priority } from '../notifications/tables.js';
import { type ReminderNotificationData, occurrenceKey } from './events.js';
import type { ReminderChange } from './repo.js';
import { followingOccurrence, scheduleOf } from './schedule.js';
import type { ReminderRow } from './tables.js';

// What one occurrence of a reminder is, as plain functions of its row: shared by the API service
// and schema (what is pending) and the worker's delivery (what to send, and what comes next).

export type Pending = Pick<ReminderRow, 'id' | 'orgId' | 'status' | 'nextAt' | 'snoozedUntil'>;

/** The instants a reminder still owes a delivery for (regular occurrence and snooze). */
export const pendingTimes = (r: Pick<ReminderRow, 'nextAt' | 'snoozedUntil'>): Date[] =>
  [r.nextAt, r.snoozedUntil].filter((d): d is Date => d instanceof Date);

export const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Whether `r` is active and still owes occurrence `occ`. */
export const isPending = (r: Pending, occ: Date) => r.status === 'active' && pendingTimes(r).some((d) => d.getTime() === occ.getTime());

/** Critical reminders are critical notifications (ignore quiet hours); medication and appointments high. */
export const priorityOf = (r: Pick<ReminderRow, 'critical' | 'kind'>): Priority =>
  r.critical ? 'critical' : r.kind === 'custom' ? 'normal' : 'high';

/** The row after delivering `occ`: that pending time is consumed, the schedule moves on, any hold ends. */
export function advance(r: ReminderRow, occ: Date, now: Date): ReminderChange {
  const same = (d: Date | null) => d?.getTime() === occ.getTime();
  const snoozedUntil = same(r.snoozedUntil) ? null : r.snoozedUntil;
  const nextAt = same(r.nextAt) ? followingOccurrence(scheduleOf(r), occ, now) : r.nextAt;
  return { nextAt, snoozedUntil, heldUntil: null, status: nextAt || snoozedUntil ? 'active' : 'completed' };
}

/** The notification of occurrence `occMs` of `r` (title and body come from PostgreSQL, never from a job). */
export function notificationOf(r: ReminderRow, occMs: number) {
  const data: ReminderNotificationData = {
    reminderId: r.id,
    occurrenceAt: new Date(occMs).toISOString(),
    reminderKind: r.kind,
    snoozed: r.snoozedUntil?.getTime() === occMs && r.nextAt?.getTime() !== occMs,
  };
  return {
    orgId: r.orgId,
    userId: r.userId,
    kind: 'reminder' as const,
    priority: priorityOf(r),
    title: r.title,
    body: r.body,
    data: { ...data },
    clientKey: occurrenceKey(r.id, occMs),
  };
}
