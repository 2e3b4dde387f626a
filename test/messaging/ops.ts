// Operations and small helpers shared by the messaging, protocol and api tests (not a test file).
import type { Client } from 'graphql-ws';
import { expect } from 'vitest';
import { type Collector, collect, gql, sleep, wsClient } from '../harness/clients.js';
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

/** Polls `cond` every 20 ms until it holds (throws after `ms`). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 5_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Subscribes with the stock client and resolves once the instance has the subscription live
 * (its Redis channel joined), so events sent afterwards must arrive. Call {@link settled} between
 * tests so the count starts from a quiet instance.
 */
export async function live(app: TestApp, client: Client, query: string, variables: Record<string, unknown>): Promise<Collector> {
  const before = app.container.fanout.stats().subscriptions;
  const sub = collect(client, query, variables);
  await until(() => sub.completed || app.container.fanout.stats().subscriptions > before, 5_000, 'the subscription to be live');
  return sub;
}

const open = new Set<Client>();
/** The stock client (see harness `wsClient`), disposed by {@link settled} even when a test failed. */
export function connect(app: TestApp, user: SeededUser | string, opts: Parameters<typeof wsClient>[2] = {}): Client {
  const c = wsClient(app, typeof user === 'string' ? user : user.token, opts);
  open.add(c);
  return c;
}

/** Disposes the clients of the test, then waits until the instance has no live subscriptions. */
export async function settled(app: TestApp): Promise<void> {
  await Promise.all([...open].map((c) => c.dispose()));
  open.clear();
  await until(() => app.container.fanout.stats().subscriptions === 0, 5_000, 'subscriptions to end');
}

/** The GraphQL errors an ended stock-client subscription reported. */
export const subscriptionErrors = (sub: Collector) =>
  sub.errors.flatMap((e) => (Array.isArray(e) ? e : [e])) as Array<{ message: string; extensions?: { code?: string } }>;
