import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import { gql, connect, live, settled } from '../harness/clients.js';
import { EVENTS, SEND, conversation, events, send, typenames } from './ops.js';

it.afterEach(({ app }) => settled(app));

const EDIT = `mutation($id:ID!, $b:String!){ editMessage(id:$id, body:$b){ id body editedAt } }`;
const DELETE = `mutation($id:ID!){ deleteMessage(id:$id){ id body attachments { url } deletedAt } }`;
const HISTORY = `query($c:ID!){ conversation(id:$c){ messages { edges { node { id body attachments { url } deletedAt } } } } }`;
const attachment = { url: 'https://files.example/scan.pdf', contentType: 'application/pdf', size: 2048, name: 'scan.pdf' };

describe('editMessage', () => {
  it('lets the sender edit and emits MessageEdited', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const id = await send(app, org.provider, c, 'see you at 10');
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c });
    const r = await gql(app, org.provider.token, EDIT, { id, b: 'see you at 11' });
    expect(r.errors).toBeUndefined();
    expect(r.data.editMessage).toMatchObject({ id, body: 'see you at 11', editedAt: expect.any(String) });
    await sub.waitFor(1);
    expect(events(sub)[0]).toMatchObject({ __typename: 'MessageEdited', message: { id, body: 'see you at 11' } });
    await client.dispose();
  });

  it('refuses edits by anyone but the sender: FORBIDDEN for members, NOT_FOUND for others', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient, org.admin]);
    const id = await send(app, org.provider, c, 'original');
    const byMember = await gql(app, org.patient.token, EDIT, { id, b: 'hacked' });
    expect(byMember.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const byAdmin = await gql(app, org.admin.token, EDIT, { id, b: 'hacked' });
    expect(byAdmin.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const outsider = await org.user('patient');
    const byOutsider = await gql(app, outsider.token, EDIT, { id, b: 'hacked' });
    expect(byOutsider.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const empty = await gql(app, org.provider.token, EDIT, { id, b: '  ' });
    expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const h = await gql(app, org.provider.token, HISTORY, { c });
    expect(h.data.conversation.messages.edges[0].node.body).toBe('original');
  });
});

describe('deleteMessage', () => {
  it('soft-deletes: body null, attachments [], MessageDeleted event, history keeps its place', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const r0 = await gql(app, org.provider.token, SEND, { c, b: 'secret lab result', a: [attachment] });
    const id = r0.data.sendMessage.id as string;
    const next = await send(app, org.provider, c, 'still here');
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c });
    const r = await gql(app, org.provider.token, DELETE, { id });
    expect(r.errors).toBeUndefined();
    expect(r.data.deleteMessage).toMatchObject({ id, body: null, attachments: [], deletedAt: expect.any(String) });
    await sub.waitFor(1);
    expect(events(sub)[0]).toMatchObject({ __typename: 'MessageDeleted', message: { id, body: null, attachments: [] } });
    const h = await gql(app, org.patient.token, HISTORY, { c });
    expect(h.data.conversation.messages.edges.map((e: { node: unknown }) => e.node)).toEqual([
      { id, body: null, attachments: [], deletedAt: expect.any(String) },
      { id: next, body: 'still here', attachments: [], deletedAt: null },
    ]);
    const editDeleted = await gql(app, org.provider.token, EDIT, { id, b: 'back' });
    expect(editDeleted.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    await client.dispose();
  });

  it('never brings the deleted body back through replay with `after`', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.patient);
    const first = await live(app, client, EVENTS, { c });
    await send(app, org.provider, c, 'before');
    const r0 = await gql(app, org.provider.token, SEND, { c, b: 'wrong patient data', a: [attachment] });
    const id = r0.data.sendMessage.id as string;
    expect((await gql(app, org.provider.token, EDIT, { id, b: 'still wrong data' })).errors).toBeUndefined();
    await first.waitFor(3);
    const resumeFrom = events(first)[0].cursor as string; // before the message existed
    expect((await gql(app, org.provider.token, DELETE, { id })).errors).toBeUndefined();
    await first.waitFor(4);
    first.stop();
    await settled(app);

    // a new connection: `settled` disposed the first one, and a disposed graphql-ws client still
    // closing its socket ends a new subscription silently (no items, no error) when the close lands
    const again = connect(app, org.patient);
    const replay = await live(app, again, EVENTS, { c, a: resumeFrom });
    await replay.waitFor(3);
    expect(typenames(replay)).toEqual(['MessageAdded', 'MessageEdited', 'MessageDeleted']);
    for (const ev of events(replay)) expect(ev.message).toMatchObject({ id, body: null });
    expect(events(replay)[0].message.attachments).toEqual([]);
    expect(JSON.stringify(replay.items)).not.toContain('wrong');
  });

  it('lets only the sender or an admin delete', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient, org.admin]);
    const id = await send(app, org.patient, c, 'mine');
    const byProvider = await gql(app, org.provider.token, DELETE, { id });
    expect(byProvider.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const byAdmin = await gql(app, org.admin.token, DELETE, { id });
    expect(byAdmin.errors).toBeUndefined();
    expect(byAdmin.data.deleteMessage.body).toBeNull();
    const again = await gql(app, org.patient.token, DELETE, { id });
    expect(again.errors).toBeUndefined();
  });
});
