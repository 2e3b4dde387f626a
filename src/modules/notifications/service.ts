import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db, Executor } from '../../db/client.js';
import type { AppendOf, StreamSpec } from '../../realtime/stream.js';
import type { Commit, EventSink } from '../../realtime/commit.js';
import type { CursorCodec } from '../../shared/cursor.js';
import { eachItem } from '../../shared/bulk.js';
import { badInput, conflict, forbidden, notFound } from '../../shared/errors.js';
import { isUuid, newId } from '../../shared/ids.js';
import { isLocalTime, isTimeZone, quietUntil } from '../../shared/time.js';
import { type PageArgs, forwardConnection, forwardPage, parseInput } from '../../shared/validation.js';
import type { Viewer } from '../../shared/viewer.js';
import type { IdentityService } from '../identity/service.js';
import { type InboxEventPayloads, type NotificationSnapshot, inboxStream, toNotificationRoot } from './events.js';
import * as repo from './repo.js';
import { NOTIFICATION_KINDS, PRIORITIES, type NotificationKind, type Priority, type PreferencesRow } from './tables.js';

/** What any module may put in a user's inbox. */
export interface NewNotification {
  orgId: string;
  userId: string;
  kind: NotificationKind;
  priority?: Priority;
  title: string;
  body?: string | null;
  /** Ids and references only; clients fetch details through the API. */
  data?: Record<string, unknown>;
  /** Idempotency key per user: the same key returns the existing item and appends nothing. */
  clientKey?: string | null;
}

/** Most notifications one `sendNotifications` request may carry. */
export const MAX_BULK = 500;

const notifyInput = z.object({
  userId: z.string().min(1),
  kind: z.enum(NOTIFICATION_KINDS),
  priority: z.enum(PRIORITIES).nullish(),
  title: z.string().trim().min(1).max(200),
  body: z.string().max(4_000).nullish(),
  data: z.record(z.string(), z.unknown()).nullish(),
  clientKey: z.string().min(1).max(128).nullish(),
});
const prefsInput = z.object({
  mutedKinds: z.array(z.enum(NOTIFICATION_KINDS)).max(NOTIFICATION_KINDS.length).nullish(),
  minPriority: z.enum(PRIORITIES).nullish(),
  quietStart: z.string().refine(isLocalTime, 'expected HH:MM (24 h)').nullish(),
  quietEnd: z.string().refine(isLocalTime, 'expected HH:MM (24 h)').nullish(),
  timeZone: z.string().refine(isTimeZone, 'expected an IANA time zone such as Europe/London').nullish(),
});

const rank = (p: Priority) => PRIORITIES.indexOf(p);

/** Whether an item is pushed live now, given the user's preferences (muted items are stored silently). */
export function shouldPush(prefs: PreferencesRow | undefined, kind: NotificationKind, priority: Priority, at: Date): boolean {
  if (!prefs) return true;
  if (prefs.mutedKinds.includes(kind)) return false;
  if (rank(priority) < rank(prefs.minPriority)) return false;
  if (priority !== 'critical' && quietUntil(at, prefs.timeZone, prefs.quietStart, prefs.quietEnd)) return false;
  return true;
}

