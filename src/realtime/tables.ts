import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * One head row per stream. Appending increments it inside the caller's transaction, so the row
 * lock serialises writers of one stream and positions are handed out in commit order.
 */
export const streamHeads = pgTable('stream_heads', {
  stream: text('stream').primaryKey(),
  orgId: text('org_id').notNull(),
  position: bigint('position', { mode: 'number' }).notNull(),
  /** Events up to this position have been deleted by retention: an older cursor cannot resume. */
  trimmed: bigint('trimmed', { mode: 'number' }).notNull().default(0),
});

/** The durable event log shared by every domain: what subscriptions replay after a cursor. */
export const streamEvents = pgTable(
  'stream_events',
  {
    stream: text('stream').notNull(),
    position: bigint('position', { mode: 'number' }).notNull(),
    orgId: text('org_id').notNull(),
    type: text('type').notNull(),
    /** The entity the event is about (e.g. a message id), so its content can be redacted later. */
    subject: text('subject'),
    payload: jsonb('payload').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /**
     * The writing transaction's id: the head poll reads what changed since the oldest transaction
     * still open at its previous run (work proportional to changes, not to the streams watched).
     */
    tx: bigint('tx', { mode: 'number' }).notNull().default(sql`(pg_current_xact_id()::text::bigint)`),
  },
  (t) => [
    primaryKey({ columns: [t.stream, t.position] }),
    index('stream_events_org_idx').on(t.orgId, t.at),
    index('stream_events_subject_idx').on(t.stream, t.subject),
    index('stream_events_tx_idx').on(t.tx),
  ],
);
