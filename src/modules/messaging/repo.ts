import { and, asc, desc, eq, gt, inArray, lt, ne, isNull, sql } from 'drizzle-orm';
import { type Executor, rowsOf } from '../../db/client.js';
import type { FusedMany } from '../../realtime/ledger.js';
import { olderThanRow } from '../../db/keyset.js';
import { users } from '../identity/tables.js';
import { type Attachment, conversationMembers, conversations, messages, type ConversationRow } from './tables.js';
import type { MessageSnapshot } from './events.js';

const snapshotColumns = {
  id: messages.id,
  conversationId: messages.conversationId,
  seq: messages.seq,
  senderId: messages.senderId,
  senderName: sql<string>`coalesce(${users.name}, ${messages.senderId})`,
  senderRole: sql<string>`coalesce(${users.role}, 'patient')`,
  body: messages.body,
  clientMessageId: messages.clientMessageId,
  attachments: messages.attachments,
  createdAt: messages.createdAt,
  editedAt: messages.editedAt,
  deletedAt: messages.deletedAt,
};

type SnapshotRow = { [K in keyof typeof snapshotColumns]: unknown };
const toSnapshot = (r: SnapshotRow): MessageSnapshot => ({
  id: r.id as string,
  conversationId: r.conversationId as string,
  seq: Number(r.seq),
  senderId: r.senderId as string,
  senderName: r.senderName as string,
  senderRole: r.senderRole as string,
  body: (r.body as string | null) ?? null,
  clientMessageId: (r.clientMessageId as string | null) ?? null,
  attachments: (r.attachments as Attachment[]) ?? [],
  createdAt: (r.createdAt as Date).toISOString(),
  editedAt: r.editedAt ? (r.editedAt as Date).toISOString() : null,
  deletedAt: r.deletedAt ? (r.deletedAt as Date).toISOString() : null,
});

export async function insertConversation(
  tx: Executor,
  row: { id: string; orgId: string; kind: ConversationRow['kind']; title: string | null; createdBy: string },
): Promise<ConversationRow> {
  const [c] = await tx.insert(conversations).values(row).returning();
  return c as ConversationRow;
}

export async function insertMembers(tx: Executor, orgId: string, conversationId: string, userIds: readonly string[]) {
  if (userIds.length === 0) return [];
  const rows = await tx
    .insert(conversationMembers)
    .values(userIds.map((userId) => ({ conversationId, userId, orgId })))
    .onConflictDoNothing()
    .returning({ userId: conversationMembers.userId });
  return rows.map((r) => r.userId);
}

export async function deleteMember(tx: Executor, orgId: string, conversationId: string, userId: string) {
  const rows = await tx
    .delete(conversationMembers)
    .where(
      and(
        eq(conversationMembers.orgId, orgId),
        eq(conversationMembers.conversationId, conversationId),
        eq(conversationMembers.userId, userId),
      ),
    )
    .returning({ userId: conversationMembers.userId });
  return rows.length > 0;
}

export async function findConversation(db: Executor, orgId: string, id: string) {
  const [c] = await db
    .select()
    .from(conversations)
    .where(and(eq(conversations.orgId, orgId), eq(conversations.id, id)));
  return c;
}

/** The conversation and the user's membership row, if the user is a member. */
export async function findMembership(db: Executor, orgId: string, conversationId: string, userId: string) {
  const [m] = await db
    .select()
    .from(conversationMembers)
    .where(
      and(
        eq(conversationMembers.orgId, orgId),
        eq(conversationMembers.conversationId, conversationId),
        eq(conversationMembers.userId, userId),
      ),
    );
  return m;
}

/** One question of {@link areMembers}. */
export interface MemberQuery {
  orgId: string;
  conversationId: string;
  userId: string;
}

/**
 * {@link findMembership} for many (organisation, conversation, user) at once, in one statement:
 * true where the user is a member. What the subscriptions of a reconnect storm ask together.
 */
export async function areMembers(db: Executor, qs: readonly MemberQuery[]): Promise<boolean[]> {
  if (qs.length === 0) return [];
  const json = JSON.stringify(qs.map((q, i) => ({ i, org: q.orgId, conv: q.conversationId, usr: q.userId })));
  const rows = rowsOf<{ i: number }>(
    await db.execute(sql`
      select r.i from jsonb_to_recordset(${json}::jsonb) as r(i int, org text, conv uuid, usr text)
      where exists (select 1 from ${conversationMembers} m
        where m.org_id = r.org and m.conversation_id = r.conv and m.user_id = r.usr)`),
  );
  const found = new Set(rows.map((r) => Number(r.i)));
  return qs.map((_, i) => found.has(i));
}