export function createNotificationsService(deps: {
  db: Db;
  commit: Commit;
  cursors: CursorCodec;
  identity: IdentityService;
  limits: Config['limits'];
}) {
  const { db, commit } = deps;

  /** Appends an inbox event at the next position (the head row lock makes the count consistent). */
  const appendInbox = async <K extends keyof InboxEventPayloads>(
    tx: Executor,
    events: EventSink,
    orgId: string,
    userId: string,
    type: K,
    payload: (unread: number) => InboxEventPayloads[K],
  ) => {
    const position = await inboxStream.nextPosition(tx, userId, orgId);
    const unread = await repo.unreadCount(tx, orgId, userId);
    await inboxStream.insertAt(tx, events, [{ key: userId, orgId, position, type, payload: payload(unread) }]);
  };

  const service = {
    /**
     * Stores a notification inside the caller's transaction and appends its inbox event (pushed
     * items: NotificationAdded; muted or quiet-hours items: UnreadCountChanged only).
     */
    async createInTx(tx: Executor, events: EventSink, n: NewNotification): Promise<{ notification: NotificationSnapshot }> {
      try {
        const [notification] = await service.createManyInTx(tx, events, [n]);
        return { notification: notification as NotificationSnapshot };
      } catch (err) {
        if (!(err instanceof KeyTaken)) throw err;
        const existing = await repo.findByClientKey(tx, n.orgId, n.userId, n.clientKey ?? '');
        if (!existing) throw err;
        throw new AlreadyDelivered(repo.toSnapshot(existing)); // rolls back the position taken
      }
    },

    /**
     * {@link createInTx} for many items at once (the reminder worker's batches): a fixed number of
     * statements whatever the count. Items of one user get consecutive inbox positions in input
     * order, each event carrying the unread count after it. If any clientKey already exists it
     * throws {@link KeyTaken} (roll back; the caller retries item by item).
     */
    async createManyInTx(tx: Executor, events: EventSink, items: NewNotification[]): Promise<NotificationSnapshot[]> {
      if (items.length === 0) return [];
      const now = new Date();
      const byOrg = new Map<string, Set<string>>();
      for (const n of items) byOrg.set(n.orgId, (byOrg.get(n.orgId) ?? new Set()).add(n.userId));
      const prefs = new Map<string, PreferencesRow>();
      for (const [orgId, users] of byOrg)
        for (const [u, p] of await repo.preferencesOf(tx, orgId, [...users])) prefs.set(`${orgId}\0${u}`, p);
      const perUser = new Map<string, { key: string; orgId: string; count: number }>();
      for (const n of items) {
        const e = perUser.get(n.userId) ?? { key: n.userId, orgId: n.orgId, count: 0 };
        e.count++;
        perUser.set(n.userId, e);
      }
      const first = await inboxStream.reserve(tx, [...perUser.values()]);
      const rows = items.map((n) => {
        const priority = n.priority ?? 'normal';
        return {
          id: newId(),
          orgId: n.orgId,
          userId: n.userId,
          kind: n.kind,
          priority,
          title: n.title,
          body: n.body ?? null,
          data: n.data ?? {},
          clientKey: n.clientKey ?? null,
          pushed: shouldPush(prefs.get(`${n.orgId}\0${n.userId}`), n.kind, priority, now),
          createdAt: now,
        };
      });
      const inserted = await repo.insertNotifications(tx, rows);
      if (inserted.length !== rows.length) throw new KeyTaken();
      const unread = new Map<string, number>();
      for (const [orgId, users] of byOrg) for (const [u, n] of await repo.unreadCounts(tx, orgId, [...users])) unread.set(u, n);
      // the final count belongs to a user's last new item; earlier items had one fewer each
      const remaining = new Map<string, number>();
      for (const n of items) remaining.set(n.userId, (remaining.get(n.userId) ?? 0) + 1);
      const next = new Map(first);
      const byId = new Map(inserted.map((r) => [r.id, r]));
      const snapshots = rows.map((r) => repo.toSnapshot(byId.get(r.id) as NonNullable<ReturnType<typeof byId.get>>));
      const appended = rows.map((r, i): AppendOf<string, InboxEventPayloads> & { position: number } => {
        const position = next.get(r.userId) as number;
        next.set(r.userId, position + 1);
        const left = (remaining.get(r.userId) as number) - 1;
        remaining.set(r.userId, left);
        const unreadCount = (unread.get(r.userId) ?? 0) - left;
        const notification = snapshots[i] as NotificationSnapshot;
        return r.pushed
          ? { key: r.userId, orgId: r.orgId, position, type: 'NotificationAdded', payload: { notification, unreadCount } }
          : { key: r.userId, orgId: r.orgId, position, type: 'UnreadCountChanged', payload: { unreadCount } };
      });
      await inboxStream.insertAt(tx, events, appended);
      return snapshots;
    },

    /** Creates one notification in its own transaction; idempotent on clientKey. */
    async create(n: NewNotification): Promise<NotificationSnapshot> {
      try {
        return (await commit((tx, events) => service.createInTx(tx, events, n))).notification;
      } catch (err) {
        if (err instanceof AlreadyDelivered) return err.notification;
        throw err;
      }
    },

    /** Lets a service account (or an admin) notify a user of its organisation. */
    /**
     * Many notifications in one request (an EHR bridge's batch): each item is its own transaction
     * and idempotent on its own `clientKey`, so items succeed or fail independently (partial
     * success) and a retried request returns the same notifications without sending twice. The
     * result lists every item in input order with its notification or its typed error.
     */
    async notifyMany(viewer: Viewer, inputs: readonly unknown[]) {
      if (viewer.role !== 'service' && viewer.role !== 'admin' && viewer.role !== 'system')
        throw forbidden('Only service accounts and admins can send notifications.');
      return eachItem(inputs, MAX_BULK, (input) => service.notify(viewer, input));
    },

    async notify(viewer: Viewer, input: unknown): Promise<NotificationSnapshot> {
      if (viewer.role !== 'service' && viewer.role !== 'admin' && viewer.role !== 'system')
        throw forbidden('Only service accounts and admins can send notifications.');
      const v = parseInput(notifyInput, input);
      const [user] = await deps.identity.usersById(viewer, [v.userId]);
      if (!user) throw notFound('User');
      const n = await service.create({
        orgId: viewer.orgId,
        userId: v.userId,
        kind: v.kind,
        priority: v.priority ?? 'normal',
        title: v.title,
        body: v.body ?? null,
        data: v.data ?? {},
        clientKey: v.clientKey ? `svc:${viewer.userId}:${v.clientKey}` : null,
      });
      // a repeated key returns the first notification, but only for the same content
      const same =
        n.kind === v.kind &&
        n.priority === (v.priority ?? 'normal') &&
        n.title === v.title &&
        n.body === (v.body ?? null) &&
        isDeepStrictEqual(n.data, v.data ?? {});
      if (!same) throw conflict('clientKey was already used for a different notification.');
      return n;
    },

    async list(viewer: Viewer, args: PageArgs & { unreadOnly?: boolean | null }) {
      const scope = `inbox-page:${viewer.userId}`;
      const page = forwardPage(args, deps.limits, deps.cursors, scope, 'The inbox');
      const rows = await repo.page(db, viewer.orgId, viewer.userId, page.limit + 1, Boolean(args.unreadOnly), page.afterId);
      return forwardConnection(rows, page, deps.cursors, scope, repo.toSnapshot);
    },

    unreadCount: (viewer: Viewer) => repo.unreadCount(db, viewer.orgId, viewer.userId),

    async markRead(viewer: Viewer, id: string): Promise<NotificationSnapshot> {
      const existing = isUuid(id) ? await repo.findNotification(db, viewer.orgId, viewer.userId, id) : undefined;
      if (!existing) throw notFound('Notification');
      if (existing.readAt) return repo.toSnapshot(existing);
      await commit(async (tx, events) => {
        const changed = await repo.markRead(tx, viewer.orgId, viewer.userId, [id]);
        if (changed.length)
          await appendInbox(tx, events, viewer.orgId, viewer.userId, 'NotificationRead', (unreadCount) => ({
            notificationIds: changed,
            all: false,
            unreadCount,
          }));
      });
      const row = await repo.findNotification(db, viewer.orgId, viewer.userId, id);
      return repo.toSnapshot(row ?? existing);
    },

    /** Marks every unread item read; returns how many changed. */
    async markAllRead(viewer: Viewer): Promise<number> {
      return commit(async (tx, events) => {
        const changed = await repo.markRead(tx, viewer.orgId, viewer.userId);
        if (changed.length)
          await appendInbox(tx, events, viewer.orgId, viewer.userId, 'NotificationRead', (unreadCount) => ({
            notificationIds: changed.length <= 100 ? changed : [],
            all: true,
            unreadCount,
          }));
        return changed.length;
      });
    },

    /** The stored preferences of many users of one organisation, read with `exec` (users without a row are absent: defaults apply). */
    preferencesOf: (exec: Executor, orgId: string, userIds: string[]) => repo.preferencesOf(exec, orgId, userIds),

    async preferences(viewer: Viewer) {
      return (
        (await repo.getPreferences(db, viewer.orgId, viewer.userId)) ?? {
          userId: viewer.userId,
          orgId: viewer.orgId,
          mutedKinds: [],
          minPriority: 'low' as const,
          quietStart: null,
          quietEnd: null,
          timeZone: 'UTC',
          updatedAt: new Date(0),
        }
      );
    },

    async setPreferences(viewer: Viewer, input: unknown) {
      const v = parseInput(prefsInput, input);
      if ((v.quietStart == null) !== (v.quietEnd == null)) throw badInput('Set both quietStart and quietEnd, or neither.', 'quietStart');
      const current = await service.preferences(viewer);
      return repo.upsertPreferences(db, {
        userId: viewer.userId,
        orgId: viewer.orgId,
        mutedKinds: v.mutedKinds ?? current.mutedKinds,
        minPriority: v.minPriority ?? current.minPriority,
        quietStart: v.quietStart === undefined ? current.quietStart : v.quietStart,
        quietEnd: v.quietEnd === undefined ? current.quietEnd : v.quietEnd,
        timeZone: v.timeZone ?? current.timeZone,
      });
    },

    /** Authorises `notificationEvents`: a user only ever subscribes to their own inbox. */
    async openEvents(viewer: Viewer, after: string | null | undefined): Promise<StreamSpec> {
      return inboxStream.open(viewer.userId, {
        orgId: viewer.orgId,
        after,
        cursors: deps.cursors,
        scope: `${viewer.orgId}:${viewer.userId}`,
        // one user's own inbox: everyone in a group is that user
        shares: ['orgId', 'userId', 'role'],
        toRoot: toNotificationRoot,
      });
    },
  };
  return service;
}

/** Thrown by createManyInTx when some clientKey exists: roll back and go item by item. */
export class KeyTaken extends Error {
  constructor() {
    super('a notification key of the batch exists already');
  }
}

/** Thrown inside createInTx when the idempotency key exists: rolls back the position taken. */
export class AlreadyDelivered extends Error {
  constructor(readonly notification: NotificationSnapshot) {
    super('notification already delivered');
  }
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;
