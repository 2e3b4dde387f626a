import { z } from 'zod';
import type { StreamSpec } from '../../realtime/stream.js';
import { badInput, conflict, forbidden, notFound } from '../../shared/errors.js';
import { groupCommit } from '../../shared/group-commit.js';
import { isUuid, newId } from '../../shared/ids.js';
import { type PageArgs, clampPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import { type MessageSnapshot, conversationStream, toConversationRoot, toTypingRoot } from './events.js';
import { type MessagingDeps, createConversations } from './conversations.js';
import * as repo from './repo.js';
import type { ConversationRow } from './tables.js';

const attachment = z.object({
  url: z
    .string()
    .url()
    .max(2048)
    .regex(/^https?:\/\//, 'must be an http(s) URL'),
  contentType: z.string().min(1).max(255),
  size: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31),
  name: z
    .string()
    .max(255)
    .nullish()
    .transform((v) => v ?? null),
});
const sendInput = z
  .object({
    conversationId: z.string(),
    body: z.string().max(10_000).nullish(),
    clientMessageId: z.string().min(1).max(128).nullish(),
    attachments: z.array(attachment).max(10).nullish(),
  })
  .refine((v) => (v.body?.trim().length ?? 0) > 0 || (v.attachments?.length ?? 0) > 0, {
    message: 'a message needs a non-empty body or at least one attachment',
    path: ['body'],
  });
const bodyInput = z.string().trim().min(1, 'body must not be empty').max(10_000);

/** Messaging use cases; each authorises first, then writes and appends events in one transaction. */
export function createMessagingService(deps: MessagingDeps) {
  const { db, publisher, commit } = deps;
  const conversations = createConversations(deps);
  const { appendTo, requireMember } = conversations;
  // the subscriptions of a reconnect storm check their membership together: one statement for
  // every check asked while the previous ones ran (the answer is never older than the request)
  const isMember = groupCommit((qs: repo.MemberQuery[]) => repo.areMembers(db, qs), { max: 500, parallel: 2 });

  const requireOwnMessage = async (viewer: Viewer, id: string, allowAdmin: boolean) => {
    const msg = isUuid(id) ? await repo.findMessage(db, viewer.orgId, id) : undefined;
    if (!msg) throw notFound('Message');
    await requireMember(viewer, msg.conversationId).catch(() => {
      throw notFound('Message');
    });
    if (msg.senderId !== viewer.userId && !(allowAdmin && viewer.role === 'admin')) {
      throw forbidden('Only the sender can change this message.');
    }
    return msg;
  };

  /**
   * Group commit of sends (src/shared/group-commit.ts): the sends that arrive while a statement
   * runs share the next one, so under load N messages cost one round trip and one commit; a lone
   * send goes at once. A failing group is retried message by message.
   */
  const sendGroup = groupCommit<{ row: repo.NewMessage; message: MessageSnapshot }, { seq: number } | { member: boolean }>(
    (items) =>
      commit.single(async (db, events) => {
        const done = await conversationStream.appendFusedMany(
          db,
          events,
          items.map(({ row, message }) => ({
            key: row.conversationId,
            orgId: row.orgId,
            type: 'MessageAdded' as const,
            payload: { message },
            subject: row.id,
            at: row.createdAt,
          })),
          { domain: repo.sendRows(items.map((it) => it.row)), positionAt: ['message', 'seq'] },
        );
        return done.map((d) => (d.position !== undefined ? { seq: d.position } : { member: Boolean(d.pre.member) }));
      }),
    { max: 64, parallel: 2 },
  );

  const sameMessage = (m: MessageSnapshot, conversationId: string, body: string | null, attachments: unknown[]) =>
    m.conversationId === conversationId && (m.body ?? null) === body && JSON.stringify(m.attachments) === JSON.stringify(attachments);

  return {
    ...conversations.api,

    async sendMessage(viewer: Viewer, input: unknown): Promise<MessageSnapshot> {
      const v = parseInput(sendInput, input);
      if (!isUuid(v.conversationId)) throw notFound('Conversation');
      const body = v.body?.trim() ? v.body : null;
      const attachments = v.attachments ?? [];
      const key = v.clientMessageId ?? null;
      const replayOf = (m: MessageSnapshot) => {
        if (!sameMessage(m, v.conversationId, body, attachments))
          throw conflict('clientMessageId was already used for a different message.');
        return m;
      };
      const priorByKey = async () => (key ? repo.findMessageByClientKey(db, viewer.orgId, viewer.userId, key) : undefined);
      const id = newId();
      const createdAt = new Date();
      const message: MessageSnapshot = {
        id,
        conversationId: v.conversationId,
        seq: 0,
        senderId: viewer.userId,
        senderName: viewer.name,
        senderRole: viewer.role,
        body,
        clientMessageId: key,
        attachments,
        createdAt: createdAt.toISOString(),
        editedAt: null,
        deletedAt: null,
      };
      // hot path: concurrent sends go together in ONE statement, its own transaction (membership
      // and key checks, positions, rows, events), published after it commits
      const row = {
        id,
        orgId: viewer.orgId,
        conversationId: v.conversationId,
        senderId: viewer.userId,
        body,
        clientMessageId: key,
        attachments,
        createdAt,
      };
      const outcome = await sendGroup({ row, message }).catch((err) => {
        // a concurrent send with the same key committed first (its statement took the position)
        if (repo.isUniqueViolation(err, 'messages_client_key_idx')) return undefined;
        throw err;
      });
      if (outcome && 'seq' in outcome) return { ...message, seq: outcome.seq };
      if (outcome && !outcome.member) throw notFound('Conversation');
      const prior = await priorByKey(); // the key was used before
      if (!prior) throw new Error('messaging: idempotency key reported in use but no message found');
      return replayOf(prior);
    },

    async editMessage(viewer: Viewer, id: string, body: string): Promise<MessageSnapshot> {
      const text = parseInput(bodyInput, body, 'body');
      const msg = await requireOwnMessage(viewer, id, false);
      if (msg.deletedAt) throw badInput('A deleted message cannot be edited.', 'id');
      if (msg.body === text) return msg;
      const editedAt = new Date();
      const message = { ...msg, body: text, editedAt: editedAt.toISOString() };
      return commit(async (tx, events) => {
        await repo.updateMessage(tx, viewer.orgId, msg.id, { body: text, editedAt });
        await appendTo(tx, events, viewer, msg.conversationId, 'MessageEdited', { message }, msg.id);
        return message;
      });
    },

    async deleteMessage(viewer: Viewer, id: string): Promise<MessageSnapshot> {
      const msg = await requireOwnMessage(viewer, id, true);
      if (msg.deletedAt) return msg;
      const deletedAt = new Date();
      const message = { ...msg, body: null, attachments: [], deletedAt: deletedAt.toISOString() };
      return commit(async (tx, events) => {
        await repo.updateMessage(tx, viewer.orgId, msg.id, { body: null, attachments: [], deletedAt });
        // the body must not come back through replay either
        await conversationStream.redact(tx, msg.conversationId, viewer.orgId, msg.id, ['message', 'body'], null);
        await conversationStream.redact(tx, msg.conversationId, viewer.orgId, msg.id, ['message', 'attachments'], []);
        await appendTo(tx, events, viewer, msg.conversationId, 'MessageDeleted', { message }, msg.id);
        return message;
      });
    },

    async markConversationRead(viewer: Viewer, conversationId: string, messageId: string): Promise<ConversationRow> {
      await requireMember(viewer, conversationId);
      const msg = isUuid(messageId) ? await repo.findMessage(db, viewer.orgId, messageId) : undefined;
      if (!msg || msg.conversationId !== conversationId) throw notFound('Message');
      await commit(async (tx, events) => {
        if (await repo.setLastRead(tx, viewer.orgId, conversationId, viewer.userId, msg.seq))
          await appendTo(tx, events, viewer, conversationId, 'ReadReceipt', { userId: viewer.userId, messageId, seq: msg.seq });
      });
      return conversations.api.getConversation(viewer, conversationId, true);
    },

    /** Ephemeral and throttled: repeated `typing: true` within the throttle window is not re-sent. */
    async setTyping(viewer: Viewer, conversationId: string, typing: boolean): Promise<boolean> {
      await requireMember(viewer, conversationId);
      const key = `${deps.keyPrefix}:typing:${conversationId}:${viewer.userId}`;
      if (typing && deps.typingThrottleMs > 0) {
        const first = await deps.redis.set(key, '1', 'PX', deps.typingThrottleMs, 'NX');
        if (first !== 'OK') return true;
      } else await deps.redis.del(key);
      await conversationStream.publish(publisher, conversationId, viewer.orgId, 'TypingIndicator', {
        conversationId,
        userId: viewer.userId,
        name: viewer.name,
        typing,
      });
      return true;
    },

    /** History: `first/after` pages forward from the start; `last/before` (and no arguments) from the newest. */
    async messages(viewer: Viewer, conversationId: string, args: PageArgs) {
      await requireMember(viewer, conversationId);
      const scope = `msgs:${conversationId}`;
      const { limit, backward } = clampPage(args, deps.limits);
      const cursor = args.after
        ? deps.cursors.decodeNumber(scope, args.after)
        : args.before
          ? deps.cursors.decodeNumber(scope, args.before)
          : undefined;
      const rows = await repo.pageMessages(db, viewer.orgId, conversationId, backward ? 'backward' : 'forward', cursor, limit + 1);
      const more = rows.length > limit;
      const page = rows.slice(0, limit);
      if (backward) page.reverse();
      const edges = page.map((m) => ({ node: m, cursor: deps.cursors.encode(scope, m.seq) }));
      return {
        edges,
        pageInfo: {
          hasNextPage: backward ? Boolean(args.before) : more,
          hasPreviousPage: backward ? more : Boolean(args.after),
          startCursor: edges[0]?.cursor ?? null,
          endCursor: edges.at(-1)?.cursor ?? null,
        },
      };
    },

    async lastMessage(viewer: Viewer, conversationId: string): Promise<MessageSnapshot | null> {
      const [m] = await repo.latestMessages(db, viewer.orgId, [conversationId]);
      return m ?? null;
    },

    /** Authorises a `conversationEvents` subscription and describes its stream. */
    async openEvents(viewer: Viewer, conversationId: string, after: string | null | undefined): Promise<StreamSpec> {
      if (!isUuid(conversationId) || !(await isMember({ orgId: viewer.orgId, conversationId, userId: viewer.userId })))
        throw notFound('Conversation');
      return conversationStream.open(conversationId, {
        orgId: viewer.orgId,
        after,
        cursors: deps.cursors,
        scope: `${viewer.orgId}:${viewer.role}`,
        shares: ['orgId', 'role'],
        revokes: (ev) => (ev.type === 'MembersChanged' ? ev.payload.removed : undefined),
        toRoot: toConversationRoot,
        toRootEphemeral: toTypingRoot,
      });
    },
  };
}

export type MessagingService = ReturnType<typeof createMessagingService>;
