import type { StreamEventRoot } from '../../graphql/stream-event.js';
import type { EphemeralEvent } from '../../realtime/hub.js';
import type { LedgerEvent } from '../../realtime/ledger.js';
import type { Attachment } from './tables.js';

/** The ledger stream of one conversation. */
export const conversationStream = (conversationId: string) => `conv:${conversationId}`;

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

export type MessageEventRoot = StreamEventRoot & {
  kind: 'MessageAdded' | 'MessageEdited' | 'MessageDeleted';
  message: MessageSnapshot;
};
export type ConversationEventRoot =
  | MessageEventRoot
  | (StreamEventRoot & { kind: 'ReadReceipt'; conversationId: string; userId: string; messageId: string })
  | (StreamEventRoot & { kind: 'MembersChanged'; conversationId: string; added: string[]; removed: string[] })
  | { kind: 'TypingIndicator'; conversationId: string; userId: string; name: string; typing: boolean; at: string };

export function toConversationRoot(ev: LedgerEvent, cursor: string): ConversationEventRoot {
  const base = { cursor, at: ev.at };
  const conversationId = ev.stream.slice('conv:'.length);
  switch (ev.type as ConversationEventType) {
    case 'MessageAdded':
    case 'MessageEdited':
    case 'MessageDeleted': {
      const p = ev.payload as unknown as ConversationEventPayloads['MessageAdded'];
      return { ...base, kind: ev.type as 'MessageAdded', message: p.message };
    }
    case 'ReadReceipt': {
      const p = ev.payload as unknown as ConversationEventPayloads['ReadReceipt'];
      return { ...base, kind: 'ReadReceipt', conversationId, userId: p.userId, messageId: p.messageId };
    }
    default: {
      const p = ev.payload as unknown as ConversationEventPayloads['MembersChanged'];
      return { ...base, kind: 'MembersChanged', conversationId, added: p.added, removed: p.removed };
    }
  }
}

export function toTypingRoot(ev: EphemeralEvent): ConversationEventRoot | undefined {
  if (ev.type !== 'TypingIndicator') return undefined;
  const p = ev.payload as unknown as TypingPayload;
  return { kind: 'TypingIndicator', conversationId: p.conversationId, userId: p.userId, name: p.name, typing: p.typing, at: ev.at };
}
