// The ledger keeps durable events for LEDGER_RETENTION_DAYS. A client resuming from a cursor older
// than what is kept gets a typed CURSOR_EXPIRED error (it refetches, then subscribes without
// `after`); it is never handed a history with a hole in it. Retention is a worker duty.
import { sql } from 'drizzle-orm';
import { afterEach, describe, expect } from 'vitest';
import { connect, disposeAll, live, subscriptionErrors, until } from '../harness/clients.js';
import { EVENTS, conversation, events, history, messageIds, position, send, waitForMessages, it } from '../harness/system.js';

afterEach(disposeAll);

describe('ledger retention', () => {
  it('deletes old events; an older cursor is refused with CURSOR_EXPIRED, a kept one resumes exactly', async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const first = await live(a, connect(a, org.patient), EVENTS, { c });
    const sent: string[] = [];
    for (const body of ['one', 'two', 'three', 'four']) sent.push(await send(b, org.provider, c, body));
    await waitForMessages(first, 4);
    const [e1, e2, e3] = events(first).filter((e) => e.__typename === 'MessageAdded');
    const stream = `conv:${c}`;
    const db = a.container.database.db;
    // the first two events of this conversation are 40 days old; everything else stays young
    const upTo = position(a, c, e2!.cursor!);
    await db.execute(sql`update stream_events set at = now() - interval '40 days' where stream = ${stream} and position <= ${upTo}`);

    // the worker's duty, as configured for this instance (LEDGER_RETENTION_DAYS default 30)
    const duty = a.container.duties?.periodic.find((p) => p.name === 'ledger-retention');
    expect(duty, 'the ledger retention duty').toBeDefined();
    await duty!.run();
    const left = await db.execute(sql`select position from stream_events where stream = ${stream} order by position`);
    const positions = (Array.isArray(left) ? left : (left as { rows: unknown[] }).rows).map((r) =>
      Number((r as { position: number }).position),
    );
    expect(positions[0]).toBe(upTo + 1);

    // resuming after event 1 would skip event 2, which is gone: refused, typed, on either instance
    for (const app of [a, b]) {
      const old = await live(app, connect(app, org.patient), EVENTS, { c, a: e1!.cursor });
      await until(() => subscriptionErrors(old).length > 0, 5_000, 'the expired-cursor error');
      expect(subscriptionErrors(old)[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'CURSOR_EXPIRED', field: 'after' });
      expect(old.items).toEqual([]);
    }
    // resuming after event 2 (the last one deleted) misses nothing: exactly 3 and 4
    const kept = await live(b, connect(b, org.patient), EVENTS, { c, a: e2!.cursor });
    await waitForMessages(kept, 2);
    expect(messageIds(kept)).toEqual(sent.slice(2));
    expect(events(kept)[0]?.cursor).toBe(e3?.cursor);
    // the refetch path: history is whole (messages are not the ledger), and a fresh subscription is live
    expect(await history(a, org.patient, c)).toEqual(sent);
    const fresh = await live(a, connect(a, org.patient), EVENTS, { c });
    sent.push(await send(b, org.provider, c, 'five'));
    await waitForMessages(fresh, 1);
    expect(messageIds(fresh)).toEqual(sent.slice(4));
  });
});