export async function listMembers(db: Executor, orgId: string, conversationId: string) {
  return db
    .select({ id: users.id, name: users.name, role: users.role, lastReadSeq: conversationMembers.lastReadSeq })
    .from(conversationMembers)
    .innerJoin(users, eq(users.id, conversationMembers.userId))
    .where(and(eq(conversationMembers.orgId, orgId), eq(conversationMembers.conversationId, conversationId)))
    .orderBy(asc(conversationMembers.joinedAt), asc(users.id));
}

/**
 * Conversations the user belongs to, newest first, keyset-paginated on (createdAt, id). The key is
 * read from the row of `afterId` because PostgreSQL keeps microseconds and a JS Date does not:
 * a millisecond key would skip conversations created in the same millisecond.
 */
export async function listConversationsOf(db: Executor, orgId: string, userId: string, limit: number, afterId?: string) {
  const rows = await db
    .select({ c: conversations })
    .from(conversationMembers)
    .innerJoin(conversations, eq(conversations.id, conversationMembers.conversationId))
    .where(and(eq(conversationMembers.orgId, orgId), eq(conversationMembers.userId, userId), olderThanRow(conversations, orgId, afterId)))
    .orderBy(desc(conversations.createdAt), desc(conversations.id))
    .limit(limit);
  return rows.map((r) => r.c);
}

export async function findMessage(db: Executor, orgId: string, id: string): Promise<MessageSnapshot | undefined> {
  const [r] = await db
    .select(snapshotColumns)
    .from(messages)
    .leftJoin(users, eq(users.id, messages.senderId))
    .where(and(eq(messages.orgId, orgId), eq(messages.id, id)));
  return r ? toSnapshot(r) : undefined;
}

export async function findMessageByClientKey(db: Executor, orgId: string, senderId: string, clientMessageId: string) {
  const [r] = await db
    .select(snapshotColumns)
    .from(messages)
    .leftJoin(users, eq(users.id, messages.senderId))
    .where(and(eq(messages.orgId, orgId), eq(messages.senderId, senderId), eq(messages.clientMessageId, clientMessageId)));
  return r ? toSnapshot(r) : undefined;
}

export async function updateMessage(
  tx: Executor,
  orgId: string,
  id: string,
  set: { body?: string | null; attachments?: Attachment[]; editedAt?: Date; deletedAt?: Date },
) {
  await tx
    .update(messages)
    .set(set)
    .where(and(eq(messages.orgId, orgId), eq(messages.id, id)));
}

/** A page of messages by seq: `dir` 'forward' returns seq > cursor ascending, 'backward' seq < cursor. */
export async function pageMessages(
  db: Executor,
  orgId: string,
  conversationId: string,
  dir: 'forward' | 'backward',
  cursor: number | undefined,
  limit: number,
): Promise<MessageSnapshot[]> {
  const rows = await db
    .select(snapshotColumns)
    .from(messages)
    .leftJoin(users, eq(users.id, messages.senderId))
    .where(
      and(
        eq(messages.orgId, orgId),
        eq(messages.conversationId, conversationId),
        cursor === undefined ? undefined : dir === 'forward' ? gt(messages.seq, cursor) : lt(messages.seq, cursor),
      ),
    )
    .orderBy(dir === 'forward' ? asc(messages.seq) : desc(messages.seq))
    .limit(limit);
  return rows.map(toSnapshot);
}

export async function latestMessages(db: Executor, orgId: string, conversationIds: readonly string[]) {
  if (conversationIds.length === 0) return [];
  const rows = await db
    .selectDistinctOn([messages.conversationId], snapshotColumns)
    .from(messages)
    .leftJoin(users, eq(users.id, messages.senderId))
    .where(and(eq(messages.orgId, orgId), inArray(messages.conversationId, [...conversationIds])))
    .orderBy(messages.conversationId, desc(messages.seq));
  return rows.map(toSnapshot);
}

