import type { StreamEventRoot } from '../../graphql/stream-event.js';
import type { LedgerEvent } from '../../realtime/ledger.js';
import type { NotificationKind, Priority } from './tables.js';

/** The ledger stream of one user's inbox. */
export const inboxStream = (userId: string) => `inbox:${userId}`;

export interface NotificationSnapshot {
  id: string;
  userId: string;
  kind: NotificationKind;
  priority: Priority;
  title: string;
  body: string | null;
  data: Record<string, unknown>;
  createdAt: string;
  readAt: string | null;
}

/** Every inbox event carries the unread count after it, so a badge is right from any event. */
export interface InboxEventPayloads {
  NotificationAdded: { notification: NotificationSnapshot; unreadCount: number };
  NotificationRead: { notificationIds: string[]; all: boolean; unreadCount: number };
  UnreadCountChanged: { unreadCount: number };
}
export type InboxEventType = keyof InboxEventPayloads;

export type NotificationEventRoot = StreamEventRoot &
  (
    | { kind: 'NotificationAdded'; notification: NotificationSnapshot; unreadCount: number }
    | { kind: 'NotificationRead'; notificationIds: string[]; all: boolean; unreadCount: number }
    | { kind: 'UnreadCountChanged'; unreadCount: number }
  );

export const toNotificationRoot = (ev: LedgerEvent, cursor: string): NotificationEventRoot =>
  ({ kind: ev.type, cursor, at: ev.at, ...ev.payload }) as NotificationEventRoot;
