import { builder } from '../../graphql/builder.js';
import { requireViewer } from '../../graphql/context.js';
import { StreamEvent, type StreamOpener, streamResolvers } from '../../graphql/stream-event.js';
import { User } from '../identity/schema.js';
import type { ConversationEventRoot, MessageEventRoot, MessageSnapshot } from './events.js';
import type { Attachment, ConversationRow } from './tables.js';

const ConversationKind = builder.enumType('ConversationKind', {
  description: 'What a conversation is for.',
  values: {
    DIRECT: { value: 'direct', description: 'Two people.' },
    GROUP: { value: 'group', description: 'Several people.' },
    CARE_TEAM: { value: 'care_team', description: "A patient's care team." },
  } as const,
});

const AttachmentRef = builder.objectRef<Attachment>('Attachment').implement({
  description: 'Metadata of a file attached to a message; the file itself lives at `url`.',
  fields: (t) => ({
    url: t.exposeString('url', { description: 'Where the file can be fetched.' }),
    contentType: t.exposeString('contentType', { description: 'MIME type, e.g. image/png.' }),
    size: t.exposeInt('size', { description: 'Size in bytes.' }),
    name: t.exposeString('name', { nullable: true, description: 'Original file name, if known.' }),
  }),
});

const AttachmentInput = builder.inputType('AttachmentInput', {
  description: 'Metadata of a file to attach (upload the file elsewhere first).',
  fields: (t) => ({
    url: t.string({ description: 'http(s) URL of the file.' }),
    contentType: t.string({ description: 'MIME type.' }),
    size: t.int({ description: 'Size in bytes.' }),
    name: t.string({ required: false, description: 'File name to show.' }),
  }),
});

export const Message = builder.objectRef<MessageSnapshot>('Message').implement({
  description: 'A message in a conversation. Deleted messages keep their place but lose body and attachments.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Message id.' }),
    conversationId: t.exposeID('conversationId', { description: 'The conversation it belongs to.' }),
    sender: t.field({
      type: User,
      description: 'Who sent it.',
      resolve: (m) => ({ id: m.senderId, name: m.senderName, role: m.senderRole }),
    }),
    body: t.exposeString('body', { nullable: true, description: 'Text; null when deleted or attachment-only.' }),
    clientMessageId: t.exposeString('clientMessageId', {
      nullable: true,
      description: 'The idempotency key the sender supplied, if any.',
    }),
    attachments: t.field({ type: [AttachmentRef], description: 'Attached files.', resolve: (m) => m.attachments }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was sent.', resolve: (m) => m.createdAt }),
    editedAt: t.field({ type: 'DateTime', nullable: true, description: 'Last edit, if edited.', resolve: (m) => m.editedAt }),
    deletedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it was deleted, if deleted.', resolve: (m) => m.deletedAt }),
  }),
});

const Member = builder.objectRef<{ id: string; name: string; role: string; lastReadSeq: number }>('ConversationMember').implement({
  description: 'A member of a conversation.',
  fields: (t) => ({
    user: t.field({ type: User, description: 'The member.', resolve: (m) => m }),
  }),
});

export const Conversation = builder.objectRef<ConversationRow>('Conversation').implement({
  description: 'A conversation between members of one organisation. Only members can see it.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Conversation id.' }),
    kind: t.field({ type: ConversationKind, description: 'Direct, group or care team.', resolve: (c) => c.kind }),
    title: t.exposeString('title', { nullable: true, description: 'Title, if one was given.' }),
    createdAt: t.field({ type: 'DateTime', description: 'When it was created.', resolve: (c) => c.createdAt }),
    members: t.field({
      type: [Member],
      description: 'Current members.',
      resolve: (c, _a, ctx) => ctx.services.messaging.members(requireViewer(ctx), c.id),
    }),
    unreadCount: t.int({
      description: "Messages from others after the viewer's last read message (deleted ones excluded).",
      extensions: { viewerDependent: true },
      resolve: (c, _a, ctx) => ctx.services.messaging.unreadCount(requireViewer(ctx), c.id),
    }),
    lastMessage: t.field({
      type: Message,
      nullable: true,
      description: 'The newest message, if any.',
      resolve: (c, _a, ctx) => ctx.services.messaging.lastMessage(requireViewer(ctx), c.id),
    }),
    messages: t.connection(
      {
        type: Message,
        description:
          'History in send order. `first`/`after` pages forward from the oldest; `last`/`before`, or no arguments, page back from the newest. Page size is capped at MAX_PAGE_SIZE (default 100).',
        resolve: (c, args, ctx) => ctx.services.messaging.messages(requireViewer(ctx), c.id, args),
      },
      { name: 'MessageConnection', description: 'A page of messages.' },
      { name: 'MessageEdge', description: 'A message and its cursor.' },
    ),
  }),
});

