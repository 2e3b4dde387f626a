import { builder } from '../../graphql/builder.js';
import { itemResult } from '../../graphql/bulk.js';
import { requireViewer } from '../../graphql/context.js';
import { StreamEvent, type StreamOpener, streamResolvers } from '../../graphql/stream-event.js';
import type { NotificationEventRoot, NotificationSnapshot } from './events.js';
import type { PreferencesRow } from './tables.js';

export const NotificationKindEnum = builder.enumType('NotificationKind', {
  description: 'What a notification is about.',
  values: {
    MESSAGE: { value: 'message', description: 'A new message.' },
    MENTION: { value: 'mention', description: 'You were mentioned.' },
    ALERT: { value: 'alert', description: 'An alert (including escalations).' },
    REMINDER: { value: 'reminder', description: 'A medication, appointment or custom reminder.' },
    MISSED_CALL: { value: 'missed_call', description: 'A call you did not answer.' },
    SYSTEM: { value: 'system', description: 'Anything else from the platform.' },
  } as const,
});

export const PriorityEnum = builder.enumType('Priority', {
  description: 'How urgent a notification is. CRITICAL ignores quiet hours.',
  values: {
    LOW: { value: 'low', description: 'Informational.' },
    NORMAL: { value: 'normal', description: 'The default.' },
    HIGH: { value: 'high', description: 'Needs attention soon.' },
    CRITICAL: { value: 'critical', description: 'Needs attention now; delivered even in quiet hours.' },
  } as const,
});

export const Notification = builder.objectRef<NotificationSnapshot>('Notification').implement({
  description: "An item of a user's inbox.",
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Notification id.' }),
    kind: t.field({ type: NotificationKindEnum, description: 'What it is about.', resolve: (n) => n.kind }),
    priority: t.field({ type: PriorityEnum, description: 'Urgency.', resolve: (n) => n.priority }),
    title: t.exposeString('title', { description: 'Short title.' }),
    body: t.exposeString('body', { nullable: true, description: 'Longer text, if any.' }),
    data: t.field({ type: 'JSON', description: 'References (ids) to what it is about.', resolve: (n) => n.data }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was created.', resolve: (n) => n.createdAt }),
    readAt: t.field({ type: 'DateTime', nullable: true, description: 'When it was read, if read.', resolve: (n) => n.readAt }),
    read: t.boolean({ description: 'Whether it has been read.', resolve: (n) => n.readAt !== null }),
  }),
});

const Preferences = builder.objectRef<PreferencesRow>('NotificationPreferences').implement({
  description: 'How your notifications are delivered. Muted or quiet-hours items are stored (and counted) but not pushed.',
  fields: (t) => ({
    mutedKinds: t.field({
      type: [NotificationKindEnum],
      description: 'Kinds never pushed.',
      resolve: (p) => p.mutedKinds as NotificationSnapshot['kind'][],
    }),
    minPriority: t.field({ type: PriorityEnum, description: 'Lower priorities are not pushed.', resolve: (p) => p.minPriority }),
    quietStart: t.exposeString('quietStart', { nullable: true, description: 'Start of quiet hours, HH:MM local time.' }),
    quietEnd: t.exposeString('quietEnd', { nullable: true, description: 'End of quiet hours, HH:MM local time.' }),
    timeZone: t.exposeString('timeZone', { description: 'IANA time zone of quiet hours.' }),
  }),
});

builder.queryFields((t) => ({
  notifications: t.connection(
    {
      type: Notification,
      description: 'Your inbox, newest first. Pages forward only (`first`/`after`); `last`/`before` are refused.',
      args: { unreadOnly: t.arg.boolean({ required: false, description: 'Only unread items.' }) },
      resolve: (_r, args, ctx) => ctx.services.notifications.list(requireViewer(ctx), args),
    },
    { name: 'NotificationConnection', description: 'A page of notifications.' },
    { name: 'NotificationEdge', description: 'A notification and its cursor.' },
  ),
  unreadNotificationCount: t.int({
    description: 'How many of your notifications are unread.',
    resolve: (_r, _a, ctx) => ctx.services.notifications.unreadCount(requireViewer(ctx)),
  }),
  notificationPreferences: t.field({
    type: Preferences,
    description: 'Your delivery preferences.',
    resolve: (_r, _a, ctx) => ctx.services.notifications.preferences(requireViewer(ctx)),
  }),
}));

const NotifyInput = builder.inputType('SendNotificationInput', {
  description: 'A notification for a user of your organisation (service accounts and admins).',
  fields: (t) => ({
    userId: t.id({ description: 'Recipient.' }),
    kind: t.field({ type: NotificationKindEnum, description: 'What it is about.' }),
    priority: t.field({ type: PriorityEnum, required: false, description: 'Default NORMAL.' }),
    title: t.string({ description: 'Short title (up to 200 characters).' }),
    body: t.string({ required: false, description: 'Longer text.' }),
    data: t.field({ type: 'JSON', required: false, description: 'References (ids), not contents.' }),
    clientKey: t.string({ required: false, description: 'Idempotency key: repeating it returns the same notification.' }),
  }),
});

