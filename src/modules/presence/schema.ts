import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import { type StreamOpener, streamResolvers } from '../../graphql/stream-event.js';
import type { PresenceView } from './events.js';

const PresenceStatusEnum = builder.enumType('PresenceStatus', {
  description:
    'Whether a user can be reached. With several devices the user shows the highest of them: IN_CALL > BUSY > ONLINE > AWAY > OFFLINE.',
  values: {
    ONLINE: { value: 'online', description: 'Connected and available (the default of a connected device).' },
    AWAY: { value: 'away', description: 'Connected but idle or stepped away.' },
    BUSY: { value: 'busy', description: 'Connected, does not want to be disturbed.' },
    IN_CALL: { value: 'in_call', description: 'In an audio or video call.' },
    OFFLINE: {
      value: 'offline',
      description: 'No connected device; setting it while connected makes you appear offline (devices then show as 0).',
    },
  } as const,
});

const Presence = builder.objectRef<PresenceView>('Presence').implement({
  description:
    "A user's presence, derived from their connected devices (each graphql-ws connection is one) and the status they set. A device that stops being refreshed (its server crashed) is dropped within PRESENCE_TTL_MS (default 60 s).",
  fields: (t) => ({
    userId: t.exposeID('userId', { description: 'The user.' }),
    status: t.field({
      type: PresenceStatusEnum,
      description: 'Highest status of any connected device; OFFLINE with none.',
      resolve: (p) => p.status,
    }),
    statusText: t.exposeString('statusText', { nullable: true, description: 'Custom status text the user set, if any.' }),
    lastSeenAt: t.field({
      type: 'DateTime',
      nullable: true,
      description:
        'While the user appears present: now. When OFFLINE: when they went offline (last device disconnected, stopped refreshing, or chose OFFLINE). Null if never seen in the last 30 days.',
      resolve: (p) => p.lastSeenAt,
    }),
    devices: t.exposeInt('devices', { description: 'Connected devices that are not set to OFFLINE.' }),
    updatedAt: t.field({
      type: 'DateTime',
      description: 'When status, text or device count last changed (the account creation time if never).',
      resolve: (p) => p.updatedAt,
    }),
    version: t.exposeFloat('version', {
      description:
        "Orders this user's presence changes: every change sent to subscribers has a strictly greater version than the one before it (a whole number, at least the milliseconds of the server clock when it was sent), whichever server sent it. Keep the highest version seen per user and ignore a change whose version is not greater. Queries and the first items of presenceChanged carry the version of the last change sent (0 if none), so a change not yet sent (see PRESENCE_COALESCE_MS) shows with the version before it.",
    }),
  }),
});

const USER_IDS =
  'Users to look at (at most 200, else BAD_USER_INPUT). Users of your organisation only; patients only people they share a conversation with (and themselves). Any other id, unknown or not visible, fails the whole operation with NOT_FOUND.';

builder.queryField('presence', (t) =>
  t.field({
    type: [Presence],
    description: 'Current presence of these users, in the order given (duplicates removed).',
    args: { userIds: t.arg.idList({ description: USER_IDS }) },
    resolve: (_r, a, ctx) => ctx.services.presence.presence(requireViewer(ctx), a.userIds.map(String)),
  }),
);

builder.mutationField('setPresence', (t) =>
  t.field({
    type: Presence,
    description:
      'Sets your status. Sent over a graphql-ws connection, it applies to that device only (e.g. IN_CALL on the phone in the call). Sent over HTTP, it applies to all your connected devices and becomes the status of devices that connect later. With no device connected you stay OFFLINE until one connects. Changes reach subscribers within PRESENCE_COALESCE_MS; rapid changes are sent as one.',
    args: {
      status: t.arg({ type: PresenceStatusEnum, description: 'The status to show.' }),
      statusText: t.arg.string({
        required: false,
        description: 'Custom text (up to 140 characters, no control characters). Omit to keep the current text; null or empty clears it.',
      }),
    },
    resolve: (_r, a, ctx) =>
      ctx.services.presence.setPresence(requireViewer(ctx), { status: a.status, statusText: a.statusText }, ctx.socketId),
  }),
);

const open: StreamOpener = (args, ctx) => ctx.services.presence.openChanges(requireViewer(ctx), (args.userIds as unknown[]).map(String));

builder.subscriptionField('presenceChanged', (t) =>
  t.field({
    type: Presence,
    description:
      'First the current presence of each user (in the order given), then each change. Changes of one user within PRESENCE_COALESCE_MS are sent as one (the final state, only if it differs from the last one sent). Not replayed: resubscribe to get the current state again.',
    args: { userIds: t.arg.idList({ description: USER_IDS }) },
    ...streamResolvers<PresenceView>(open),
  }),
);
