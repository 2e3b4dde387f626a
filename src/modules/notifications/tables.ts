import { sql } from 'drizzle-orm';
import { boolean, index, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const NOTIFICATION_KINDS = ['message', 'mention', 'alert', 'reminder', 'missed_call', 'system'] as const;
export const PRIORITIES = ['low', 'normal', 'high', 'critical'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];
export type Priority = (typeof PRIORITIES)[number];

/** A user's inbox item. `pushed` is false for items stored silently (muted, quiet hours). */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    userId: text('user_id').notNull(),
    kind: text('kind', { enum: NOTIFICATION_KINDS }).notNull(),
    priority: text('priority', { enum: PRIORITIES }).notNull().default('normal'),
    title: text('title').notNull(),
    body: text('body'),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    /** Idempotency key: the creator's key, or a deterministic one for system deliveries. */
    clientKey: text('client_key'),
    pushed: boolean('pushed').notNull().default(true),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    readAt: timestamp('read_at', { withTimezone: true }),
  },
  (t) => [
    index('notifications_inbox_idx').on(t.orgId, t.userId, t.createdAt),
    index('notifications_unread_idx').on(t.userId).where(sql`${t.readAt} is null`),
    uniqueIndex('notifications_client_key_idx').on(t.orgId, t.userId, t.clientKey),
  ],
);

/** Per-user delivery preferences. Quiet hours are local times (HH:MM) in `timeZone`. */
export const notificationPreferences = pgTable('notification_preferences', {
  userId: text('user_id').primaryKey(),
  orgId: text('org_id').notNull(),
  mutedKinds: text('muted_kinds').array().notNull().default(sql`'{}'::text[]`),
  minPriority: text('min_priority', { enum: PRIORITIES }).notNull().default('low'),
  quietStart: text('quiet_start'),
  quietEnd: text('quiet_end'),
  timeZone: text('time_zone').notNull().default('UTC'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export type NotificationRow = typeof notifications.$inferSelect;
export type PreferencesRow = typeof notificationPreferences.$inferSelect;
