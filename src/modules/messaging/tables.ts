import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** A conversation: direct (two people), group, or care team. */
export const conversations = pgTable(
  'conversations',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    kind: text('kind', { enum: ['direct', 'group', 'care_team'] }).notNull(),
    title: text('title'),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('conversations_org_idx').on(t.orgId, t.createdAt)],
);

/** Membership, with each member's read position (the seq of the last message they read). */
export const conversationMembers = pgTable(
  'conversation_members',
  {
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    orgId: text('org_id').notNull(),
    lastReadSeq: bigint('last_read_seq', { mode: 'number' }).notNull().default(0),
    joinedAt: timestamp('joined_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.conversationId, t.userId] }), index('conversation_members_user_idx').on(t.userId)],
);

/**
 * Messages. `seq` is the ledger position of the MessageAdded event, so history pages and unread
 * counts follow commit order. `(org, sender, clientMessageId)` is the idempotency key.
 */
export const messages = pgTable(
  'messages',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    conversationId: uuid('conversation_id')
      .notNull()
      .references(() => conversations.id, { onDelete: 'cascade' }),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    senderId: text('sender_id').notNull(),
    body: text('body'),
    clientMessageId: text('client_message_id'),
    attachments: jsonb('attachments').$type<Attachment[]>().notNull().default(sql`'[]'::jsonb`),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    editedAt: timestamp('edited_at', { withTimezone: true }),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('messages_conversation_seq_idx').on(t.conversationId, t.seq),
    uniqueIndex('messages_client_key_idx').on(t.orgId, t.senderId, t.clientMessageId),
  ],
);

/** Attachment metadata; the file itself lives wherever `url` points. */
export interface Attachment {
  url: string;
  contentType: string;
  size: number;
  name: string | null;
}

export type ConversationRow = typeof conversations.$inferSelect;
export type MessageRow = typeof messages.$inferSelect;
