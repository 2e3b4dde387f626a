// Tenant and membership isolation of subscriptions across instances: a foreign or non-member
// subscriber learns nothing (the error is the one for a conversation that does not exist, and no
// event follows), and a removed member stops receiving at once wherever it is connected.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect } from 'vitest';
import { gql, connect, disposeAll, live, sleep, subscriptionErrors, until } from '../harness/clients.js';
import { seedOrg, type SeededUser } from '../harness/seed.js';
import type { TestApp } from '../harness/start-app.js';
import {
  REMOVE,
  conversation,
  events,
  expectContiguous,
  messageIds,
  rawRecorder,
  send,
  waitForMessages,
  EVENTS,
  it as base,
} from '../harness/system.js';

const it = base.extend('other', { scope: 'file' }, ({ b }) => seedOrg(b));
afterEach(disposeAll);

/** Subscribes on a raw socket as `user` and returns the frames of that operation after `ms`. */
async function framesOf(app: TestApp, user: SeededUser, variables: Record<string, unknown>) {
  const raw = await rawRecorder(app, user.token);
  raw.subscribe('s1', variables);
  const error = await raw.next((f) => f.id === 's1' && f.type !== 'next');
  return { raw, error };
}

describe('tenant and membership isolation', () => {
  it('answers a foreign or non-member subscriber exactly like a missing conversation, and sends no event', async ({ a, b, org, other }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const member = await live(b, connect(b, org.patient), EVENTS, { c });
    const stranger = await org.user('patient', 'stranger'); // same org, not a member

    const missing = await framesOf(a, other.patient, { c: randomUUID() });
    expect(missing.error.type).toBe('error');
    expect(missing.error.payload).toHaveLength(1);
    expect(missing.error.payload[0].extensions.code).toBe('NOT_FOUND');
    const probes = [
      ['org-2 user on A', await framesOf(a, other.patient, { c })],
      ['org-2 user on B', await framesOf(b, other.admin, { c })],
      ['org-2 user with a cursor of the stream', await framesOf(a, other.patient, { c, a: a.container.cursors.encode(`conv:${c}`, 0) })],
      ['non-member on A', await framesOf(a, stranger, { c })],
      ['non-member on B', await framesOf(b, stranger, { c })],
    ] as const;
    for (const [who, p] of probes) expect(p.error, who).toEqual({ ...missing.error });
    // the same error over HTTP for the conversation itself
    const viaHttp = await gql(b, other.admin.token, `query($c:ID!){ conversation(id:$c){ id } }`, { c });
    expect(viaHttp.data?.conversation ?? null).toBeNull();

    // org-1 traffic flows while the probes' sockets stay open: none of it reaches them
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) sent.push(await send(i % 2 ? a : b, org.provider, c, `private-${i}`));
    await waitForMessages(member, 5);
    await sleep(300);
    expect(messageIds(member)).toEqual(sent);
    for (const [who, p] of probes) {
      expect(
        p.raw.frames.filter((f) => f.type === 'next'),
        who,
      ).toEqual([]);
      expect(
        p.raw.frames.map((f) => f.type),
        who,
      ).toEqual(['connection_ack', 'error']);
      p.raw.ws.close(1000);
    }
    missing.raw.ws.close(1000);
  });

  it('ends a removed member at once with MembersChanged then FORBIDDEN, on the other instance, while the others keep receiving', async ({
    a,
    b,
    org,
  }) => {
    const leaving = await org.user('patient', 'leaving');
    const staying = await org.user('patient', 'staying');
    const c = await conversation(a, org.provider, [leaving, staying]);
    // on A: the member to be removed and another patient with the same operation (one shared group)
    const gone = await live(a, connect(a, leaving), EVENTS, { c });
    const kept = await live(a, connect(a, staying), EVENTS, { c });
    const keptOnB = await live(b, connect(b, org.provider), EVENTS, { c });
    const first = await send(b, org.provider, c, 'for everyone');
    await waitForMessages(gone, 1);

    const removed = await gql(b, org.provider.token, REMOVE, { c, u: leaving.id });
    expect(removed.errors).toBeUndefined();
    await gone.ended(5_000);
    expect(events(gone).map((e) => e.__typename)).toEqual(['MessageAdded', 'MembersChanged']);
    expect(events(gone)[1]).toMatchObject({ addedUserIds: [], removedUserIds: [leaving.id] });
    expect(subscriptionErrors(gone).map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);

    const later: string[] = [];
    for (let i = 0; i < 3; i++) later.push(await send(i % 2 ? a : b, org.provider, c, `after removal ${i}`));
    for (const s of [kept, keptOnB]) {
      await waitForMessages(s, 4);
      await sleep(200);
      expect(events(s).map((e) => e.__typename)).toEqual([
        'MessageAdded',
        'MembersChanged',
        'MessageAdded',
        'MessageAdded',
        'MessageAdded',
      ]);
      expect(messageIds(s)).toEqual([first, ...later]);
      expectContiguous(a, c, events(s));
    }
    expect(messageIds(gone)).toEqual([first]);

    // and they cannot come back, not even with a cursor from before the removal
    const cursor = events(gone)[0]!.cursor!;
    for (const app of [a, b]) {
      const retry = await framesOf(app, leaving, { c, a: cursor });
      expect(retry.error).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'NOT_FOUND' } }] });
      await sleep(100);
      expect(retry.raw.frames.filter((f) => f.type === 'next')).toEqual([]);
      retry.raw.ws.close(1000);
    }
  });

  it('sends a member removed while its resumed subscription is still replaying nothing after the removal', async ({ a, b, org }) => {
    const leaving = await org.user('patient', 'leaving-replay');
    const staying = await org.user('patient', 'staying-replay');
    const c = await conversation(a, org.provider, [leaving, staying]);
    const first = connect(a, leaving);
    const before = await live(a, first, EVENTS, { c });
    const m0 = await send(b, org.provider, c, 'before');
    await waitForMessages(before, 1);
    const cursor = events(before)[0]!.cursor!;
    await first.dispose();
    // a long backlog to replay (read receipts appended in bulk, as another writer would), so that
    // the removal below commits while the replay is still running (all apps share one event loop:
    // the removal advances about one query per replayed batch; observed: ~2,000–3,500 of 12,000)
    const stream = `conv:${c}`;
    const BACKLOG = 12000;
    await a.container.database.db.execute(sql`
      with h as (update stream_heads set position = position + ${BACKLOG} where stream = ${stream} returning position)
      insert into stream_events (stream, position, org_id, type, payload, at)
      select ${stream}, h.position - ${BACKLOG} + g, ${org.orgId}, 'ReadReceipt',
             jsonb_build_object('userId', ${staying.id}::text, 'messageId', ${m0}::text, 'seq', 2), now()
      from h, generate_series(1, ${BACKLOG}) g`);

    const raw = await rawRecorder(a, leaving.token);
    raw.subscribe('s1', { c, a: cursor });
    await raw.next((f) => f.type === 'next'); // the replay has started
    // the removal, issued on B; then a message the removed member must never see
    const removed = await gql(b, org.provider.token, REMOVE, { c, u: leaving.id });
    expect(removed.errors).toBeUndefined();
    const secret = await send(b, org.provider, c, 'after the removal');
    const end = await raw.next((f) => f.id === 's1' && f.type !== 'next', 10_000);
    expect(end).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'FORBIDDEN' } }] });
    // the subscription is gone from A (its replay stopped), and nothing followed the error
    await until(() => a.container.fanout.stats().subscriptions === 0, 10_000, 'the subscription to be released');
    await sleep(100);
    const ofS1 = raw.frames.filter((f) => f.id === 's1');
    const errorAt = ofS1.indexOf(end);
    expect(ofS1.length - errorAt - 1, 'frames after the error').toBe(0);
    const leaked = ofS1.filter((f) => f.type === 'next' && JSON.stringify(f.payload).includes(secret));
    expect(leaked).toEqual([]);
    raw.ws.close(1000);
  });
});
