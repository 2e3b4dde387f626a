import { sql } from 'drizzle-orm';
import { boolean, doublePrecision, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const ALERT_LEVELS = ['low', 'medium', 'high', 'critical', 'emergency'] as const;
export type AlertLevel = (typeof ALERT_LEVELS)[number];

/** Who an alert is for: the whole organisation, some roles, or named users. */
export type Audience = { kind: 'org' } | { kind: 'roles'; roles: string[] } | { kind: 'users'; userIds: string[] };

export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    level: text('level', { enum: ALERT_LEVELS }).notNull(),
    type: text('type').notNull(),
    title: text('title').notNull(),
    body: text('body'),
    lat: doublePrecision('lat'),
    lng: doublePrecision('lng'),
    regionCode: text('region_code'),
    riskScore: doublePrecision('risk_score'),
    actionRequired: boolean('action_required').notNull().default(false),
    actionUrl: text('action_url'),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    audience: jsonb('audience').$type<Audience>().notNull().default(sql`'{"kind":"org"}'::jsonb`),
    raisedBy: text('raised_by').notNull(),
    clientKey: text('client_key'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    escalatedAt: timestamp('escalated_at', { withTimezone: true }),
    /**
     * When a pending escalation is due (critical and emergency alerts only); cleared once the alert
     * is acknowledged, escalated or found expired. The reconciler scans only these rows.
     */
    escalateAt: timestamp('escalate_at', { withTimezone: true }),
  },
  (t) => [
    index('alerts_org_created_idx').on(t.orgId, t.createdAt),
    uniqueIndex('alerts_client_key_idx').on(t.orgId, t.raisedBy, t.clientKey),
    index('alerts_escalate_due_idx').on(t.escalateAt).where(sql`${t.escalateAt} is not null`),
  ],
);

/** Acknowledgement per recipient: who and when. */
export const alertAcks = pgTable(
  'alert_acks',
  {
    alertId: uuid('alert_id')
      .notNull()
      .references(() => alerts.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    orgId: text('org_id').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.alertId, t.userId] })],
);

export type AlertRow = typeof alerts.$inferSelect;
