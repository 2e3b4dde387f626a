import { describe, expect } from 'vitest';
import { it } from '../harness/fixtures.js';
import type { SeededOrg } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import { sql } from 'drizzle-orm';
import { rowsOf } from '../../src/db/client.js';
import { gql, connect, live, settled, until } from '../harness/clients.js';
import { EVENTS, SEND, conversation, events, send, typenames } from './ops.js';

it.afterEach(({ app }) => settled(app));

const CREATE = `mutation($m:[ID!]!){ createConversation(input:{kind:GROUP, memberIds:$m}) { id } }`;
const HISTORY = `query($c:ID!){ conversation(id:$c){ messages(last:100){ edges { node { id body clientMessageId } } } } }`;
const history = async (app: TestApp, org: SeededOrg, c: string) =>
  (await gql(app, org.provider.token, HISTORY, { c })).data.conversation.messages.edges.map((e: { node: unknown }) => e.node);

/** The conversation stream's head and its events' positions (the ledger must have no hole: 1..head). */
const positions = async (app: TestApp, c: string) => {
  const rows = rowsOf<{ head: number; positions: number[] }>(
    await app.container.database.db.execute(sql`select (select position from stream_heads where stream = ${`conv:${c}`})::int as head,
      (select array_agg(position::int order by position) from stream_events where stream = ${`conv:${c}`}) as positions`),
  );
  return rows[0] ?? { head: -1, positions: [] };
};

