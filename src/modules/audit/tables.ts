import { sql } from 'drizzle-orm';
import { bigserial, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** What kind of access an audit row records. */
export const AUDIT_OPERATIONS = ['query', 'mutation', 'subscribe', 'unsubscribe'] as const;
export type AuditOperation = (typeof AUDIT_OPERATIONS)[number];

/**
 * The audit log of patient data: one row per root field a user read or wrote, and per subscription
 * start and stop. Append-only (a trigger refuses UPDATE; only retention deletes). Ids only: never
 * message bodies, notes, features, tokens or any other content.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** When the access happened (not when the row was flushed). */
    at: timestamp('at', { withTimezone: true }).notNull(),
    orgId: text('org_id').notNull(),
    userId: text('user_id').notNull(),
    role: text('role').notNull(),
    /** `http` or `ws`. */
    transport: text('transport').notNull(),
    ip: text('ip'),
    /** The graphql-ws connection (WebSocket only). */
    socketId: text('socket_id'),
    requestId: text('request_id').notNull(),
    operation: text('operation', { enum: AUDIT_OPERATIONS }).notNull(),
    /** The client's operation name, if it gave one (cut to 100 characters). */
    operationName: text('operation_name'),
    /** The root field (`sendMessage`, `conversation`, `score`...). */
    field: text('field').notNull(),
    /** The kind of object accessed (`Message`, `Conversation`, `Prediction`...). */
    objectType: text('object_type').notNull(),
    /** Ids of the objects accessed, from the arguments and the result (bounded). */
    objectIds: text('object_ids').array().notNull().default(sql`'{}'::text[]`),
    /** `ok` or the error code (`FORBIDDEN`, `NOT_FOUND`...). */
    outcome: text('outcome').notNull(),
    /** Structured extras without content, e.g. a promotion's old and new version, why a subscription stopped. */
    detail: jsonb('detail').$type<Record<string, unknown>>(),
  },
  (t) => [
    // ascending, read backwards for "newest first": new rows land at the right end of their org's
    // range, where a page split leaves the old page full, instead of at its left end (one org
    // writing: index 45 % smaller, about 1-1.7 µs less per row; docs/audit.md, "Indexes")
    index('audit_events_org_at_idx').on(t.orgId, t.at, t.id),
    // a hash index: a tenth of a btree's cost per row here (docs/audit.md, "Indexes"); the planner
    // reads a rare user's rows through it, and can walk org_at for a user with many rows
    index('audit_events_user_idx').using('hash', t.userId),
    // a pending list of 32 MB: new entries are merged into the index in larger, cheaper batches
    index('audit_events_object_ids_idx').using('gin', t.objectIds).with({ gin_pending_list_limit: 32768 }),
    index('audit_events_at_idx').on(t.at),
  ],
);

export type AuditRow = typeof auditEvents.$inferSelect;
export type AuditInsert = typeof auditEvents.$inferInsert;