export async function setLastRead(tx: Executor, orgId: string, conversationId: string, userId: string, seq: number) {
  const rows = await tx
    .update(conversationMembers)
    .set({ lastReadSeq: seq })
    .where(
      and(
        eq(conversationMembers.orgId, orgId),
        eq(conversationMembers.conversationId, conversationId),
        eq(conversationMembers.userId, userId),
        lt(conversationMembers.lastReadSeq, seq),
      ),
    )
    .returning({ userId: conversationMembers.userId });
  return rows.length > 0;
}

/** Messages after the member's read position that others sent and that are not deleted. */
export async function unreadCount(db: Executor, orgId: string, conversationId: string, userId: string, afterSeq: number) {
  const [r] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(messages)
    .where(
      and(
        eq(messages.orgId, orgId),
        eq(messages.conversationId, conversationId),
        gt(messages.seq, afterSeq),
        ne(messages.senderId, userId),
        isNull(messages.deletedAt),
      ),
    );
  return r?.n ?? 0;
}

/** Which of `otherIds` share at least one conversation with `userId` (presence visibility for patients). */
export async function conversationPeers(db: Executor, orgId: string, userId: string, otherIds: readonly string[]): Promise<string[]> {
  if (otherIds.length === 0) return [];
  const rows = await db
    .selectDistinct({ userId: conversationMembers.userId })
    .from(conversationMembers)
    .where(
      and(
        eq(conversationMembers.orgId, orgId),
        inArray(conversationMembers.userId, [...otherIds]),
        sql`${conversationMembers.conversationId} in (select m.conversation_id from ${conversationMembers} m where m.org_id = ${orgId} and m.user_id = ${userId})`,
      ),
    );
  return rows.map((r) => r.userId);
}

/** A message to insert on the send hot path (its seq is the stream position it gets). */
export interface NewMessage {
  id: string;
  orgId: string;
  conversationId: string;
  senderId: string;
  body: string | null;
  clientMessageId: string | null;
  attachments: Attachment[];
  createdAt: Date;
}

/**
 * The send hot path's rows for ledger `appendFusedMany` (one statement for a group of concurrent
 * sends, each message fused with its MessageAdded event). `pre` checks each message in the
 * statement itself, before any position is taken: `member` — the sender belongs to the
 * conversation; `prior_id` — the sender's message with this idempotency key, if any; only a
 * member's message with no prior one is written (`ok`). `row` inserts them at their positions
 * (the seq). A clientMessageId already used by a concurrent send that `pre` could not see yet, or
 * twice in one group, fails the whole statement with a unique violation of
 * `messages_client_key_idx` (no position is kept).
 */
export function sendRows(ms: readonly NewMessage[]): FusedMany {
  const input = JSON.stringify(
    ms.map((m, i) => ({
      i,
      id: m.id,
      org_id: m.orgId,
      conversation_id: m.conversationId,
      sender_id: m.senderId,
      body: m.body,
      client_message_id: m.clientMessageId,
      attachments: m.attachments,
      created_at: m.createdAt,
    })),
  );
  return {
    pre: sql`select q.*, q.member and q.prior_id is null as ok from (
      select x.*,
        exists(select 1 from ${conversationMembers} cm where cm.org_id = x.org_id
          and cm.conversation_id = x.conversation_id and cm.user_id = x.sender_id) as member,
        (select pm.id from ${messages} pm where pm.org_id = x.org_id and pm.sender_id = x.sender_id
          and pm.client_message_id = x.client_message_id) as prior_id
      from jsonb_to_recordset(${input}::jsonb) as x(i int, id uuid, org_id text, conversation_id uuid, sender_id text,
        body text, client_message_id text, attachments jsonb, created_at timestamptz)) q`,
    row: sql`insert into ${messages} (id, org_id, conversation_id, seq, sender_id, body, client_message_id, attachments, created_at)
      select id, org_id, conversation_id, position, sender_id, body, client_message_id, attachments, created_at from numbered`,
  };
}

/** Whether `err` (or its cause: drizzle wraps driver errors) is a unique violation of `constraint`. */
export function isUniqueViolation(err: unknown, constraint: string): boolean {
  for (let e = err, i = 0; e && typeof e === 'object' && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const x = e as { code?: unknown; constraint_name?: unknown; constraint?: unknown; message?: unknown };
    if (x.code === '23505')
      return x.constraint_name === constraint || x.constraint === constraint || String(x.message ?? '').includes(constraint);
  }
  return false;
}
