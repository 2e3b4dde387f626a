import { type EventOf, type StreamEventRoot, defineStream } from '../../realtime/stream.js';
import type { NotificationKind, Priority } from './tables.js';

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

/** The ledger stream of one user's inbox, keyed by user id. */
export const inboxStream = defineStream<string, InboxEventPayloads>({ name: (userId) => `inbox:${userId}` });

export type NotificationEventRoot = StreamEventRoot &
  (
    | { kind: 'NotificationAdded'; notification: NotificationSnapshot; unreadCount: number }
    | { kind: 'NotificationRead'; notificationIds: string[]; all: boolean; unreadCount: number }
    | { kind: 'UnreadCountChanged'; unreadCount: number }
  );

export function toNotificationRoot(ev: EventOf<InboxEventPayloads>, cursor: string): NotificationEventRoot {
  const base = { cursor, at: ev.at };
  switch (ev.type) {
    case 'NotificationAdded':
      return { ...base, kind: ev.type, ...ev.payload };
    case 'NotificationRead':
      return { ...base, kind: ev.type, ...ev.payload };
    case 'UnreadCountChanged':
      return { ...base, kind: ev.type, ...ev.payload };
  }
}