describe('sendMessage', () => {
  it('delivers a sent message to a subscribed member', async ({ app, org }) => {
    const created = await gql(app, org.provider.token, CREATE, { m: [org.patient.id] });
    const c = created.data.createConversation.id;
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c });
    const sent = await gql(app, org.provider.token, SEND, { c, b: 'hello', k: 'k1' });
    expect(sent.errors).toBeUndefined();
    const [ev] = await sub.waitFor(1);
    expect(ev.conversationEvents).toMatchObject({ __typename: 'MessageAdded', message: { id: sent.data.sendMessage.id, body: 'hello' } });
    await client.dispose();
  });

  it('stores attachments as metadata', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const a = [{ url: 'https://files.example/x.png', contentType: 'image/png', size: 1234, name: 'x.png' }];
    const r = await gql(app, org.patient.token, SEND, { c, a });
    expect(r.errors).toBeUndefined();
    expect(r.data.sendMessage).toMatchObject({ body: null, attachments: a, sender: { id: org.patient.id } });
  });

  it('rejects invalid input with BAD_USER_INPUT and writes nothing', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c });
    const attachment = { url: 'https://files.example/a.pdf', contentType: 'application/pdf', size: 10 };
    const invalid: Array<Record<string, unknown>> = [
      { c, b: '' },
      { c, b: '   ' },
      { c },
      { c, b: 'x'.repeat(10_001) },
      { c, b: 'ok', k: '' },
      { c, b: 'ok', k: 'k'.repeat(129) },
      { c, a: [{ ...attachment, url: 'ftp://files.example/a.pdf' }] },
      { c, a: [{ ...attachment, size: -1 }] },
      { c, a: Array.from({ length: 11 }, () => attachment) },
    ];
    for (const variables of invalid) {
      const r = await gql(app, org.provider.token, SEND, variables);
      expect(r.errors?.[0]?.extensions?.code, JSON.stringify(variables).slice(0, 80)).toBe('BAD_USER_INPUT');
      expect(r.data).toBeNull();
    }
    expect(await history(app, org, c)).toEqual([]);
    // the first event this subscriber sees is the next valid message
    const ok = await send(app, org.provider, c, 'valid');
    await sub.waitFor(1);
    expect(events(sub)).toEqual([expect.objectContaining({ __typename: 'MessageAdded', message: expect.objectContaining({ id: ok }) })]);
    await client.dispose();
  });

  it('returns the same message for the same clientMessageId, with one row and one event', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c });
    const first = await gql(app, org.provider.token, SEND, { c, b: 'take 2 tablets', k: 'dose-1' });
    const again = await gql(app, org.provider.token, SEND, { c, b: 'take 2 tablets', k: 'dose-1' });
    expect(first.errors).toBeUndefined();
    expect(again.errors).toBeUndefined();
    expect(again.data.sendMessage).toEqual(first.data.sendMessage);
    expect(first.data.sendMessage.clientMessageId).toBe('dose-1');
    const barrier = await send(app, org.provider, c, 'barrier');
    await sub.waitFor(2);
    expect(typenames(sub)).toEqual(['MessageAdded', 'MessageAdded']);
    expect(events(sub).map((e) => e.message.id)).toEqual([first.data.sendMessage.id, barrier]);
    expect((await history(app, org, c)).map((m: { id: string }) => m.id)).toEqual([first.data.sendMessage.id, barrier]);
    await client.dispose();
  });

  it('answers CONFLICT when the same clientMessageId comes with a different message', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const c2 = await conversation(app, org.provider, [org.patient]);
    const id = await send(app, org.provider, c, 'original', 'conflict-key');
    const body = await gql(app, org.provider.token, SEND, { c, b: 'different', k: 'conflict-key' });
    expect(body.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const elsewhere = await gql(app, org.provider.token, SEND, { c: c2, b: 'original', k: 'conflict-key' });
    expect(elsewhere.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(await history(app, org, c)).toEqual([{ id, body: 'original', clientMessageId: 'conflict-key' }]);
    expect(await history(app, org, c2)).toEqual([]);
  });

  it('answers two overlapping sends with the same clientMessageId with one message, and takes one position', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const first = await send(app, org.provider, c, 'first');
    const { db } = app.container.database;
    const stream = `conv:${c}`;
    const waiting = async () =>
      rowsOf<{ n: number }>(
        await db.execute(sql`select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query like '%stream_heads%' and query like '%messages%'`),
      )[0]?.n ?? 0;
    // hold the stream's head so both sends take their snapshot before either commits
    let replies: Array<ReturnType<typeof gql>> = [];
    await db.transaction(async (tx) => {
      await tx.execute(sql`select position from stream_heads where stream = ${stream} for update`);
      replies = [1, 2].map(() => gql(app, org.provider.token, SEND, { c, b: 'take 2 tablets', k: 'race-1' }));
      await until(async () => (await waiting()) >= 2, 10_000, 'both sends waiting on the head');
    });
    const [a, b] = (await Promise.all(replies)) as Array<{ data: { sendMessage: { id: string } }; errors?: unknown }>;
    expect(a?.errors).toBeUndefined();
    expect(b?.errors).toBeUndefined();
    expect(b?.data.sendMessage).toEqual(a?.data.sendMessage);
    const id = a?.data.sendMessage.id;
    expect((await history(app, org, c)).map((m: { id: string }) => m.id)).toEqual([first, id]);
    // the send that lost the race took no position: the ledger has no hole
    const { head, positions: at } = await positions(app, c);
    expect(at).toEqual(Array.from({ length: head }, (_, i) => i + 1));
  });

  it('answers each of many concurrent sends on its own: members, outsiders, repeated keys, two conversations', async ({ app, org }) => {
    const c1 = await conversation(app, org.provider, [org.patient]);
    const c2 = await conversation(app, org.provider, [org.admin]);
    const client = connect(app, org.patient);
    const sub = await live(app, client, EVENTS, { c: c1 });
    // sent together, so that many share a statement: every answer must still be its own
    const calls = [
      ...Array.from({ length: 20 }, (_, i) => ({ by: i % 2 ? org.patient : org.provider, c: c1, b: `m${i}`, k: `k${i}` })),
      ...Array.from({ length: 10 }, (_, i) => ({ by: org.provider, c: c2, b: `n${i}`, k: undefined })),
      { by: org.patient, c: c2, b: 'not a member', k: undefined },
      ...Array.from({ length: 3 }, () => ({ by: org.provider, c: c1, b: 'same key', k: 'twice' })),
    ];
    const replies = await Promise.all(calls.map((x) => gql(app, x.by.token, SEND, { c: x.c, b: x.b, k: x.k })));
    calls.forEach((x, i) => {
      const r = replies[i]!;
      if (x.b === 'not a member') return expect(r.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect(r.errors).toBeUndefined();
      expect(r.data.sendMessage).toMatchObject({ body: x.b, clientMessageId: x.k ?? null });
    });
    const twice = new Set(replies.slice(-3).map((r) => r.data.sendMessage.id));
    expect(twice.size).toBe(1);
    // one message per distinct send, each conversation's positions without a hole, in history order
    const h1 = (await history(app, org, c1)).map((m: { body: string }) => m.body);
    expect(h1.sort()).toEqual([...calls.slice(0, 20).map((x) => x.b), 'same key'].sort());
    expect(await history(app, org, c2)).toHaveLength(10);
    await sub.waitFor(21);
    const ids = (await history(app, org, c1)).map((m: { id: string }) => m.id);
    expect(events(sub).map((e) => e.message.id)).toEqual(ids);
    for (const c of [c1, c2]) {
      const { head, positions: at } = await positions(app, c);
      expect(at).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    }
    await client.dispose();
  });

  it('scopes clientMessageId to the sender', async ({ app, org }) => {
    const c = await conversation(app, org.provider, [org.patient]);
    const a = await send(app, org.provider, c, 'same words', 'shared-key');
    const b = await send(app, org.patient, c, 'same words', 'shared-key');
    expect(a).not.toBe(b);
  });
});
