import { type EphemeralOf, type EventOf, type StreamEventRoot, defineStream } from '../../realtime/stream.js';
import type { Attachment } from './tables.js';

/** A message as events and queries carry it (sender name and role denormalised). */
export interface MessageSnapshot {
  id: string;
  conversationId: string;
  seq: number;
  senderId: string;
  senderName: string;
  senderRole: string;
  body: string | null;
  clientMessageId: string | null;
  attachments: Attachment[];
  createdAt: string;
  editedAt: string | null;
  deletedAt: string | null;
}

/** Ledger event types of a conversation stream and their payloads. */
export interface ConversationEventPayloads {
  MessageAdded: { message: MessageSnapshot };
  MessageEdited: { message: MessageSnapshot };
  MessageDeleted: { message: MessageSnapshot };
  ReadReceipt: { userId: string; messageId: string; seq: number };
  MembersChanged: { conversationId: string; added: string[]; removed: string[]; by: string };
}
export type ConversationEventType = keyof ConversationEventPayloads;

/** Ephemeral (never stored) typing indicator. */
export interface TypingPayload {
  conversationId: string;
  userId: string;
  name: string;
  typing: boolean;
}

/** Ephemeral event types of a conversation stream. */
export interface ConversationEphemeralPayloads {
  TypingIndicator: TypingPayload;
}

/** The ledger stream of one conversation (`conv:<id>`), keyed by conversation id. */
export const conversationStream = defineStream<string, ConversationEventPayloads, ConversationEphemeralPayloads>({
  name: (conversationId) => `conv:${conversationId}`,
});

export type MessageEventRoot = StreamEventRoot & {
  kind: 'MessageAdded' | 'MessageEdited' | 'MessageDeleted';
  message: MessageSnapshot;
};
export type ConversationEventRoot =
  | MessageEventRoot
  | (StreamEventRoot & { kind: 'ReadReceipt'; conversationId: string; userId: string; messageId: string })
  | (StreamEventRoot & { kind: 'MembersChanged'; conversationId: string; added: string[]; removed: string[] })
  | { kind: 'TypingIndicator'; conversationId: string; userId: string; name: string; typing: boolean; at: string };

export function toConversationRoot(ev: EventOf<ConversationEventPayloads>, cursor: string): ConversationEventRoot {
  const base = { cursor, at: ev.at };
  const conversationId = ev.stream.slice('conv:'.length);
  switch (ev.type) {
    case 'MessageAdded':
    case 'MessageEdited':
    case 'MessageDeleted':
      return { ...base, kind: ev.type, message: ev.payload.message };
    case 'ReadReceipt':
      return { ...base, kind: 'ReadReceipt', conversationId, userId: ev.payload.userId, messageId: ev.payload.messageId };
    case 'MembersChanged':
      return { ...base, kind: 'MembersChanged', conversationId, added: ev.payload.added, removed: ev.payload.removed };
  }
}

export function toTypingRoot(ev: EphemeralOf<ConversationEphemeralPayloads>): ConversationEventRoot {
  const p = ev.payload;
  return { kind: 'TypingIndicator', conversationId: p.conversationId, userId: p.userId, name: p.name, typing: p.typing, at: ev.at };
}
