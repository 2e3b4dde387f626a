// Helpers for the multi-instance delivery-guarantee tests in test/system (not a test file).
import type WebSocket from 'ws';
import { expect } from 'vitest';
import { type Collector, closed, gql, rawSocket, until } from './clients.js';
import { withTwoInstances } from './fixtures.js';
import type { SeededUser } from './seed.js';
import type { TestApp } from './start-app.js';

export const CREATE = `mutation($m:[ID!]!){ createConversation(input:{kind:GROUP, memberIds:$m}) { id } }`;

export const SEND = `mutation($c:ID!, $b:String, $k:String){
  sendMessage(input:{conversationId:$c, body:$b, clientMessageId:$k}) { id body clientMessageId } }`;

export const REMOVE = `mutation($c:ID!, $u:ID!){ removeConversationMember(conversationId:$c, userId:$u) { id } }`;

/** The durable events with what the tests compare. */
export const EVENTS = `subscription($c:ID!, $a:String){ conversationEvents(conversationId:$c, after:$a){
  __typename
  ... on StreamEvent { cursor }
  ... on MessageAdded { message { id body } }
  ... on MembersChanged { addedUserIds removedUserIds }
} }`;

export const HISTORY = `query($c:ID!){ conversation(id:$c){ messages(first:100){ edges { node { id body } } } } }`;

/** The file's two instances of one deployment and its org (see {@link withTwoInstances}). */
export const it = withTwoInstances();

export async function conversation(app: TestApp, by: SeededUser, members: SeededUser[]): Promise<string> {
  const r = await gql(app, by.token, CREATE, { m: members.map((u) => u.id) });
  expect(r.errors).toBeUndefined();
  return r.data.createConversation.id as string;
}

/** Sends a message and returns its id (fails the test on errors). */
export async function send(app: TestApp, by: SeededUser, c: string, body: string, key?: string): Promise<string> {
  const r = await gql(app, by.token, SEND, { c, b: body, k: key });
  expect(r.errors, body).toBeUndefined();
  return r.data.sendMessage.id as string;
}

/** Message ids of the conversation's history, oldest first. */
export async function history(app: TestApp, by: SeededUser, c: string): Promise<string[]> {
  const r = await gql(app, by.token, HISTORY, { c });
  expect(r.errors).toBeUndefined();
  return r.data.conversation.messages.edges.map((e: { node: { id: string } }) => e.node.id);
}

export interface Ev {
  __typename: string;
  cursor?: string;
  message?: { id: string; body: string | null };
  addedUserIds?: string[];
  removedUserIds?: string[];
}

export const events = (sub: Collector): Ev[] => sub.items.map((i) => i.conversationEvents as Ev);
/** Ids of the MessageAdded events a subscriber received, in arrival order. */
export const messageIds = (sub: Collector) =>
  events(sub)
    .filter((e) => e.__typename === 'MessageAdded')
    .map((e) => e.message!.id);

/** Resolves when the subscriber has received at least `n` MessageAdded events. */
export async function waitForMessages(sub: Collector, n: number, ms = 10_000): Promise<string[]> {
  await until(() => messageIds(sub).length >= n || sub.completed, ms, `${n} messages (have ${messageIds(sub).length})`);
  return messageIds(sub);
}

/** The ledger position behind a conversation cursor (white box: decoded with the app's own codec). */
export const position = (app: TestApp, c: string, cursor: string) => app.container.cursors.decodeNumber(`conv:${c}`, cursor);

/** Asserts the positions of these events strictly increase by one (no gap, no duplicate, in order). */
export function expectContiguous(app: TestApp, c: string, evs: Ev[]) {
  const pos = evs.map((e) => position(app, c, e.cursor!));
  const first = pos[0] ?? 0;
  expect(pos).toEqual(pos.map((_, i) => first + i));
}

export interface Frame {
  type: string;
  id?: string;
  payload?: any;
}

/** A raw graphql-transport-ws socket that records every frame it receives. */
export async function rawRecorder(app: TestApp, authorization: string) {
  const ws: WebSocket = rawSocket(app);
  const frames: Frame[] = [];
  const done = closed(ws, 60_000);
  done.catch(() => {});
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const next = async (pred: (f: Frame) => boolean, ms = 5_000) => {
    await until(() => frames.some(pred) || ws.readyState >= 2, ms, 'a frame');
    const f = frames.find(pred);
    if (!f) throw new Error(`socket closed before the expected frame: ${JSON.stringify(frames).slice(0, 300)}`);
    return f;
  };
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization } }));
  await next((f) => f.type === 'connection_ack');
  return {
    ws,
    frames,
    closed: done,
    next,
    subscribe: (id: string, variables: Record<string, unknown>, query = EVENTS) =>
      ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } })),
  };
}
