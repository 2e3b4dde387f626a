import { describe, expect } from 'vitest';
import { type GqlResponse, collect, gql, connect, live, settled, subscriptionErrors } from '../harness/clients.js';
import { withApp } from '../harness/fixtures.js';
import { seedOrg } from '../harness/seed.js';
import { CREATE, EVENTS, conversation, events, send } from './ops.js';

/** A second org on the same instance. */
const it = withApp().extend('other', { scope: 'file' }, ({ app }) => seedOrg(app));
it.afterEach(({ app }) => settled(app));

const PAGE = `query($n:Int, $a:String){ conversations(first:$n, after:$a) {
  edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }`;

describe('createConversation', () => {
  it('creates a conversation with the creator and the members', async ({ app, org }) => {
    const r = await gql(app, org.provider.token, CREATE, { kind: 'GROUP', m: [org.patient.id], t: 'Care' });
    expect(r.errors).toBeUndefined();
    expect(r.data.createConversation).toMatchObject({ kind: 'GROUP', title: 'Care' });
    const ids = r.data.createConversation.members.map((m: { user: { id: string } }) => m.user.id).sort();
    expect(ids).toEqual([org.patient.id, org.provider.id].sort());
  });

  it('requires exactly one other member for a direct conversation', async ({ app, org }) => {
    const two = await gql(app, org.provider.token, CREATE, { kind: 'DIRECT', m: [org.patient.id, org.admin.id] });
    expect(two.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const self = await gql(app, org.provider.token, CREATE, { kind: 'DIRECT', m: [org.provider.id] });
    expect(self.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const one = await gql(app, org.provider.token, CREATE, { kind: 'DIRECT', m: [org.patient.id] });
    expect(one.errors).toBeUndefined();
    expect(one.data.createConversation.kind).toBe('DIRECT');
  });

  it('accepts only users of the same organisation as members', async ({ app, org, other }) => {
    const foreign = await gql(app, org.provider.token, CREATE, { kind: 'GROUP', m: [other.patient.id] });
    expect(foreign.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const unknown = await gql(app, org.provider.token, CREATE, { kind: 'GROUP', m: [`${org.orgId}:nobody`] });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(foreign.errors?.[0]?.message).toBe(unknown.errors?.[0]?.message);
    const none = await gql(app, org.provider.token, CREATE, { kind: 'GROUP', m: [] });
    expect(none.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('conversations', () => {
  it('pages with first/after through endCursor, newest first, without overlap', async ({ app, org }) => {
    const me = await org.user('provider');
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push(await conversation(app, me, [org.patient]));
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const r: GqlResponse = await gql(app, me.token, PAGE, { n: 2, a: after });
      expect(r.errors).toBeUndefined();
      const conn = r.data.conversations;
      seen.push(...conn.edges.map((e: { node: { id: string } }) => e.node.id));
      expect(conn.pageInfo.hasPreviousPage).toBe(after !== null);
      pages++;
      if (!conn.pageInfo.hasNextPage) break;
      expect(conn.pageInfo.endCursor).toBe(conn.edges.at(-1).cursor);
      after = conn.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...created].reverse());
  });

  it('skips none of the conversations created in the same millisecond', async ({ app, org }) => {
    const me = await org.user('provider');
    const created = await Promise.all(Array.from({ length: 16 }, () => conversation(app, me, [org.patient])));
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 20; i++) {
      const r: GqlResponse = await gql(app, me.token, PAGE, { n: 1, a: after });
      seen.push(...r.data.conversations.edges.map((e: { node: { id: string } }) => e.node.id));
      if (!r.data.conversations.pageInfo.hasNextPage) break;
      after = r.data.conversations.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(16);
    expect(new Set(seen)).toEqual(new Set(created));
  });

  it('refuses last/before, which this list does not support, instead of ignoring them', async ({ app, org }) => {
    const me = await org.user('provider');
    await conversation(app, me, [org.patient]);
    const first = await gql(app, me.token, PAGE, { n: 1 });
    const cursor = first.data.conversations.pageInfo.endCursor;
    const last = await gql(app, me.token, `{ conversations(last: 1) { edges { cursor } } }`);
    expect(last.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const before = await gql(app, me.token, `query($b:String){ conversations(before: $b) { edges { cursor } } }`, { b: cursor });
    expect(before.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('lists only conversations the viewer belongs to', async ({ app, org }) => {
    const outsider = await org.user('patient');
    const c = await conversation(app, org.provider, [org.admin]);
    const r = await gql(app, outsider.token, PAGE, { n: 50 });
    expect(r.data.conversations.edges).toEqual([]);
    const mine = await gql(app, org.admin.token, PAGE, { n: 100 });
    expect(mine.data.conversations.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(c);
  });

  it('rejects a tampered or foreign conversations cursor with BAD_USER_INPUT', async ({ app, org }) => {
    const me = await org.user('provider');
    for (let i = 0; i < 2; i++) await conversation(app, me, [org.patient]);
    const first = await gql(app, me.token, PAGE, { n: 1 });
    const cursor: string = first.data.conversations.edges[0].cursor;
    const tampered = `${cursor.slice(0, -2)}${cursor.endsWith('AA') ? 'AB' : 'AA'}`;
    const bad = await gql(app, me.token, PAGE, { n: 1, a: tampered });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    // another user's cursor is bound to their list
    const foreign = await gql(app, org.patient.token, PAGE, { n: 1, a: cursor });
    expect(foreign.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('members', () => {
  const ADD = `mutation($c:ID!, $u:[ID!]!){ addConversationMembers(conversationId:$c, userIds:$u){ members { user { id } } } }`;
  const REMOVE = `mutation($c:ID!, $u:ID!){ removeConversationMember(conversationId:$c, userId:$u){ id } }`;
  const GET = `query($c:ID!){ conversation(id:$c){ id } }`;

  it('adds a member, who then sees the conversation and gets MembersChanged', async ({ app, org }) => {
    const newcomer = await org.user('patient');
    const c = await conversation(app, org.provider, [org.patient]);
    expect((await gql(app, newcomer.token, GET, { c })).data.conversation).toBeNull();
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c });
    const r = await gql(app, org.provider.token, ADD, { c, u: [newcomer.id] });
    expect(r.errors).toBeUndefined();
    await sub.waitFor(1);
    expect(events(sub)[0]).toMatchObject({ __typename: 'MembersChanged', addedUserIds: [newcomer.id], removedUserIds: [] });
    expect((await gql(app, newcomer.token, GET, { c })).data.conversation).toEqual({ id: c });
    await client.dispose();
  });

  it("ends a removed member's live subscription with FORBIDDEN after the MembersChanged event", async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient, org.admin]);
    const patient = connect(app, org.patient);
    const admin = connect(app, org.admin);
    const removed = await live(app, patient, EVENTS, { c });
    const stays = await live(app, admin, EVENTS, { c });

    const r = await gql(app, org.provider.token, REMOVE, { c, u: org.patient.id });
    expect(r.errors).toBeUndefined();
    await removed.ended();
    expect(events(removed)).toEqual([expect.objectContaining({ __typename: 'MembersChanged', removedUserIds: [org.patient.id] })]);
    expect(subscriptionErrors(removed).map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);

    // the others keep receiving; the removed member sees nothing more, and can no longer read or send
    const after = await send(app, org.provider, c, 'after removal');
    await stays.waitFor(2);
    expect(events(stays)[1]).toMatchObject({ __typename: 'MessageAdded', message: { id: after } });
    expect(removed.items).toHaveLength(1);
    expect((await gql(app, org.patient.token, GET, { c })).data.conversation).toBeNull();
    const resumed = collect(patient, EVENTS, { c, a: events(removed)[0].cursor });
    await resumed.ended();
    expect(subscriptionErrors(resumed).map((e) => e.extensions?.code)).toEqual(['NOT_FOUND']);
    const denied = await gql(app, org.patient.token, `mutation($c:ID!){ sendMessage(input:{conversationId:$c, body:"x"}){ id } }`, { c });
    expect(denied.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    await Promise.all([patient.dispose(), admin.dispose()]);
  });

  it('lets a patient leave but not remove others', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient, org.admin]);
    const other = await gql(app, org.patient.token, REMOVE, { c, u: org.admin.id });
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const self = await gql(app, org.patient.token, REMOVE, { c, u: org.patient.id });
    expect(self.errors).toBeUndefined();
    expect((await gql(app, org.patient.token, GET, { c })).data.conversation).toBeNull();
  });
});
