import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, gql, wsClient } from '../harness/clients.js';
import { seedOrg, type SeededOrg } from '../harness/seed.js';
import { startApp, stopAll, type TestApp } from '../harness/start-app.js';

let app: TestApp;
let org: SeededOrg;
beforeAll(async () => {
  app = await startApp();
  org = await seedOrg(app);
});
afterAll(stopAll);

const CREATE = `mutation($m:[ID!]!){ createConversation(input:{kind:GROUP, memberIds:$m}) { id } }`;
const SEND = `mutation($c:ID!,$b:String,$k:String){ sendMessage(input:{conversationId:$c, body:$b, clientMessageId:$k}) { id body } }`;
const EVENTS = `subscription($c:ID!,$a:String){ conversationEvents(conversationId:$c, after:$a){ __typename ... on StreamEvent { cursor } ... on MessageAdded { message { id body } } } }`;

describe('sendMessage', () => {
  it('delivers a sent message to a subscribed member', async () => {
    const created = await gql(app, org.provider.token, CREATE, { m: [org.patient.id] });
    const c = created.data.createConversation.id;
    const client = wsClient(app, org.patient.token);
    const sub = collect(client, EVENTS, { c });
    await new Promise((r) => setTimeout(r, 300));
    const sent = await gql(app, org.provider.token, SEND, { c, b: 'hello', k: 'k1' });
    expect(sent.errors).toBeUndefined();
    const [ev] = await sub.waitFor(1);
    expect(ev.conversationEvents).toMatchObject({ __typename: 'MessageAdded', message: { id: sent.data.sendMessage.id, body: 'hello' } });
    await client.dispose();
  });
});
