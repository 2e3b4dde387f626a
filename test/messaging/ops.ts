// Operations and small helpers shared by the messaging, protocol and api tests (not a test file).
import { expect } from 'vitest';
import { type Collector, gql } from '../harness/clients.js';
import type { SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';

export const CREATE = `mutation($kind:ConversationKind!, $m:[ID!]!, $t:String){
  createConversation(input:{kind:$kind, memberIds:$m, title:$t}) { id kind title members { user { id } } } }`;

export const SEND = `mutation($c:ID!, $b:String, $k:String, $a:[AttachmentInput!]){
  sendMessage(input:{conversationId:$c, body:$b, clientMessageId:$k, attachments:$a}) {
    id body clientMessageId attachments { url contentType size name } sender { id } deletedAt editedAt } }`;

/** Every event type with the fields the tests look at. */
export const EVENTS = `subscription($c:ID!, $a:String){ conversationEvents(conversationId:$c, after:$a){
  __typename
  ... on StreamEvent { cursor at }
  ... on MessageAdded { message { id body attachments { url } deletedAt } }
  ... on MessageEdited { message { id body editedAt } }
  ... on MessageDeleted { message { id body attachments { url } deletedAt } }
  ... on ReadReceipt { userId messageId }
  ... on MembersChanged { addedUserIds removedUserIds }
  ... on TypingIndicator { userId name typing }
} }`;

/** The `conversationEvents` payload of each collected item. */
export const events = (sub: Collector) => sub.items.map((i) => i.conversationEvents);
export const typenames = (sub: Collector) => events(sub).map((e) => e.__typename as string);

/** Creates a conversation as `by` and returns its id (fails the test on errors). */
export async function conversation(app: TestApp, by: SeededUser, members: SeededUser[], kind = 'GROUP'): Promise<string> {
  const r = await gql(app, by.token, CREATE, { kind, m: members.map((u) => u.id) });
  expect(r.errors).toBeUndefined();
  return r.data.createConversation.id as string;
}

/** Sends a message as `by` and returns its id (fails the test on errors). */
export async function send(app: TestApp, by: SeededUser, c: string, body: string, key?: string): Promise<string> {
  const r = await gql(app, by.token, SEND, { c, b: body, k: key });
  expect(r.errors).toBeUndefined();
  return r.data.sendMessage.id as string;
}
