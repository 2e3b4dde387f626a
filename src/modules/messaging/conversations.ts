import type { RedisClient } from '../../shared/redis-client.js';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import type { Commit } from '../../realtime/commit.js';
import type { Publisher } from '../../realtime/hub.js';
import type { CursorCodec } from '../../shared/cursor.js';
import type { IdentityService } from '../identity/service.js';
import type { Executor } from '../../db/client.js';
import type { EventSink } from '../../realtime/commit.js';
import { badInput, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import { type PageArgs, forwardConnection, forwardPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import { type ConversationEventPayloads, conversationStream } from './events.js';
import * as repo from './repo.js';
import type { ConversationRow } from './tables.js';

const createInput = z.object({
  kind: z.enum(['direct', 'group', 'care_team']),
  title: z.string().trim().min(1).max(200).nullish(),
  memberIds: z.array(z.string().min(1).max(200)).min(1).max(200),
});
type Member = Awaited<ReturnType<typeof repo.findMembership>>;

/**
 * Runs inside the transaction that removes members from a conversation (another module's rows
 * that depend on membership change with it); may return work to do after commit.
 */
export type MembersRemovedHook = (
  tx: Executor,
  events: EventSink,
  removal: { orgId: string; conversationId: string; userIds: readonly string[] },
) => Promise<(() => Promise<void>) | undefined>;

/** What the messaging service needs (conversations and messages alike). */
export interface MessagingDeps {
  db: Db;
  /** Publishes ephemeral events (the hub on an API instance). */
  publisher: Publisher;
  /** Transaction + publish after commit (realtime/commit.ts). */
  commit: Commit;
  redis: RedisClient;
  cursors: CursorCodec;
  identity: IdentityService;
  limits: Config['limits'];
  keyPrefix: string;
  typingThrottleMs: number;
}

/**
 * Conversations and their members: create, add and remove members, list, read. Each authorises
 * first; membership changes append `MembersChanged` (which ends removed members' streams).
 */
export function createConversations(deps: MessagingDeps) {
  const { db, commit } = deps;
  const removalHooks: MembersRemovedHook[] = [];

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

  const canManageMembers = (viewer: Viewer, conv: ConversationRow, isMember: boolean) =>
    viewer.role === 'admin' || (isMember && (viewer.role === 'provider' || conv.createdBy === viewer.userId));

  const api = {
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
      const after: Array<() => Promise<void>> = [];
      await commit(async (tx, events) => {
        if (!(await repo.deleteMember(tx, viewer.orgId, conv.id, userId))) return;
        await appendTo(tx, events, viewer, conv.id, 'MembersChanged', {
          conversationId: conv.id,
          added: [],
          removed: [userId],
          by: viewer.userId,
        });
        for (const hook of removalHooks) {
          const then = await hook(tx, events, { orgId: viewer.orgId, conversationId: conv.id, userIds: [userId] });
          if (then) after.push(then);
        }
      });
      for (const then of after) await then().catch(() => {});
      return conv;
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

    members: (viewer: Viewer, conversationId: string) => repo.listMembers(db, viewer.orgId, conversationId),

    async unreadCount(viewer: Viewer, conversationId: string): Promise<number> {
      const m = await repo.findMembership(db, viewer.orgId, conversationId, viewer.userId);
      return m ? repo.unreadCount(db, viewer.orgId, conversationId, viewer.userId, m.lastReadSeq) : 0;
    },

    /** Registers work that must happen in the same transaction as a member's removal (e.g. leaving live calls). */
    onMembersRemoved(hook: MembersRemovedHook): void {
      removalHooks.push(hook);
    },

    /** Which of `userIds` share at least one conversation with the viewer (the viewer's own id excluded). */
    async sharesConversationWith(viewer: Viewer, userIds: readonly string[]): Promise<Set<string>> {
      const others = [...new Set(userIds)].filter((id) => id !== viewer.userId);
      return new Set(await repo.conversationPeers(db, viewer.orgId, viewer.userId, others));
    },
  };
  return { api, appendTo, requireMember };
}
