import { describe, expect } from 'vitest';
import { collect, gql, connect, live, settled, subscriptionErrors } from '../harness/clients.js';
import { it as base } from '../harness/fixtures.js';
import { EVENTS, conversation, events, send } from './ops.js';

const TOTAL = 105; // more than MAX_PAGE_SIZE (100)
let c: string;
let other: string;
let ids: string[]; // in send order

const PAGE = `query($c:ID!, $first:Int, $after:String, $last:Int, $before:String){ conversation(id:$c){
  messages(first:$first, after:$after, last:$last, before:$before){
    edges { cursor node { id body } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }`;

interface Page {
  ids: string[];
  bodies: string[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}
const it = base
  .extend('page', ({ app, org }) => async (args: Record<string, unknown>, conv = c): Promise<Page> => {
    const r = await gql(app, org.patient.token, PAGE, { c: conv, ...args });
    expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
    const m = r.data.conversation.messages;
    return {
      ids: m.edges.map((e: { node: { id: string } }) => e.node.id),
      bodies: m.edges.map((e: { node: { body: string } }) => e.node.body),
      pageInfo: m.pageInfo,
    };
  })
  .extend(
    'code',
    ({ app, org }) =>
      async (args: Record<string, unknown>, conv = c) =>
        (await gql(app, org.patient.token, PAGE, { c: conv, ...args })).errors?.[0]?.extensions?.code,
  )
  /** Subscribes after `after` and returns the error codes the subscription ended with. */
  .extend('subscribeFails', ({ app, org }) => async (after: string) => {
    const sub = collect(connect(app, org.patient), EVENTS, { c, a: after });
    await sub.ended();
    expect(sub.items).toEqual([]);
    return subscriptionErrors(sub).map((e) => e.extensions?.code);
  });

it.beforeAll(async ({ app, org }) => {
  c = await conversation(app, org.provider, [org.patient]);
  other = await conversation(app, org.provider, [org.patient]);
  ids = [];
  for (let i = 1; i <= TOTAL; i++) ids.push(await send(app, i % 2 ? org.provider : org.patient, c, `m${i}`));
  await send(app, org.provider, other, 'elsewhere');
});
it.afterEach(({ app }) => settled(app));

describe('messages history', () => {
  it('pages forward with first/after from the oldest, in send order', async ({ page }) => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 5; i++) {
      const p = await page({ first: 40, after });
      seen.push(...p.ids);
      expect(p.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!p.pageInfo.hasNextPage) break;
      after = p.pageInfo.endCursor;
    }
    expect(seen).toEqual(ids);
    expect((await page({ first: 3 })).bodies).toEqual(['m1', 'm2', 'm3']);
  });

  it('pages backward with last/before from the newest', async ({ page }) => {
    const p1 = await page({ last: 10 });
    expect(p1.ids).toEqual(ids.slice(-10));
    expect(p1.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
    const p2 = await page({ last: 10, before: p1.pageInfo.startCursor });
    expect(p2.ids).toEqual(ids.slice(-20, -10));
    expect(p2.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
    const seen = [...p2.ids, ...p1.ids];
    let before = p2.pageInfo.startCursor;
    for (;;) {
      const p = await page({ last: 30, before });
      seen.unshift(...p.ids);
      if (!p.pageInfo.hasPreviousPage) break;
      before = p.pageInfo.startCursor;
    }
    expect(seen).toEqual(ids);
  });

  it('returns the newest DEFAULT_PAGE_SIZE (20) messages without arguments', async ({ page }) => {
    const p = await page({});
    expect(p.ids).toEqual(ids.slice(-20));
    expect(p.pageInfo.hasPreviousPage).toBe(true);
  });

  it('clamps page sizes to MAX_PAGE_SIZE (100), inline and through variables', async ({ app, org, page }) => {
    expect((await page({ first: 1000 })).ids).toEqual(ids.slice(0, 100));
    expect((await page({ last: 1000 })).ids).toEqual(ids.slice(-100));
    const inline = await gql(
      app,
      org.patient.token,
      `query($c:ID!){ conversation(id:$c){ messages(first:1000){ edges { node { id } } } } }`,
      { c },
    );
    expect(inline.errors).toBeUndefined();
    expect(inline.data.conversation.messages.edges).toHaveLength(100);
    const again = await gql(
      app,
      org.patient.token,
      `query($c:ID!){ conversation(id:$c){ messages(first:1000){ edges { node { id } } } } }`,
      { c },
    );
    expect(again.data.conversation.messages.edges).toHaveLength(100); // also from yoga's parse cache
    expect((await page({ first: 0 })).ids).toEqual([]);
  });

  it('rejects negative sizes and mixed directions with BAD_USER_INPUT', async ({ app, org, code }) => {
    expect(await code({ first: -1 })).toBe('BAD_USER_INPUT');
    expect(await code({ last: -5 })).toBe('BAD_USER_INPUT');
    const inline = await gql(
      app,
      org.patient.token,
      `query($c:ID!){ conversation(id:$c){ messages(first:-1){ edges { node { id } } } } }`,
      { c },
    );
    expect(inline.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await code({ first: 2, last: 2 })).toBe('BAD_USER_INPUT');
  });

  it('rejects a tampered cursor, or one of another conversation, with BAD_USER_INPUT', async ({ page, code }) => {
    const cursor = (await page({ first: 2 })).pageInfo.endCursor as string;
    const [pos, mac] = cursor.split('.') as [string, string];
    const forged = `${Buffer.from('1').toString('base64url')}.${mac}`; // position changed, signature kept
    const flipped = `${pos}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [forged, flipped, 'garbage']) {
      expect(await code({ first: 2, after: bad }), bad).toBe('BAD_USER_INPUT');
      expect(await code({ last: 2, before: bad }), bad).toBe('BAD_USER_INPUT');
    }
    expect(await code({ first: 2, after: cursor }, other)).toBe('BAD_USER_INPUT');
  });
});

describe('conversationEvents `after`', () => {
  it('rejects a tampered cursor, a history cursor, and another stream’s cursor with BAD_USER_INPUT', async ({
    app,
    org,
    page,
    subscribeFails,
  }) => {
    const sub = await live(app, connect(app, org.patient), EVENTS, { c: other });
    await send(app, org.provider, other, 'for a cursor');
    await sub.waitFor(1);
    const foreign = events(sub)[0].cursor as string;
    const history = (await page({ first: 1 })).pageInfo.endCursor as string;
    expect(await subscribeFails(foreign)).toEqual(['BAD_USER_INPUT']);
    expect(await subscribeFails(history)).toEqual(['BAD_USER_INPUT']);
    expect(await subscribeFails(`${foreign.slice(0, -1)}${foreign.endsWith('A') ? 'B' : 'A'}`)).toEqual(['BAD_USER_INPUT']);
    expect(await subscribeFails('not-a-cursor')).toEqual(['BAD_USER_INPUT']);
  });

  it('replays exactly what came after a valid cursor, then continues live', async ({ app, org }) => {
    const first = await live(app, connect(app, org.patient), EVENTS, { c });
    const a = await send(app, org.provider, c, 'r1');
    const b = await send(app, org.provider, c, 'r2');
    await first.waitFor(2);
    first.stop();
    await settled(app);
    const resumed = await live(app, connect(app, org.patient), EVENTS, { c, a: events(first)[0].cursor });
    const live1 = await send(app, org.provider, c, 'r3');
    await resumed.waitFor(2);
    expect(events(resumed).map((e) => e.message.id)).toEqual([b, live1]);
    expect(a).not.toBe(b);
  });
});