builder.queryFields((t) => ({
  conversation: t.field({
    type: Conversation,
    nullable: true,
    description: 'A conversation you are a member of; null if it does not exist or you are not a member.',
    args: { id: t.arg.id({ description: 'Conversation id.' }) },
    resolve: (_r, args, ctx) => ctx.services.messaging.getConversation(requireViewer(ctx), String(args.id), false),
  }),
  conversations: t.connection(
    {
      type: Conversation,
      description: 'Conversations you are a member of, newest first. Pages forward only (`first`/`after`); `last`/`before` are refused.',
      resolve: (_r, args, ctx) => ctx.services.messaging.listConversations(requireViewer(ctx), args),
    },
    { name: 'ConversationConnection', description: 'A page of conversations.' },
    { name: 'ConversationEdge', description: 'A conversation and its cursor.' },
  ),
}));

const CreateConversationInput = builder.inputType('CreateConversationInput', {
  description: 'A new conversation. You are always a member.',
  fields: (t) => ({
    kind: t.field({ type: ConversationKind, description: 'DIRECT needs exactly one other member.' }),
    title: t.string({ required: false, description: 'Optional title.' }),
    memberIds: t.idList({ description: 'Other members: users of your organisation.' }),
  }),
});

const SendMessageInput = builder.inputType('SendMessageInput', {
  description: 'A message to send. Repeat with the same clientMessageId to retry safely.',
  fields: (t) => ({
    conversationId: t.id({ description: 'Target conversation (you must be a member).' }),
    body: t.string({ required: false, description: 'Text, up to 10,000 characters.' }),
    clientMessageId: t.string({
      required: false,
      description:
        'Idempotency key chosen by the client: the same key returns the same message; reused with different content it is a CONFLICT.',
    }),
    attachments: t.field({ type: [AttachmentInput], required: false, description: 'Up to 10 attachments.' }),
  }),
});

