import { sql } from 'drizzle-orm';
import { boolean, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const REMINDER_KINDS = ['medication', 'appointment', 'custom'] as const;
export const REMINDER_STATUSES = ['active', 'paused', 'cancelled', 'completed'] as const;

/**
 * A reminder for one user: one-off (`at`), recurring (`cron` + IANA `timeZone`), or an
 * appointment (`appointmentAt` minus each of `offsetsMinutes`). `nextAt` is the next regular
 * occurrence due and `snoozedUntil` a pending snooze; both are null once nothing is pending. The
 * worker's due-second ticks claim every active row with one of them in the past (and no `heldUntil`
 * in the future) in one set-based statement.
 */
export const reminders = pgTable(
  'reminders',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    userId: text('user_id').notNull(),
    createdBy: text('created_by').notNull(),
    kind: text('kind', { enum: REMINDER_KINDS }).notNull(),
    title: text('title').notNull(),
    body: text('body'),
    critical: boolean('critical').notNull().default(false),
    at: timestamp('at', { withTimezone: true }),
    cron: text('cron'),
    timeZone: text('time_zone').notNull().default('UTC'),
    appointmentAt: timestamp('appointment_at', { withTimezone: true }),
    offsetsMinutes: integer('offsets_minutes').array().notNull().default(sql`'{}'::int[]`),
    status: text('status', { enum: REMINDER_STATUSES }).notNull().default('active'),
    nextAt: timestamp('next_at', { withTimezone: true }),
    /**
     * A pending snooze: one extra delivery at this instant (its occurrence identity), on top of
     * the regular schedule. A later snooze replaces a pending one.
     */
    snoozedUntil: timestamp('snoozed_until', { withTimezone: true }),
    /**
     * Quiet hours hold what is owed until this instant (the occurrences keep their identity): the
     * claim passes over the row until then. Cleared by a delivery and by every control.
     */
    heldUntil: timestamp('held_until', { withTimezone: true }),
    clientKey: text('client_key'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('reminders_user_idx').on(t.orgId, t.userId),
    index('reminders_due_idx').on(t.nextAt).where(sql`${t.status} = 'active'`),
    index('reminders_snooze_idx').on(t.snoozedUntil).where(sql`${t.status} = 'active' and ${t.snoozedUntil} is not null`),
    uniqueIndex('reminders_client_key_idx').on(t.orgId, t.createdBy, t.clientKey),
  ],
);

/** One row per delivered occurrence: the guard that makes delivery exactly-once. */
export const reminderOccurrences = pgTable(
  'reminder_occurrences',
  {
    reminderId: uuid('reminder_id')
      .notNull()
      .references(() => reminders.id, { onDelete: 'cascade' }),
    occurrenceAt: timestamp('occurrence_at', { withTimezone: true }).notNull(),
    orgId: text('org_id').notNull(),
    notificationId: uuid('notification_id'),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.reminderId, t.occurrenceAt] })],
);

export type ReminderRow = typeof reminders.$inferSelect;
