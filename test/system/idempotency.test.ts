// Twenty identical sendMessage calls racing over two instances are one message: one id in every
// response, one row in the history, one MessageAdded for every subscriber.
import { afterEach, describe, expect } from 'vitest';
import { gql, connect, disposeAll, live, sleep } from '../harness/clients.js';
import { SEND, conversation, events, expectContiguous, history, messageIds, send, waitForMessages, EVENTS, it } from '../harness/system.js';

afterEach(disposeAll);

describe('idempotency race', () => {
  it('turns 20 concurrent identical sends over A and B into one message and one event', async ({ a, b, org }) => {
    const c = await conversation(a, org.provider, [org.patient]);
    const onA = await live(a, connect(a, org.patient), EVENTS, { c });
    const onB = await live(b, connect(b, org.provider), EVENTS, { c });
    const key = `dose-${Date.now()}`;
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => gql(i % 2 ? a : b, org.provider.token, SEND, { c, b: 'take 2 tablets', k: key })),
    );
    for (const r of responses) expect(r.errors).toBeUndefined();
    const ids = new Set(responses.map((r) => r.data.sendMessage.id as string));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    for (const r of responses) expect(r.data.sendMessage).toEqual({ id, body: 'take 2 tablets', clientMessageId: key });

    // a barrier: whatever the race published comes before it
    const barrier = await send(b, org.provider, c, 'barrier');
    for (const s of [onA, onB]) {
      await waitForMessages(s, 2);
      await sleep(200);
      expect(messageIds(s)).toEqual([id, barrier]);
      expectContiguous(a, c, events(s));
    }
    expect(await history(a, org.patient, c)).toEqual([id, barrier]);
    // a late repeat still answers the same message and adds nothing
    const late = await gql(b, org.provider.token, SEND, { c, b: 'take 2 tablets', k: key });
    expect(late.data.sendMessage.id).toBe(id);
    expect(await history(b, org.patient, c)).toEqual([id, barrier]);
  });
});
