import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db, Executor } from '../../db/client.js';
import type { Commit } from '../../realtime/commit.js';
import type { Publisher } from '../../realtime/hub.js';
import type { EventSink } from '../../realtime/commit.js';
import type { StreamSpec } from '../../realtime/stream.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { badInput, conflict, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import { type PageArgs, clampPage, forwardConnection, forwardPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import { type ConversationEventPayloads, type MessageSnapshot, conversationStream, toConversationRoot, toTypingRoot } from './events.js';
import * as repo from './repo.js';
import type { ConversationRow } from './tables.js';

export interface MessagingDeps {
  db: Db;
  /** Publishes ephemeral events (the hub on an API instance). */
  publisher: Publisher;
  /** Transaction + publish after commit (realtime/commit.ts). */
  commit: Commit;
  redis: Redis;
  cursors: CursorCodec;
  identity: IdentityService;
  limits: Config['limits'];
  keyPrefix: string;
  typingThrottleMs: number;
}

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
const createInput = z.object({
  kind: z.enum(['direct', 'group', 'care_team']),
  title: z.string().trim().min(1).max(200).nullish(),
  memberIds: z.array(z.string().min(1).max(200)).min(1).max(200),
});
const bodyInput = z.string().trim().min(1, 'body must not be empty').max(10_000);

type Member = Awaited<ReturnType<typeof repo.findMembership>>;