const BulkResult = itemResult(
  'SendNotificationResult',
  'notification',
  Notification,
  'The notification sent (or sent before, for a repeated key); null when refused.',
);

const PrefsInput = builder.inputType('NotificationPreferencesInput', {
  description: 'Changes to your preferences; omitted fields stay as they are.',
  fields: (t) => ({
    mutedKinds: t.field({ type: [NotificationKindEnum], required: false, description: 'Kinds never pushed.' }),
    minPriority: t.field({ type: PriorityEnum, required: false, description: 'Lowest priority that is pushed.' }),
    quietStart: t.string({ required: false, description: 'HH:MM; null clears quiet hours (with quietEnd).' }),
    quietEnd: t.string({ required: false, description: 'HH:MM.' }),
    timeZone: t.string({ required: false, description: 'IANA time zone, e.g. Europe/London.' }),
  }),
});

builder.mutationFields((t) => ({
  markNotificationRead: t.field({
    type: Notification,
    description: 'Marks one of your notifications read.',
    args: { id: t.arg.id({ description: 'Notification id.' }) },
    resolve: (_r, a, ctx) => ctx.services.notifications.markRead(requireViewer(ctx), String(a.id)),
  }),
  markAllNotificationsRead: t.int({
    description: 'Marks all your notifications read; returns how many changed.',
    resolve: (_r, _a, ctx) => ctx.services.notifications.markAllRead(requireViewer(ctx)),
  }),
  sendNotifications: t.field({
    type: [BulkResult],
    description:
      'Puts many notifications in users’ inboxes in one request (service accounts and admins; up to 500). Each item is sent on its own and is idempotent on its own `clientKey`: some items may fail (their `error` says why, typed like `extensions.code`) while the others are sent. Retrying the whole request with the same keys sends nothing twice.',
    args: { inputs: t.arg({ type: [NotifyInput], description: 'The notifications.' }) },
    resolve: (_r, { inputs }, ctx) => ctx.services.notifications.notifyMany(requireViewer(ctx), inputs),
  }),
  sendNotification: t.field({
    type: Notification,
    description: 'Puts a notification in a user’s inbox (service accounts and admins of the same organisation).',
    args: { input: t.arg({ type: NotifyInput, description: 'The notification.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.notifications.notify(requireViewer(ctx), input),
  }),
  setNotificationPreferences: t.field({
    type: Preferences,
    description: 'Updates your delivery preferences.',
    args: { input: t.arg({ type: PrefsInput, description: 'What to change.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.notifications.setPreferences(requireViewer(ctx), input),
  }),
}));

type R<K extends NotificationEventRoot['kind']> = Extract<NotificationEventRoot, { kind: K }>;
const is = (k: string) => (v: unknown) => (v as NotificationEventRoot).kind === k;

const NotificationAdded = builder.objectRef<R<'NotificationAdded'>>('NotificationAdded').implement({
  description: 'A notification arrived.',
  interfaces: [StreamEvent],
  isTypeOf: is('NotificationAdded'),
  fields: (t) => ({
    notification: t.field({ type: Notification, description: 'The new item.', resolve: (e) => e.notification }),
    unreadCount: t.exposeInt('unreadCount', { description: 'Unread items after this event.' }),
  }),
});
const NotificationRead = builder.objectRef<R<'NotificationRead'>>('NotificationRead').implement({
  description: 'Notifications were marked read.',
  interfaces: [StreamEvent],
  isTypeOf: is('NotificationRead'),
  fields: (t) => ({
    notificationIds: t.exposeIDList('notificationIds', { description: 'Items marked read (empty when `all` covered more than 100).' }),
    all: t.exposeBoolean('all', { description: 'True when everything was marked read.' }),
    unreadCount: t.exposeInt('unreadCount', { description: 'Unread items after this event.' }),
  }),
});
const UnreadCountChanged = builder.objectRef<R<'UnreadCountChanged'>>('UnreadCountChanged').implement({
  description: 'The unread count changed without a pushed item (a muted or quiet-hours item was stored).',
  interfaces: [StreamEvent],
  isTypeOf: is('UnreadCountChanged'),
  fields: (t) => ({ unreadCount: t.exposeInt('unreadCount', { description: 'Unread items after this event.' }) }),
});

const NotificationEvent = builder.unionType('NotificationEvent', {
  description: 'Inbox events. Every one carries the unread count after it.',
  types: [NotificationAdded, NotificationRead, UnreadCountChanged],
});

const open: StreamOpener = (args, ctx) => ctx.services.notifications.openEvents(requireViewer(ctx), args.after as string | null);

builder.subscriptionField('notificationEvents', (t) =>
  t.field({
    type: NotificationEvent,
    description: 'Your inbox, live. Pass `after` to first receive what you missed.',
    args: { after: t.arg.string({ required: false, description: 'Resume after this cursor.' }) },
    ...streamResolvers<NotificationEventRoot>(open),
  }),
);
