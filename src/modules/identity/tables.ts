import { index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Organisations (tenants). Ids come from the `org` claim of tokens. */
export const orgs = pgTable('orgs', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  /** What a call to someone already in a call does here (`ring` or `reject_busy`); null: the deployment's CALL_BUSY_POLICY. */
  callBusyPolicy: text('call_busy_policy', { enum: ['ring', 'reject_busy'] }),
});

/** Users, provisioned just in time from valid token claims (`sub`, `org`, `role`, `name`). */
export const users = pgTable(
  'users',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id')
      .notNull()
      .references(() => orgs.id),
    role: text('role', { enum: ['patient', 'provider', 'admin', 'service'] }).notNull(),
    name: text('name').notNull(),
    timeZone: text('time_zone').notNull().default('UTC'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
  },
  (t) => [index('users_org_idx').on(t.orgId, t.role)],
);

export type UserRow = typeof users.$inferSelect;