/** Messaging use cases; each authorises first, then writes and appends events in one transaction. */
export function createMessagingService(deps: MessagingDeps) {
  const { db, publisher, commit } = deps;

  const appendTo = <K extends keyof ConversationEventPayloads>(
    tx: Executor,
    events: EventSink,
    viewer: Viewer,
    conversationId: string,
    type: K,
    payload: ConversationEventPayloads[K],
    subject?: string,
  ) => conversationStream.append(tx, events, { key: conversationId, orgId: viewer.orgId, type, payload, subject });

  /** The viewer's membership, or NOT_FOUND (missing, foreign and not-a-member look the same). */
  const requireMember = async (viewer: Viewer, conversationId: string): Promise<NonNullable<Member>> => {
    if (!isUuid(conversationId)) throw notFound('Conversation');
    const m = await repo.findMembership(db, viewer.orgId, conversationId, viewer.userId);
    if (!m) throw notFound('Conversation');
    return m;
  };

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

  const sameMessage = (m: MessageSnapshot, conversationId: string, body: string | null, attachments: unknown[]) =>
    m.conversationId === conversationId && (m.body ?? null) === body && JSON.stringify(m.attachments) === JSON.stringify(attachments);

  const canManageMembers = (viewer: Viewer, conv: ConversationRow, isMember: boolean) =>
    viewer.role === 'admin' || (isMember && (viewer.role === 'provider' || conv.createdBy === viewer.userId));

  return {
    async createConversation(viewer: Viewer, input: unknown): Promise<ConversationRow> {
      if (viewer.role === 'service' || viewer.role === 'system') throw forbidden('Service accounts cannot create conversations.');
      const v = parseInput(createInput, input);
      const memberIds = [...new Set([viewer.userId, ...v.memberIds])];
      if (v.kind === 'direct' && memberIds.length !== 2) throw badInput('A direct conversation has exactly one other member.', 'memberIds');
      const found = await deps.identity.usersById(viewer, memberIds);
      if (found.length !== memberIds.length) throw badInput('Every member must be a user of your organisation.', 'memberIds');
      if (found.some((u) => u.role === 'service')) throw badInput('Service accounts cannot be conversation members.', 'memberIds');
      return commit(async (tx, events) => {
        const conv = await repo.insertConversation(tx, {
          id: newId(),
          orgId: viewer.orgId,
          kind: v.kind,
          title: v.title ?? null,
          createdBy: viewer.userId,
        });
        await repo.insertMembers(tx, viewer.orgId, conv.id, memberIds);
        await appendTo(tx, events, viewer, conv.id, 'MembersChanged', {
          conversationId: conv.id,
          added: memberIds,
          removed: [],
          by: viewer.userId,
        });
        return conv;
      });
    },

    async addMembers(viewer: Viewer, conversationId: string, userIds: string[]): Promise<ConversationRow> {
      const conv = await this.getConversation(viewer, conversationId, true);
      if (!canManageMembers(viewer, conv, true)) throw forbidden('Only providers, admins or the creator can add members.');
      const ids = [...new Set(userIds)];
      if (ids.length === 0 || ids.length > 200) throw badInput('Pass between 1 and 200 user ids.', 'userIds');
      const found = await deps.identity.usersById(viewer, ids);
      if (found.length !== ids.length || found.some((u) => u.role === 'service'))
        throw badInput('Every member must be a (non-service) user of your organisation.', 'userIds');
      if (conv.kind === 'direct') throw badInput('Members of a direct conversation cannot change.', 'conversationId');
      return commit(async (tx, events) => {
        const added = await repo.insertMembers(tx, viewer.orgId, conv.id, ids);
        if (added.length > 0)
          await appendTo(tx, events, viewer, conv.id, 'MembersChanged', { conversationId: conv.id, added, removed: [], by: viewer.userId });
        return conv;
      });
    },

    async removeMember(viewer: Viewer, conversationId: string, userId: string): Promise<ConversationRow> {
      const conv = await this.getConversation(viewer, conversationId, true);
      const self = userId === viewer.userId;
      if (!self && !canManageMembers(viewer, conv, true)) throw forbidden('Only providers, admins or the creator can remove members.');
      return commit(async (tx, events) => {
        if (await repo.deleteMember(tx, viewer.orgId, conv.id, userId))
          await appendTo(tx, events, viewer, conv.id, 'MembersChanged', {
            conversationId: conv.id,
            added: [],
            removed: [userId],
            by: viewer.userId,
          });
        return conv;
      });
    },

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
      // hot path: 1 round trip to check membership and the key, then BEGIN, one statement, COMMIT
      const check = await repo.sendPrecheck(db, viewer.orgId, v.conversationId, viewer.userId, key);
      if (!check.member) throw notFound('Conversation');
      if (check.priorId) {
        const prior = await priorByKey();
        if (prior) return replayOf(prior);
      }
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
      return commit(async (tx, events) => {
        const row = repo.messageRow({
          id,
          orgId: viewer.orgId,
          conversationId: v.conversationId,
          senderId: viewer.userId,
          body,
          clientMessageId: key,
          attachments,
          createdAt,
        });
        const seq = await conversationStream.appendFused(
          tx,
          events,
          { key: v.conversationId, orgId: viewer.orgId, type: 'MessageAdded', payload: { message }, subject: id },
          { row, at: createdAt, positionAt: ['message', 'seq'] },
        );
        if (seq === undefined) throw new DuplicateKey(); // rolls back the position too
        return { ...message, seq };
      }).catch(async (err) => {
        if (!(err instanceof DuplicateKey)) throw err;
        const prior = await priorByKey();
        if (!prior) throw err;
        return replayOf(prior);
      });
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
      return this.getConversation(viewer, conversationId, true);
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

    /** The conversation if the viewer is a member; otherwise null (or NOT_FOUND when `required`). */
    async getConversation<R extends boolean>(
      viewer: Viewer,
      id: string,
      required: R,
    ): Promise<R extends true ? ConversationRow : ConversationRow | null> {
      const conv = isUuid(id) ? await repo.findConversation(db, viewer.orgId, id) : undefined;
      const member = conv ? await repo.findMembership(db, viewer.orgId, id, viewer.userId) : undefined;
      if (conv && member) return conv;
      if (required) throw notFound('Conversation');
      return null as R extends true ? ConversationRow : ConversationRow | null;
    },

    async listConversations(viewer: Viewer, args: PageArgs) {
      const scope = `convs:${viewer.userId}`;
      const page = forwardPage(args, deps.limits, deps.cursors, scope, 'conversations');
      const rows = await repo.listConversationsOf(db, viewer.orgId, viewer.userId, page.limit + 1, page.afterId);
      return forwardConnection(rows, page, deps.cursors, scope, (c) => c);
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

    members: (viewer: Viewer, conversationId: string) => repo.listMembers(db, viewer.orgId, conversationId),

    async unreadCount(viewer: Viewer, conversationId: string): Promise<number> {
      const m = await repo.findMembership(db, viewer.orgId, conversationId, viewer.userId);
      return m ? repo.unreadCount(db, viewer.orgId, conversationId, viewer.userId, m.lastReadSeq) : 0;
    },

    async lastMessage(viewer: Viewer, conversationId: string): Promise<MessageSnapshot | null> {
      const [m] = await repo.latestMessages(db, viewer.orgId, [conversationId]);
      return m ?? null;
    },

    /** Which of `userIds` share at least one conversation with the viewer (the viewer's own id excluded). */
    async sharesConversationWith(viewer: Viewer, userIds: readonly string[]): Promise<Set<string>> {
      const others = [...new Set(userIds)].filter((id) => id !== viewer.userId);
      return new Set(await repo.conversationPeers(db, viewer.orgId, viewer.userId, others));
    },

    /** Authorises a `conversationEvents` subscription and describes its stream. */
    async openEvents(viewer: Viewer, conversationId: string, after: string | null | undefined): Promise<StreamSpec> {
      await requireMember(viewer, conversationId);
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

class DuplicateKey extends Error {}

export type MessagingService = ReturnType<typeof createMessagingService>;
