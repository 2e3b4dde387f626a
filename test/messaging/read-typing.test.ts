import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import type { SeededOrg } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import { gql, sleep, connect, live, settled } from '../harness/clients.js';
import { EVENTS, conversation, events, send, typenames } from './ops.js';

// TYPING_THROTTLE_MS=300 in the test env
it.afterEach(({ app }) => settled(app));

const READ = `mutation($c:ID!, $m:ID!){ markConversationRead(conversationId:$c, messageId:$m){ id unreadCount } }`;
const UNREAD = `query($c:ID!){ conversation(id:$c){ unreadCount } }`;
const TYPING = `mutation($c:ID!, $t:Boolean!){ setTyping(conversationId:$c, typing:$t) }`;
const unread = async (app: TestApp, org: SeededOrg, c: string) =>
  (await gql(app, org.patient.token, UNREAD, { c })).data.conversation.unreadCount as number;

describe('markConversationRead', () => {
  it('lowers unreadCount, emits ReadReceipt, and never moves backwards', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const m1 = await send(app, org.provider, c, 'one');
    const m2 = await send(app, org.provider, c, 'two');
    await send(app, org.provider, c, 'three');
    await send(app, org.patient, c, 'my own messages are never unread');
    expect(await unread(app, org, c)).toBe(3);

    const client = connect(app, org.provider);
    const sub = await live(app, client, EVENTS, { c });
    const r = await gql(app, org.patient.token, READ, { c, m: m2 });
    expect(r.errors).toBeUndefined();
    expect(r.data.markConversationRead.unreadCount).toBe(1);
    await sub.waitFor(1);
    expect(events(sub)[0]).toMatchObject({ __typename: 'ReadReceipt', userId: org.patient.id, messageId: m2 });

    // an older message does not move the read position back, and emits nothing
    const back = await gql(app, org.patient.token, READ, { c, m: m1 });
    expect(back.data.markConversationRead.unreadCount).toBe(1);
    const barrier = await send(app, org.provider, c, 'barrier');
    await sub.waitFor(2);
    expect(typenames(sub)).toEqual(['ReadReceipt', 'MessageAdded']);
    expect(events(sub)[1].message.id).toBe(barrier);
    expect(await unread(app, org, c)).toBe(2);
  });

  it('does not count deleted messages as unread', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    await send(app, org.provider, c, 'one');
    const m2 = await send(app, org.provider, c, 'two');
    expect(await unread(app, org, c)).toBe(2);
    await gql(app, org.provider.token, `mutation($id:ID!){ deleteMessage(id:$id){ id } }`, { id: m2 });
    expect(await unread(app, org, c)).toBe(1);
  });

  it('answers NOT_FOUND for a message of another conversation', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const elsewhere = await conversation(app, org.provider, [org.patient]);
    const m = await send(app, org.provider, elsewhere, 'elsewhere');
    const r = await gql(app, org.patient.token, READ, { c, m });
    expect(r.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('setTyping', () => {
  it('delivers TypingIndicator, throttling repeated typing:true within the window', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.provider);
    const sub = await live(app, client, EVENTS, { c });
    // three at once, so they surely fall within one throttle window
    const typed = await Promise.all([1, 2, 3].map(() => gql(app, org.patient.token, TYPING, { c, t: true })));
    expect(typed.map((r) => r.data.setTyping)).toEqual([true, true, true]);
    await gql(app, org.patient.token, TYPING, { c, t: false }); // stopping is never throttled
    const m = await send(app, org.provider, c, 'barrier'); // same stream, so it arrives after the indicators
    await sub.waitFor(3);
    expect(typenames(sub)).toEqual(['TypingIndicator', 'TypingIndicator', 'MessageAdded']);
    expect(events(sub)[0]).toMatchObject({ userId: org.patient.id, name: org.patient.name, typing: true });
    expect(events(sub)[1]).toMatchObject({ userId: org.patient.id, typing: false });
    expect(events(sub)[0].cursor).toBeUndefined();
    expect(events(sub)[2].message.id).toBe(m);

    await sleep(350); // past the 300 ms throttle window: typing:true is sent again
    await gql(app, org.patient.token, TYPING, { c, t: true });
    await sub.waitFor(4);
    expect(events(sub)[3]).toMatchObject({ __typename: 'TypingIndicator', typing: true });
  });

  it('never replays typing indicators to a subscriber resuming with `after`', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.provider);
    const sub = await live(app, client, EVENTS, { c });
    await send(app, org.provider, c, 'one');
    await gql(app, org.patient.token, TYPING, { c, t: true });
    const two = await send(app, org.patient, c, 'two');
    await sub.waitFor(3);
    expect(typenames(sub)).toEqual(['MessageAdded', 'TypingIndicator', 'MessageAdded']);
    sub.stop();
    await settled(app);

    const resumed = await live(app, connect(app, org.provider), EVENTS, { c, a: events(sub)[0].cursor });
    const three = await send(app, org.provider, c, 'three');
    await resumed.waitFor(2);
    expect(typenames(resumed)).toEqual(['MessageAdded', 'MessageAdded']);
    expect(events(resumed).map((e) => e.message.id)).toEqual([two, three]);
  });

  it('refuses non-members with NOT_FOUND', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const outsider = await org.user('patient');
    const r = await gql(app, outsider.token, TYPING, { c, t: true });
    expect(r.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