builder.mutationFields((t) => ({
  createConversation: t.field({
    type: Conversation,
    description: 'Creates a conversation with you and the given members.',
    args: { input: t.arg({ type: CreateConversationInput, description: 'The conversation.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.messaging.createConversation(requireViewer(ctx), input),
  }),
  addConversationMembers: t.field({
    type: Conversation,
    description: 'Adds members (providers, admins or the creator may do this).',
    args: {
      conversationId: t.arg.id({ description: 'Conversation id.' }),
      userIds: t.arg.idList({ description: 'Users to add.' }),
    },
    resolve: (_r, a, ctx) => ctx.services.messaging.addMembers(requireViewer(ctx), String(a.conversationId), a.userIds.map(String)),
  }),
  removeConversationMember: t.field({
    type: Conversation,
    description: 'Removes a member (or yourself). Their live subscriptions end at once with FORBIDDEN.',
    args: {
      conversationId: t.arg.id({ description: 'Conversation id.' }),
      userId: t.arg.id({ description: 'User to remove.' }),
    },
    resolve: (_r, a, ctx) => ctx.services.messaging.removeMember(requireViewer(ctx), String(a.conversationId), String(a.userId)),
  }),
  sendMessage: t.field({
    type: Message,
    description: 'Sends a message; idempotent on clientMessageId.',
    args: { input: t.arg({ type: SendMessageInput, description: 'The message.' }) },
    resolve: (_r, { input }, ctx) => ctx.services.messaging.sendMessage(requireViewer(ctx), input),
  }),
  editMessage: t.field({
    type: Message,
    description: 'Replaces the body of your own message.',
    args: { id: t.arg.id({ description: 'Message id.' }), body: t.arg.string({ description: 'New text.' }) },
    resolve: (_r, a, ctx) => ctx.services.messaging.editMessage(requireViewer(ctx), String(a.id), a.body),
  }),
  deleteMessage: t.field({
    type: Message,
    description: 'Deletes your message (admins: any message): body and attachments are removed, also from replay.',
    args: { id: t.arg.id({ description: 'Message id.' }) },
    resolve: (_r, a, ctx) => ctx.services.messaging.deleteMessage(requireViewer(ctx), String(a.id)),
  }),
  markConversationRead: t.field({
    type: Conversation,
    description: 'Marks everything up to this message as read (never moves backwards) and emits a ReadReceipt.',
    args: {
      conversationId: t.arg.id({ description: 'Conversation id.' }),
      messageId: t.arg.id({ description: 'The newest message you have read.' }),
    },
    resolve: (_r, a, ctx) => ctx.services.messaging.markConversationRead(requireViewer(ctx), String(a.conversationId), String(a.messageId)),
  }),
  setTyping: t.boolean({
    description: 'Shows or hides your typing indicator. Ephemeral (never replayed) and throttled per conversation.',
    args: {
      conversationId: t.arg.id({ description: 'Conversation id.' }),
      typing: t.arg.boolean({ description: 'Whether you are typing.' }),
    },
    resolve: (_r, a, ctx) => ctx.services.messaging.setTyping(requireViewer(ctx), String(a.conversationId), a.typing),
  }),
}));

// ---- events -------------------------------------------------------------------------------

type Root<K extends ConversationEventRoot['kind']> = Extract<ConversationEventRoot, { kind: K }>;

const messageEvent = (name: 'MessageAdded' | 'MessageEdited' | 'MessageDeleted', description: string) =>
  builder.objectRef<MessageEventRoot>(name).implement({
    description,
    interfaces: [StreamEvent],
    isTypeOf: (v) => (v as ConversationEventRoot).kind === name,
    fields: (t) => ({
      message: t.field({ type: Message, description: 'The message as it is after the change.', resolve: (e) => e.message }),
    }),
  });

const MessageAdded = messageEvent('MessageAdded', 'A message was sent.');
const MessageEdited = messageEvent('MessageEdited', 'A message was edited.');
const MessageDeleted = messageEvent('MessageDeleted', 'A message was deleted (body and attachments removed).');

const ReadReceipt = builder.objectRef<Root<'ReadReceipt'>>('ReadReceipt').implement({
  description: 'A member read the conversation up to a message.',
  interfaces: [StreamEvent],
  isTypeOf: (v) => (v as ConversationEventRoot).kind === 'ReadReceipt',
  fields: (t) => ({
    conversationId: t.exposeID('conversationId', { description: 'The conversation.' }),
    userId: t.exposeID('userId', { description: 'Who read.' }),
    messageId: t.exposeID('messageId', { description: 'The newest message they have read.' }),
  }),
});

const MembersChanged = builder.objectRef<Root<'MembersChanged'>>('MembersChanged').implement({
  description: 'Members joined or left. A removed member receives this event, then their subscription ends with FORBIDDEN.',
  interfaces: [StreamEvent],
  isTypeOf: (v) => (v as ConversationEventRoot).kind === 'MembersChanged',
  fields: (t) => ({
    conversationId: t.exposeID('conversationId', { description: 'The conversation.' }),
    addedUserIds: t.exposeIDList('added', { description: 'Users who joined.' }),
    removedUserIds: t.exposeIDList('removed', { description: 'Users who left or were removed.' }),
  }),
});

const TypingIndicator = builder.objectRef<Root<'TypingIndicator'>>('TypingIndicator').implement({
  description: 'Someone started or stopped typing. Ephemeral: no cursor, never replayed.',
  isTypeOf: (v) => (v as ConversationEventRoot).kind === 'TypingIndicator',
  fields: (t) => ({
    conversationId: t.exposeID('conversationId', { description: 'The conversation.' }),
    userId: t.exposeID('userId', { description: 'Who is typing.' }),
    name: t.exposeString('name', { description: 'Their display name.' }),
    typing: t.exposeBoolean('typing', { description: 'True while typing.' }),
    at: t.field({ type: 'DateTime', description: 'When it was signalled.', resolve: (e) => e.at }),
  }),
});

const ConversationEvent = builder.unionType('ConversationEvent', {
  description: 'Anything that happens in a conversation. Durable members implement StreamEvent.',
  types: [MessageAdded, MessageEdited, MessageDeleted, ReadReceipt, MembersChanged, TypingIndicator],
});

const openConversationEvents: StreamOpener = (args, ctx) =>
  ctx.services.messaging.openEvents(requireViewer(ctx), String(args.conversationId), args.after as string | null);

builder.subscriptionField('conversationEvents', (t) =>
  t.field({
    type: ConversationEvent,
    description:
      'Live events of a conversation you belong to. Pass `after` (the last cursor you saw) to first receive what you missed, in order, with no gap or duplicate.',
    args: {
      conversationId: t.arg.id({ description: 'Conversation id.' }),
      after: t.arg.string({ required: false, description: 'Resume after this cursor.' }),
    },
    ...streamResolvers<ConversationEventRoot>(openConversationEvents),
  }),
);
